"""Settings: a frozen object read once, from a TOML file plus ``EDOC_GATEWAY_*`` environment variables.

Precedence: built-in defaults < the TOML file (``--config`` or ``EDOC_GATEWAY_CONFIG``) < environment
variables. Every key of the file can be set by the environment as ``EDOC_GATEWAY_<KEY upper-case>``;
lists are comma-separated there. Secrets (``secret_key``) have no default: :meth:`Settings.require_service`
stops start-up when one is missing (STYLE.md, "missing secrets stop start-up").

Unknown keys are refused (``CONFIG.INVALID``, naming the key and the closest known one), in the file and in
the environment alike: a typo (``wokers = 8``, ``EDOC_GATEWAY_SECRETKEY``) would otherwise leave the default in
force without a word. The file may also hold the tables :data:`FILE_TABLES`, read by the worker and the
adapters; the environment may also hold the variables :data:`OTHER_ENV`, which are not settings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from gateway.config.checks import check_legacy_paths, check_public_url
from gateway.errors import ConfigError
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES

ENV_PREFIX = "EDOC_GATEWAY_"
#: Tables only the file can hold, kept in :attr:`Settings.extra` for their readers: ``[credentials."<OrganId>"]``
#: (push channel credentials, gateway.worker.peers), ``[vdxp]`` (the national axis, gateway.worker.polling and
#: adapters.vdxp), ``[edocvn]`` (a legacy axis, adapters.edocvn) and ``[adapters]`` (adapter classes by channel,
#: gateway.worker.peers).
FILE_TABLES: tuple[str, ...] = ("credentials", "vdxp", "adapters", "edocvn")
#: ``EDOC_GATEWAY_*`` variables that are not settings: the settings file itself, the secret ``agencies sync-vdxp``
#: reads (``--secret-env``), the token ``legacy`` reads. Names starting with ``EDOC_GATEWAY_TEST_`` belong to the
#: test tooling. A new variable of this kind must be added here, or every command would refuse it as a misspelt setting.
OTHER_ENV: frozenset[str] = frozenset({f"{ENV_PREFIX}CONFIG", f"{ENV_PREFIX}VDXP_SECRET", f"{ENV_PREFIX}LEGACY_TOKEN"})
_TEST_ENV_PREFIX = f"{ENV_PREFIX}TEST_"


#: Where the legacy e-doc.vn edge always answers (gateway.web.legacy); ``legacy_paths`` adds more.
LEGACY_PATH: Final = "/legacy/edoc"
#: The SOAP envelope limits (each at least 8: a SOAP request needs that much).
_SOAP_LIMITS = (
    "soap_max_depth",
    "soap_max_elements",
    "soap_max_attributes",
    "soap_max_text_chars",
    "soap_max_identifier_chars",
)
#: Values of ``document_id_policy``.
DOCUMENT_ID_POLICIES = ("standard", "strict", "warn", "off")


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment. Paths are absolute after :func:`load_settings`."""

    #: Where the SQLite database, the demo PKI and other local state live.
    data_dir: Path = Path("data")
    #: SQLAlchemy URL; empty means SQLite (WAL) at ``data_dir/gateway.db``.
    database_url: str = ""
    #: host:port gunicorn binds to.
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    #: Largest edXML package accepted (gateway.md Intake 1); the HTTP body limit is derived from it.
    max_package_bytes: int = DEFAULT_MAX_BYTES
    #: Key used to encrypt system secrets at rest (WS-Security PasswordDigest needs the secret itself).
    secret_key: str = ""
    #: The gateway's own signing credential, for receipts.
    gateway_key: Path | None = None
    gateway_cert: Path | None = None
    #: Trust anchors (PEM bundle) and CRL files for verifying package signatures.
    trust_store: Path | None = None
    crl_files: tuple[Path, ...] = ()
    #: Without a fresh CRL: refuse (False, default) or accept and mark the check "soft-fail" (True).
    crl_soft_fail: bool = False
    #: WS-Security UsernameToken: how far ``Created`` may be from now, in seconds (replay window).
    wss_window_seconds: int = 300
    #: VDXP requests of systems in ``strict`` replay mode (the default): how far the signed timestamp may be from
    #: now, in seconds, either way; a signature is also accepted only once within it (issue 10 finding 7).
    vdxp_window_seconds: int = 300
    #: Addresses or networks (CIDR) of the TLS-terminating proxies whose ``X-Forwarded-For`` and client
    #: certificate headers are believed; none by default (the peer address is the client's).
    trusted_proxies: tuple[str, ...] = ()
    #: Whose DocumentIds an agency may use (issue 10; gateway.services.routing). ``standard`` refuses
    #: (``EDXML.DOCUMENT_ID``) an update/revoke/replace of a DocumentId another agency issued
    #: (``{OrganId},{date},{number}``, edxml.md §6.3) and a DocumentId colliding with one another agency sent, and
    #: logs a DocumentId that merely names another issuer (real producers copy templates); ``strict`` refuses that
    #: too; ``warn`` accepts everything with a log warning; ``off`` checks nothing. Packages polled from the
    #: upstream axis are checked as ``warn`` at most (the axis vouches for them).
    document_id_policy: str = "standard"
    #: Accept HTTP Basic only when the request came over TLS (directly, or per X-Forwarded-Proto from the proxy).
    basic_auth_requires_tls: bool = True
    #: The gateway's public base URL (``https://axis.example.gov.vn``, with a path prefix if a proxy adds one): the
    #: WSDL's ``soap:address`` is this plus ``/soap``. Empty: ``http://`` + ``bind``. Never taken from a request's
    #: ``Host`` header, which the client controls (issue 10).
    public_url: str = ""

    # -- the legacy e-doc.vn SOAP profile (issue 13; gateway.web.legacy) ----------------------------------------
    #: Paths the legacy edge also answers on besides ``/legacy/edoc`` (a Bkav axis's ``/services/EdocProxy``).
    legacy_paths: tuple[str, ...] = ()
    #: Legacy OrganIds (login names) whose GetDocument answers carry each attachment as Bkav's axis does — the
    #: file's Base64 TEXT in a part labelled ``binary`` (legacy-edoc-vn.md §7.3) — instead of its raw bytes;
    #: ``*`` for every legacy system. For clients built against the axis, which decode that text themselves.
    legacy_base64_text: tuple[str, ...] = ()

    # -- SOAP envelope limits (issue 10): checked while the envelope is parsed, before authentication and spyne ----
    #: Element nesting (Envelope = 1; a request needs 4, a signed WS-Security header about 8).
    soap_max_depth: int = 32
    #: Elements in one envelope (a request has fewer than 50).
    soap_max_elements: int = 1000
    #: Attributes on one element, namespace declarations included.
    soap_max_attributes: int = 32
    #: Characters in one text node or attribute value outside the package (``edxmlPackage`` is bounded by
    #: ``max_package_bytes`` alone); this bounds free text such as Acknowledge's ``reason``.
    soap_max_text_chars: int = 65536
    #: Characters of an identifier, code or number parameter (organId, deliveryId, documentId, docId, parent, kind,
    #: status, limit) and of the UsernameToken's Username, Nonce and Created.
    soap_max_identifier_chars: int = 256

    # -- serving model (issue 10; gateway.web.serving, deploy/gunicorn.conf.py) -------------------------
    #: Threads per web worker that run the application once a request has fully arrived. Intake is CPU-bound
    #: and holds the GIL, so more threads add little throughput but multiply peak memory (each may hold one
    #: package of max_package_bytes in several forms): keep it small. Slow clients never hold one.
    worker_threads: int = 4
    #: A connection must deliver a request's complete headers within this many seconds, or it is closed.
    header_timeout_seconds: float = 10.0
    #: A request body may take this many seconds plus one second per body_min_rate bytes received; a body
    #: slower than that is refused (408 REQUEST.TIMEOUT) and the connection closed.
    body_timeout_seconds: float = 10.0
    #: Bytes per second a request body must keep up on average (after body_timeout_seconds of grace).
    body_min_rate: int = 8192
    #: Open connections one client address may hold per web worker; more are refused (503 and closed). Peers in
    #: trusted_proxies are not counted: their clients are counted by request (max_requests_per_address).
    max_connections_per_address: int = 16
    #: Requests one client address may have in progress per web worker (headers in, answer not yet sent);
    #: more are refused with 429 RATE.LIMITED. Behind a trusted proxy, the address is the one it forwards.
    max_requests_per_address: int = 8
    #: Authenticated SOAP operations one system may have running per web worker; more are refused with 429
    #: RATE.LIMITED. Below worker_threads, so one system can never occupy every thread.
    max_requests_per_system: int = 3
    log_level: str = "INFO"
    #: ``json`` (one JSON object per line, for the service's log pipeline) or ``console`` (key=value lines for a
    #: human reading a terminal); :mod:`gateway.logs`.
    log_format: str = "json"
    #: Bearer token of ``/metrics``; empty leaves it open (serve it on an internal listener only). A secret.
    metrics_token: str = ""
    #: Bearer token of the admin REST API (/admin/v1); empty disables the API. A secret: use the environment.
    admin_token: str = ""
    #: Operator console (/console, issue 12): a session ends after this idle time, and this long after login.
    console_session_idle_minutes: int = 30
    console_session_hours: int = 12
    #: Failed console logins per user name per auth_failure_window_seconds before RATE.LIMITED (0 = off).
    console_login_failures: int = 10
    #: The session cookie's Secure flag: keep it on behind TLS; the demo turns it off for http://127.0.0.1.
    console_cookie_secure: bool = True
    #: Whether /readyz also requires a fresh delivery-worker heartbeat (when any agency is reached by push).
    #: Off by default: intake keeps working (deliveries queue) while workers restart, so a load balancer
    #: should not take the web tier out for a worker outage; turn it on where one process runs both.
    readyz_requires_worker: bool = False
    #: /readyz "disk" is not ready when data_dir's filesystem (and a SQLite database's, when elsewhere) has less
    #: than this share of its size free (0 turns this floor off). Scales with the volume: 5 % of 100 GiB is 5 GiB.
    readyz_min_free_percent: float = 5.0
    #: …or less than this many MiB free, whatever the volume's size (0 turns this floor off). Not ready below EITHER.
    readyz_min_free_mb: int = 256

    # -- intake limits as policy (issue 10 finding 8; gateway.services.intake_limits) -----------------------
    #: Attachments one edoc package may carry (``LIMIT.ATTACHMENTS``); also the entries of any one zip attachment.
    max_attachments: int = 100
    #: Bytes all zip attachments of one package may inflate to, counted while inflating in chunks — the sizes a
    #: zip declares are never trusted (``LIMIT.INFLATED``). Non-zip attachments are not counted (their bytes are
    #: the package's, already under max_package_bytes).
    max_inflated_bytes: int = 256 * 1024 * 1024
    #: Inflated / compressed size of one zip entry, judged once the entry passes 1 MiB (``LIMIT.INFLATED``):
    #: office files compress 5–20×, text up to ~100×, a zip bomb 1000× and more.
    max_zip_ratio: float = 150.0
    #: ``To`` of one edoc package (``LIMIT.RECIPIENTS``): a province's whole address book is a few hundred.
    max_recipients: int = 1000
    #: Status packages accepted per (document, recipient) per Vietnam calendar day, and in total
    #: (``LIMIT.STATUSES``): a real history is a handful of statuses (01, 03, 04, 05, 06 …); 0 = no cap.
    max_statuses_per_day: int = 50
    max_statuses_total: int = 500

    # -- rate limits and throttling (issue 10; gateway.services.limits) ------------------------------------
    #: Requests per second (sustained) and burst from one source address, over every edge (``RATE.LIMITED``,
    #: HTTP 429). Counted per process: with N gunicorn workers an address gets up to N× this. 0 = off.
    rate_per_address: float = 100.0
    rate_burst_per_address: int = 200
    #: Authenticated requests per second and burst of one system, over every edge (per process, like above).
    rate_per_system: float = 100.0
    rate_burst_per_system: int = 200
    #: Failed authentications counted per window (shared by every worker, in the database): after
    #: auth_failures_per_address from one address, or auth_failures_per_user for one claimed system id, further
    #: attempts that would need the expensive check (scrypt of HTTP Basic) or fail a cheap one are refused with
    #: ``RATE.LIMITED`` until the window passes; valid credentials that are checked cheaply still pass. 0 = off.
    auth_failure_window_seconds: int = 300
    auth_failures_per_address: int = 20
    auth_failures_per_user: int = 100
    #: Keys (addresses, systems) each in-process table keeps; the least recently seen are evicted beyond it.
    rate_table_size: int = 10000

    # -- delivery worker (issue 4; gateway.md "Delivery") ------------------------------------------------
    #: Deliveries one worker claims per round trip to the database (each is leased, see worker_lease_seconds).
    worker_batch: int = 50
    #: Seconds an idle worker waits before looking for due deliveries again.
    worker_poll_seconds: float = 1.0
    #: A claim is a lease: a worker that dies (kill -9, power cut) leaves claims that expire after this many
    #: seconds, and the delivery is tried again by another worker. The worker's heartbeat thread renews its
    #: leases every quarter of this while the worker is alive and working, so a send may last longer (issue 11).
    worker_lease_seconds: int = 20
    #: Parallel sends per worker (threads), and at most this many at once to one peer: a slow peer holds a few
    #: threads, never the other peers' turn.
    delivery_threads: int = 16
    delivery_peer_concurrency: int = 4
    #: A peer's circuit breaker (shared by every worker): open after this many consecutive failures (timeouts,
    #: no connection, peer errors); while open its deliveries wait; one probe after ``open_seconds``, doubling
    #: after each failed probe up to ``max_open_seconds``.
    delivery_circuit_failures: int = 5
    delivery_circuit_open_seconds: float = 10.0
    delivery_circuit_max_open_seconds: float = 60.0
    #: How often a worker writes its heartbeat row (``/readyz`` reads it).
    worker_heartbeat_seconds: float = 10.0
    #: A heartbeat older than this means the worker is gone (``/readyz`` "worker" check).
    worker_stale_seconds: int = 60
    #: Exponential backoff with full jitter: attempt n waits uniform(0, min(retry_max, retry_base × 2^(n-1))).
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    #: A delivery still failing this long after it was queued (or re-driven) is dead-lettered (default 72 h).
    retry_limit_seconds: float = 72 * 3600.0
    #: Timeouts of one call to a peer: TCP connect, and the wait for the answer.
    adapter_connect_timeout: float = 10.0
    adapter_read_timeout: float = 60.0
    #: After a read timeout the outcome is unknown (the peer may have stored the package): the same message goes
    #: again with a doubled read timeout, up to this.
    adapter_max_read_timeout: float = 300.0

    # -- tracking rules (issue 9; README "Tracking rules" gives each one's legal source) ------------------
    #: Late sending: a normal document must be taken in by this hour of the working day after its
    #: PromulgationDate; urgent ones (priority 1–4) within urgent_send_hours of that day's 00:00.
    send_morning_end_hour: int = 12
    urgent_send_hours: tuple[int, ...] = (24, 24, 24, 24)
    #: Late receipt: no 01 this long after the package became available to the recipient.
    receipt_minutes: int = 60
    #: Not taken: not acknowledged (mailbox) or accepted (push) this long after intake.
    not_taken_minutes: int = 30
    #: Not registered: no 03 (or 02) by the end of this many working days after availability.
    register_working_days: int = 1
    #: Dates (YYYY-MM-DD) the province declares off, and Saturdays it declares working, on top of the national
    #: calendar (public holidays including the lunar ones, and the Government's make-up days, are built in).
    extra_days_off: tuple[str, ...] = ()
    make_up_working_days: tuple[str, ...] = ()

    # -- alerts and certificate watch (issue 9) ----------------------------------------------------------
    #: How often the worker's alert round runs, in seconds; 0 turns alerts off.
    alerts_interval_seconds: float = 300.0
    #: Rules that raise alerts (any of late_receipt, not_taken, not_registered, overdue, cert_expiry, cert_revoked).
    alert_rules: tuple[str, ...] = ("not_taken", "late_receipt", "not_registered", "overdue", "cert_expiry")
    #: SMTP relay for alert e-mail; empty smtp_host sends none. smtp_password is a secret: use the environment.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "edoc-gateway@localhost"
    #: Operators who get the summary of every round's new alerts.
    alert_operator_emails: tuple[str, ...] = ()
    #: A URL that receives every round's new alerts as one JSON POST (chat bridges); empty: none.
    alert_webhook_url: str = ""
    #: Certificate watch: warn this many days before a signer certificate expires.
    cert_expiry_days: int = 30

    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.public_url:
            check_public_url(self.public_url)
        if small := [name for name in _SOAP_LIMITS if getattr(self, name) < 8]:
            raise ConfigError(f"{', '.join(small)} must be at least 8 (a SOAP request needs that much)", keys=small)
        if not 0 <= self.readyz_min_free_percent < 100 or self.readyz_min_free_mb < 0:
            raise ConfigError(
                "readyz_min_free_percent must be in [0, 100) and readyz_min_free_mb at least 0 (0 turns a floor off)"
            )
        check_legacy_paths(self.legacy_paths)
        if self.document_id_policy not in DOCUMENT_ID_POLICIES:
            raise ConfigError(
                f"document_id_policy must be one of {', '.join(DOCUMENT_ID_POLICIES)}, not {self.document_id_policy!r}"
            )

    @property
    def legacy_endpoint_paths(self) -> tuple[str, ...]:
        """Every path the legacy e-doc.vn edge answers on: ``/legacy/edoc`` and the ``legacy_paths`` (the edge
        mounts them, the serving front refuses an oversized body on them in the profile's own Report)."""
        return tuple(dict.fromkeys([LEGACY_PATH, *(p.rstrip("/") for p in self.legacy_paths)]))

    @property
    def public_base_url(self) -> str:
        """The base URL clients are told (WSDL ``soap:address``): ``public_url``, else ``http://`` + ``bind``.

        A wildcard bind (``0.0.0.0``, ``::``) names no reachable host; loopback stands in for it, and a deployment
        reached from elsewhere sets ``public_url``.
        """
        if self.public_url:
            return self.public_url.rstrip("/")
        host, sep, port = self.bind.rpartition(":")
        if not sep or not port.isdigit():  # a unix socket, or a bare host
            host, port = ("localhost", "") if ":" in self.bind else (self.bind, "")
        host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)  # noqa: S104 -- a name
        return f"http://{host}{':' + port if port else ''}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'gateway.db'}"

    @property
    def max_body_bytes(self) -> int:
        """SOAP body limit: the package, base64-inflated (4/3), plus room for the envelope."""
        return self.max_package_bytes * 4 // 3 + 64 * 1024

    def require_service(self) -> None:
        """Refuse to start the service without its secrets and credentials."""
        missing = [
            name for name in ("secret_key", "gateway_key", "gateway_cert", "trust_store") if not getattr(self, name)
        ]
        if missing:
            raise ConfigError(
                "missing settings: " + ", ".join(missing) + f" (set them in the config file or {ENV_PREFIX}*)",
                missing=missing,
            )
        if len(self.secret_key) < 16:
            raise ConfigError("secret_key must be at least 16 characters")
        if self.vdxp_window_seconds <= 0:
            raise ConfigError("vdxp_window_seconds must be positive (it bounds the VDXP replay cache too)")

    def require_serving(self) -> None:
        """Refuse serving settings that would leave the web tier unbounded or trusting (issue 10)."""
        problems = []
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=True)
            except ValueError:
                problems.append(f"trusted_proxies: {proxy!r} is not an IP address or network (CIDR, host bits 0)")
        if self.worker_threads < 1:
            problems.append("worker_threads must be at least 1")
        if min(self.header_timeout_seconds, self.body_timeout_seconds) <= 0 or self.body_min_rate < 1:
            problems.append("header_timeout_seconds, body_timeout_seconds and body_min_rate must be positive")
        if min(self.max_connections_per_address, self.max_requests_per_address, self.max_requests_per_system) < 1:
            problems.append(
                "max_connections_per_address, max_requests_per_address and max_requests_per_system must be at least 1"
            )
        if problems:
            raise ConfigError("invalid serving settings: " + "; ".join(problems), problems=problems)

    def require_worker(self) -> None:
        """Refuse worker settings that would break the delivery guarantees (issue 4).

        A lease too short to be renewed in time would let a second worker claim a delivery that is still being
        sent; zero or negative backoff values would hammer a peer that is down.
        """
        problems = []
        if self.worker_batch < 1:
            problems.append("worker_batch must be at least 1")
        if min(self.worker_poll_seconds, self.worker_heartbeat_seconds, self.retry_base_seconds) <= 0:
            problems.append("worker_poll_seconds, worker_heartbeat_seconds and retry_base_seconds must be positive")
        if self.adapter_connect_timeout <= 0 or self.adapter_read_timeout <= 0:
            problems.append("adapter timeouts must be positive")
        if self.retry_max_seconds < self.retry_base_seconds:
            problems.append("retry_max_seconds must not be below retry_base_seconds")
        if self.retry_limit_seconds <= 0:
            problems.append("retry_limit_seconds must be positive")
        if self.worker_lease_seconds < 2:
            problems.append(f"worker_lease_seconds ({self.worker_lease_seconds}) must be at least 2")
        if min(self.delivery_threads, self.delivery_peer_concurrency, self.delivery_circuit_failures) < 1:
            problems.append("delivery_threads, delivery_peer_concurrency and delivery_circuit_failures must be >= 1")
        if not 0 < self.delivery_circuit_open_seconds <= self.delivery_circuit_max_open_seconds:
            problems.append(
                "delivery_circuit_open_seconds must be positive and at most delivery_circuit_max_open_seconds"
            )
        if self.adapter_max_read_timeout < self.adapter_read_timeout:
            problems.append("adapter_max_read_timeout must not be below adapter_read_timeout")
        if self.worker_stale_seconds <= self.worker_heartbeat_seconds:
            problems.append("worker_stale_seconds must exceed worker_heartbeat_seconds")
        if problems:
            raise ConfigError("invalid worker settings: " + "; ".join(problems), problems=problems)


# Reading the settings lives beside them (gateway/config/loading.py); imported last, as it reads Settings.
from gateway.config.loading import load_settings  # noqa: E402

__all__ = ["DOCUMENT_ID_POLICIES", "ENV_PREFIX", "FILE_TABLES", "OTHER_ENV", "Settings", "load_settings"]
