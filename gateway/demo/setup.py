"""The demo's data directory, made afresh: PKI, settings file, migrated database, registry, systems.

Everything is real: a demo PKI, a TOML settings file with a generated secret key, a SQLite database migrated
with alembic, a registry imported from a CSV file, and systems with generated secrets — what an operator would
do by hand with ``edoc-gateway demo-pki``, ``db upgrade``, ``agencies import`` and ``systems add``. The sample
traffic is the project's own corpus (:mod:`gateway.demo.corpus`), written to ``corpus/`` for the user to try.
"""

from __future__ import annotations

import csv
import io
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.demo.console_demo import DemoHistory, DemoLogin, add_history, add_operators
from gateway.demo.corpus import write_corpus
from gateway.demo.pki import DemoPki, create_demo_pki
from gateway.services.registry import Registry
from gateway.tracking.calendar import local_date

#: Demo registry: a province (level 1) with level-2/3 units, a ministry, and the agencies the sample corpora
#: name (ours, :mod:`gateway.demo.corpus`, and the public samples), so that every sample can travel. Province
#: units require signatures bound to them. Some have a contact e-mail: the demo's alert round mails them.
DEMO_AGENCIES_CSV = """organ_id,name,parent,signature_policy,emit_arrived_on_ack,channel,endpoint,contact_email
000.00.00.H53,UBND tỉnh Tây Ninh,,require,false,mailbox,,
000.00.01.H53,Văn phòng UBND tỉnh Tây Ninh,000.00.00.H53,require,false,mailbox,,vanthu@vp.tayninh.demo.example
000.01.01.H53,Ban Tiếp Công dân,000.00.01.H53,require,true,mailbox,,
000.00.11.H53,Sở Tài chính Tây Ninh,000.00.00.H53,verify-if-present,false,mailbox,,vanthu@stc.tayninh.demo.example
000.00.31.H53,UBND huyện Hòa Thành,000.00.00.H53,verify-if-present,true,mailbox,,
000.00.01.A53,Văn phòng Tỉnh ủy Tây Ninh,,verify-if-present,false,mailbox,,
000.00.00.G22,Văn phòng Chính phủ,,verify-if-present,false,mailbox,,vanthu@vpcp.demo.example
000.00.00.H41,UBND tỉnh Nghệ An,,verify-if-present,false,mailbox,,vanthu@nghean.demo.example
000.00.00.H14,UBND tỉnh Cao Bằng,,verify-if-present,false,soap,{soap_endpoint},
000.00.00.G17,Bộ Xây dựng,,verify-if-present,false,rest,{rest_endpoint},
000.00.00.A80,UBND xã Hòa Tiến,,verify-if-present,false,mailbox,,
28.22.H17,UBND xã Hòa Sơn,,verify-if-present,false,mailbox,,
"""
#: Push-channel agencies of the demo: Cao Bằng takes pushes with the reference SOAP receiver, the Ministry
#: of Construction with the reference REST receiver; their statuses come back through SOAP and JSON.
SOAP_AGENCY, REST_AGENCY = "000.00.00.H14", "000.00.00.G17"
DEMO_SYSTEMS = {
    "tayninh-qlvb": ("000.00.00.H53", "000.00.01.A53"),
    "vpcp-qlvb": ("000.00.00.G22",),
    "national-samples": ("000.00.00.H41", "000.00.00.H14", "000.00.00.G17", "000.00.00.A80", "28.22.H17"),
}
#: The legacy district system (e-doc.vn profile) and the agency it logs in as (gateway.demo.legacy_demo).
LEGACY_SYSTEM, LEGACY_AGENCY = "hoathanh-edoc", "000.00.31.H53"
_MARKER = ".edoc-gateway-demo"


@dataclass(frozen=True)
class DemoSetup:
    """What :func:`prepare` made, for starting the processes and sending the traffic."""

    config: Path
    pki: DemoPki
    data_dir: Path
    soap_port: int
    rest_port: int
    rest_key: str
    url: str
    secrets: dict[str, str]
    #: The project's own sample corpus, written afresh into the data directory: its .edxml files in the
    #: order they are sent (documents before what refers to them, statuses last).
    corpus: tuple[Path, ...] = ()
    #: The operator console (``http://BIND/console/``), this run's accounts, and the generated history it shows.
    console_url: str = ""
    logins: tuple[DemoLogin, ...] = ()
    history: DemoHistory | None = None

    @property
    def corpus_dir(self) -> Path:
        return self.data_dir / "corpus"


def default_receiver_ports(bind: str) -> tuple[int, int]:
    """The reference receivers' fixed ports: the gateway's port + 1 (SOAP) and + 2 (REST), so the endpoints
    written into the registry and printed by the demo are the same on every run."""
    port = int(bind.rsplit(":", 1)[1])
    return port + 1, port + 2


def prepare(
    data_dir: Path,
    bind: str,
    echo: Callable[[str], object] = print,
    *,
    receiver_ports: tuple[int, int] | None = None,
) -> DemoSetup:
    """Create (afresh) the demo data directory: PKI, settings, database, registry, systems; the receivers'
    ports are ``receiver_ports`` (SOAP, REST), by default :func:`default_receiver_ports`."""
    _fresh_directory(data_dir)
    pki = create_demo_pki(data_dir / "pki")
    echo(f"== demo PKI: root CA {pki.root_cert}, intermediate {pki.chain}")
    host = bind.rsplit(":", 1)[0]
    soap_port, rest_port = receiver_ports or default_receiver_ports(bind)
    rest_key = secrets.token_urlsafe(24)
    config = _write_settings(data_dir, pki, bind, rest_key)
    settings = load_settings(config, env={})
    upgrade(settings)
    echo(f"== settings {config}, database {settings.effective_database_url}")
    endpoints = {
        "soap_endpoint": f"http://{host}:{soap_port}/receiver",
        "rest_endpoint": f"http://{host}:{rest_port}/inbox",
    }
    creds = _registry(settings, data_dir, endpoints, echo)
    units = demo_unit_names()
    history = add_history(settings, units, datetime.now(UTC))
    echo(
        f"== history: {history.documents} generated documents ({history.deliveries} deliveries) since "
        f"{local_date(history.since):%d/%m/%Y}, {history.agencies} more units of the province in the registry "
        "(metadata only: gateway.demo.console_demo says what it is)"
    )
    logins = add_operators(settings, units)
    corpus = tuple(p for p in write_corpus(data_dir / "corpus") if p.suffix == ".edxml")
    echo(f"== sample corpus: {len(corpus)} packages built in {data_dir / 'corpus'} (README.txt says what each shows)")
    return DemoSetup(
        config=config,
        pki=pki,
        url=f"http://{bind}/soap",
        secrets=creds,
        data_dir=data_dir,
        soap_port=soap_port,
        rest_port=rest_port,
        rest_key=rest_key,
        corpus=corpus,
        console_url=f"http://{bind}/console/",
        logins=logins,
        history=history,
    )


def demo_unit_names() -> dict[str, str]:
    """OrganId → name of the demo registry's units (:data:`DEMO_AGENCIES_CSV`)."""
    return {row["organ_id"]: row["name"] for row in csv.DictReader(io.StringIO(DEMO_AGENCIES_CSV))}


def _fresh_directory(data_dir: Path) -> None:
    """Empty ``data_dir`` — but only when an earlier demo made it (the marker file), never someone's data."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / _MARKER).exists():
            raise FileExistsError(f"{data_dir} exists and was not made by the demo; choose another --data-dir")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / _MARKER).write_text("created by edoc-gateway demo; deleted and recreated by the next demo run\n")


def _write_settings(data_dir: Path, pki: DemoPki, bind: str, rest_key: str) -> Path:
    """``gateway.toml`` with paths relative to the data directory and a generated secret key (mode 0600)."""
    config = data_dir / "gateway.toml"
    crls = ", ".join(f'"{c.relative_to(data_dir)}"' for c in pki.crls)
    config.write_text(
        "# Demo settings written by `edoc-gateway demo` (see deploy/edoc-gateway.env.example for all keys).\n"
        'data_dir = "."\n'
        f'bind = "{bind}"\n'
        "workers = 2\n"
        f'secret_key = "{secrets.token_urlsafe(32)}"\n'
        f'gateway_key = "{pki.gateway_key.relative_to(data_dir)}"\n'
        f'gateway_cert = "{pki.gateway_cert.relative_to(data_dir)}"\n'
        f'trust_store = "{pki.trust.relative_to(data_dir)}"\n'
        f"crl_files = [{crls}]\n"
        "worker_poll_seconds = 0.5\n"
        "retry_base_seconds = 2\n"
        "# The demo serves plain http on a loopback address: a Secure cookie would never come back.\n"
        "console_cookie_secure = false\n"
        "# The legacy district system gets attachments as Base64 text labelled binary, as the Bkav axis sent them.\n"
        f'legacy_base64_text = ["{LEGACY_AGENCY}"]\n'
        "\n# Channel credentials of push agencies (kept out of the database; deploy/README.md).\n"
        f'[credentials."{REST_AGENCY}"]\n'
        f'hmac_key = "{rest_key}"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def _registry(
    settings: Settings, data_dir: Path, endpoints: Mapping[str, str], echo: Callable[[str], object]
) -> dict[str, str]:
    """Import the demo agencies and add the demo systems; returns (and writes, mode 0600) their secrets."""
    csv_path = data_dir / "agencies.csv"
    csv_path.write_text(DEMO_AGENCIES_CSV.format(**endpoints), encoding="utf-8")
    with Registry.from_settings(settings) as registry:
        report = registry.import_file(csv_path)
        echo(f"== registry: {report.total} agencies imported from {csv_path}")
        creds = {sid: registry.add_system(sid, organs, name=sid) for sid, organs in DEMO_SYSTEMS.items()}
        # The legacy district system logs in with OrganId + Token (gateway.demo.legacy_demo).
        creds[LEGACY_SYSTEM] = registry.add_system(
            LEGACY_SYSTEM, [], name="Hệ thống QLVB huyện Hòa Thành (e-doc.vn)", legacy_organ=LEGACY_AGENCY
        )
    cred_file = data_dir / "credentials.txt"
    cred_file.write_text("".join(f"{sid} {secret}\n" for sid, secret in creds.items()), encoding="utf-8")
    cred_file.chmod(0o600)
    return creds
