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

import dataclasses
import difflib
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from gateway.errors import ConfigError
from gateway.xmlcheck.safe import DEFAULT_MAX_BYTES

ENV_PREFIX = "EDOC_GATEWAY_"
#: Tables only the file can hold, kept in :attr:`Settings.extra` for their readers: ``[credentials."<OrganId>"]``
#: (push channel credentials, gateway.worker.peers), ``[vdxp]`` (the national axis, gateway.worker.polling and
#: adapters.vdxp) and ``[adapters]`` (adapter classes by channel, gateway.worker.peers).
FILE_TABLES: tuple[str, ...] = ("credentials", "vdxp", "adapters")
#: ``EDOC_GATEWAY_*`` variables that are not settings: the settings file itself, the secret ``agencies sync-vdxp``
#: reads (``--secret-env``). Names starting with ``EDOC_GATEWAY_TEST_`` belong to the test tooling. A new
#: variable of this kind must be added here, or every command would refuse it as a misspelt setting.
OTHER_ENV: frozenset[str] = frozenset({f"{ENV_PREFIX}CONFIG", f"{ENV_PREFIX}VDXP_SECRET"})
_TEST_ENV_PREFIX = f"{ENV_PREFIX}TEST_"


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
    #: Accept HTTP Basic only when the request came over TLS (directly, or per X-Forwarded-Proto from a proxy in
    #: trusted_proxies).
    basic_auth_requires_tls: bool = True
    #: Addresses or networks (CIDR) of the reverse proxies whose ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are
    #: believed (issue 10, finding 6). Empty (default): no forwarded header is believed from anyone, so a client
    #: cannot claim TLS or another address by sending them. Behind the local nginx of deploy/: ``127.0.0.1``.
    trusted_proxies: tuple[str, ...] = ()

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
    #: Whether /readyz also requires a fresh delivery-worker heartbeat (when any agency is reached by push).
    #: Off by default: intake keeps working (deliveries queue) while workers restart, so a load balancer
    #: should not take the web tier out for a worker outage; turn it on where one process runs both.
    readyz_requires_worker: bool = False

    # -- delivery worker (issue 4; gateway.md "Delivery") ------------------------------------------------
    #: Deliveries one worker claims per round trip to the database (each is leased, see worker_lease_seconds).
    worker_batch: int = 10
    #: Seconds an idle worker waits before looking for due deliveries again.
    worker_poll_seconds: float = 1.0
    #: A claim is a lease: a worker that dies (kill -9, power cut) leaves claims that expire after this many
    #: seconds, and the delivery is tried again by another worker. Must exceed one adapter call
    #: (adapter_connect_timeout + adapter_read_timeout); the worker renews its leases before each call.
    worker_lease_seconds: int = 300
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

        A lease shorter than one adapter call would let a second worker claim a delivery that is still being
        sent; zero or negative backoff values would hammer a peer that is down.
        """
        call = self.adapter_connect_timeout + self.adapter_read_timeout
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
        if self.worker_lease_seconds <= call:
            problems.append(
                f"worker_lease_seconds ({self.worker_lease_seconds}) must exceed one adapter call "
                f"(adapter_connect_timeout + adapter_read_timeout = {call:g})"
            )
        if self.worker_stale_seconds <= self.worker_heartbeat_seconds:
            problems.append("worker_stale_seconds must exceed worker_heartbeat_seconds")
        if problems:
            raise ConfigError("invalid worker settings: " + "; ".join(problems), problems=problems)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}


def _convert(name: str, raw: Any, tp: Any, base: Path) -> Any:
    text = str(raw) if not isinstance(raw, list) else raw
    try:
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            low = str(raw).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if tp is int:
            return int(raw)
        if tp is float:
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(raw)
            return value
        if tp is str:
            return str(raw)
        if tp in (Path, Path | None):
            return None if raw in ("", None) else (base / Path(str(raw))).resolve()
        if tp in (tuple[str, ...], tuple[int, ...]):
            items = raw if isinstance(raw, list) else str(text).split(",")
            kind = int if tp == tuple[int, ...] else str
            return tuple(kind(str(item).strip()) for item in items if str(item).strip())
        if tp == tuple[Path, ...]:
            items = raw if isinstance(raw, list) else [p for p in str(text).split(",") if p.strip()]
            return tuple((base / Path(str(p).strip())).resolve() for p in items)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} has an invalid value {raw!r}") from None
    raise AssertionError(f"unhandled setting type {tp!r}")


def load_settings(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings once. Relative paths in the file are relative to the file; in the environment, to cwd.

    Unknown keys (file or ``EDOC_GATEWAY_*``) are ``CONFIG.INVALID``, each named with the closest known key.
    """
    env = os.environ if env is None else env
    hints = get_type_hints(Settings)
    values: dict[str, Any] = {}
    path = path or env.get(f"{ENV_PREFIX}CONFIG") or None
    file_base = Path.cwd()
    extra: dict[str, Any] = {}
    if path:
        p = Path(path)
        doc = _read_file(p)
        file_base = p.resolve().parent
        _refuse_unknown_file_keys(doc, p)
        for key, raw in doc.items():
            if key in _FIELDS:
                values[key] = _convert(key, raw, hints[key], file_base)
            else:
                extra[key] = raw
    _refuse_unknown_env(env)
    for name in _FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _convert(name, raw, hints[name], Path.cwd())
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"]).resolve()
    else:
        values["data_dir"] = (file_base / Settings.data_dir).resolve() if path else Settings.data_dir.resolve()
    return Settings(**values, extra=extra)


def _read_file(p: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {p} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {p} is a directory") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {p} is not UTF-8: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {p} is not valid TOML: {exc}") from None


def _refuse_unknown_file_keys(doc: Mapping[str, Any], p: Path) -> None:
    """Top-level keys must be settings or one of the file-only tables (and those must be tables)."""
    unknown = [key for key in doc if key not in _FIELDS and key not in FILE_TABLES]
    if unknown:
        names = [_file_key(key) for key in unknown]
        raise ConfigError(f"unknown setting(s) in {p}: {', '.join(names)}", keys=unknown, file=str(p))
    not_tables = [key for key in FILE_TABLES if key in doc and not isinstance(doc[key], dict)]
    if not_tables:
        raise ConfigError(
            f"{p}: {', '.join(not_tables)} must be a table ([{not_tables[0]}] …), not a single value",
            keys=not_tables,
            file=str(p),
        )


def _refuse_unknown_env(env: Mapping[str, str]) -> None:
    """Every ``EDOC_GATEWAY_*`` variable must be a setting or one of :data:`OTHER_ENV` (or test tooling)."""
    unknown = sorted(
        name
        for name in env
        if name.startswith(ENV_PREFIX)
        and name[len(ENV_PREFIX) :].lower() not in _FIELDS
        and name not in OTHER_ENV
        and not name.startswith(_TEST_ENV_PREFIX)
    )
    if unknown:
        names = [_env_name(name) for name in unknown]
        raise ConfigError(
            f"unknown setting(s) in the environment: {', '.join(names)} (unset them, or fix the name)",
            keys=unknown,
        )


def _file_key(key: str) -> str:
    """``'wokers' (did you mean 'workers'?)``."""
    close = difflib.get_close_matches(key, [*_FIELDS, *FILE_TABLES], n=1, cutoff=0.6)
    return f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)


def _env_name(name: str) -> str:
    """``EDOC_GATEWAY_WORKER (did you mean EDOC_GATEWAY_WORKERS?)``; a file-only table is named as such."""
    key = name[len(ENV_PREFIX) :].lower()
    table = key.split("_", 1)[0]
    if table in FILE_TABLES:
        return f"{name} ([{table}] is read from the settings file only)"
    close = difflib.get_close_matches(key, list(_FIELDS), n=1, cutoff=0.6)
    return f"{name} (did you mean {ENV_PREFIX}{close[0].upper()}?)" if close else name
