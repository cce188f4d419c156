"""Issue 10, findings 2 and 3: hostile SOAP envelopes against the real gateway (gunicorn, deploy/gunicorn.conf.py,
the real services), on SQLite and PostgreSQL.

* Finding 2: one authenticated request of 1.1 MB with 100,000 attributes on one element held a worker 41–81 s
  (spyne walks ``attrib.items()``). The guard now holds the envelope to hard limits while it is parsed: each hostile
  shape below is refused with ``SIZE.LIMIT`` in tens of milliseconds, nothing stored — and a package of 15 MB (a
  20 MB base64 text node) still passes, the package element being exempt from the text limit.
* Finding 3: ``lru_cache`` keyed on caller-supplied organIds kept 8 MB identifiers alive (RSS 189 → 723 MB after
  8 requests) and Faults echoed them whole. Multi-MB identifiers now get a small Fault and leave the worker's RSS
  where it was — with the guard's limits in force, and with them raised so that the values reach the services.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from gatewayproc import gateway_env, served
from soapenv import Answer, envelope, fault_message, post, security_header

from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.edxml import Organization, render
from gateway.services.registry import Registry
from gateway.xmlcheck.signing import SigningKey, sign_package

A, B = "000.00.01.H53", "000.00.00.G22"
AGENCIES = (
    f"organ_id,name,signature_policy\n{A},Văn phòng UBND tỉnh,require\n{B},Văn phòng Chính phủ,verify-if-present\n"
)
MAX_PACKAGE = 16 * 1024 * 1024  # a 20 MB text node fits in the body limit (4/3 of this + 64 KB)
#: Server-side time allowed for a refusal (the guard's own log line). Measured: 1–60 ms (see the report of issue
#: 10); the bound leaves room for a loaded CI machine and still fails by two orders of magnitude for the old 41 s.
REFUSAL_MS = 500


@dataclass
class Gateway:
    url: str
    settings: Settings
    secrets: dict[str, str]
    log: Path
    pid: int

    def call(self, body: str | bytes, system: str = "SA") -> Answer:
        return post(self.url + "/soap", envelope(body, security_header(system, self.secrets[system])))

    def stored(self) -> tuple[int, ...]:
        engine = sa.create_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return tuple(
                    conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("documents", "deliveries", "status_history")
                )
        finally:
            engine.dispose()

    def last_guard_line(self) -> dict:
        """The guard's log line of the last SOAP request (JSON log format)."""
        for line in reversed(self.log.read_text("utf-8", errors="replace").splitlines()):
            if line.startswith("{") and '"gateway.web.guard"' in line and '"POST /soap' in line:
                return json.loads(line)
        raise AssertionError("no guard log line")

    def worker_rss_kb(self) -> int:
        """The resident set of every process under the gunicorn master (its workers), in KB."""
        return sum(_rss_kb(pid) for pid in _descendants(self.pid))


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1))


def _start(tmp: Path, database_url: str, pki, **limits: str) -> Iterator[Gateway]:
    env = gateway_env(tmp, database_url, pki, max_package_bytes=MAX_PACKAGE, WORKERS="1", **limits)
    settings = load_settings(env=env)
    upgrade(settings)
    registry = Registry.from_settings(settings)
    (tmp / "agencies.csv").write_text(AGENCIES, encoding="utf-8")
    registry.import_file(tmp / "agencies.csv")
    creds = {"SA": registry.add_system("SA", [A]), "SB": registry.add_system("SB", [B])}
    log = tmp / "gunicorn.log"
    with served(settings, env, log) as proc:
        yield Gateway(f"http://{settings.bind}", settings, creds, log, proc.pid)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(request, tmp_path_factory, pki) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp(f"limits-{request.param}")
    url = f"sqlite:///{tmp / 'gateway.db'}" if request.param == "sqlite" else None
    url = url or request.getfixturevalue("pg_cluster").new_database()
    yield from _start(tmp, url, pki)


def _package(pki, number: str) -> bytes:
    """A signed edoc from A to B (A's policy requires a signature)."""
    base = demo_package()
    header = dataclasses.replace(
        base.message_header,
        from_=Organization(organ_id=A, organ_name="Văn phòng UBND tỉnh"),
        to=(Organization(organ_id=B, organ_name="Văn phòng Chính phủ"),),
        document_id=f"{A},2026/11/28,{number}/VP-HCTC",
        code=dataclasses.replace(base.message_header.code, code_number=number),
    )
    data = render(dataclasses.replace(base, message_header=header))
    cred = pki.agencies[A]
    return sign_package(data, SigningKey.from_files(cred.key, cred.cert, pki.chain))


def _attributes(n: int) -> str:
    return " ".join(f'a{i}="x"' for i in range(n))


HOSTILE = {
    # finding 2 as reported: 1.1 MB, 100,000 attributes on one element
    "100k-attributes-on-operation": f"<t:GetPendingList {_attributes(100_000)}><t:organId>{B}</t:organId>"
    "</t:GetPendingList>",
    "100k-attributes-on-parameter": f"<t:GetPendingList><t:organId {_attributes(100_000)}>{B}</t:organId>"
    "</t:GetPendingList>",
    "100k-namespace-declarations": "<t:GetAgencies "
    + " ".join(f'xmlns:p{i}="urn:p{i}"' for i in range(100_000))
    + "/>",
    "100k-deep-nesting": "<t:GetAgencies>" + "<a>" * 100_000 + "</a>" * 100_000 + "</t:GetAgencies>",
    "100k-elements": "<t:GetAgencies>" + "<a/>" * 100_000 + "</t:GetAgencies>",
    "20mb-text-in-organId": "<t:GetPendingList><t:organId>" + "A" * 20_000_000 + "</t:organId></t:GetPendingList>",
    "20mb-text-beside-the-package": "<t:SendEdoc><t:edxmlPackage>PGEvPg==</t:edxmlPackage>"
    + " " * 20_000_000
    + "</t:SendEdoc>",
    "1mb-attribute-value": f'<t:GetAgencies a="{"v" * 1_000_000}"/>',
    "300-char-organId": f"<t:GetPendingList><t:organId>{'0' * 300}</t:organId></t:GetPendingList>",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_envelope_shapes_are_size_limit_in_milliseconds(gateway, case):
    before = gateway.stored()
    started = time.perf_counter()
    answer = gateway.call(HOSTILE[case])
    round_trip_ms = (time.perf_counter() - started) * 1000
    assert (answer.status, answer.code) == (500, "SIZE.LIMIT"), fault_message(answer)
    assert len(answer.body) < 4096
    line = gateway.last_guard_line()
    assert line["code"] == "SIZE.LIMIT"
    print(
        f"{case}: {len(HOSTILE[case]) / 1e6:.2f} MB, guard {line['duration_ms']} ms, round trip {round_trip_ms:.0f} ms"
    )
    assert line["duration_ms"] < REFUSAL_MS
    assert gateway.stored() == before


def test_a_package_with_100k_attributes_is_refused_and_nothing_stored(gateway, pki):
    package = base64.b64encode(_package(pki, "811")).decode()
    before = gateway.stored()
    answer = gateway.call(f"<t:SendEdoc {_attributes(100_000)}><t:edxmlPackage>{package}</t:edxmlPackage></t:SendEdoc>")
    assert answer.code == "SIZE.LIMIT"
    assert gateway.last_guard_line()["duration_ms"] < REFUSAL_MS
    assert gateway.stored() == before
    # the same package in a plain envelope is taken: the limits refuse the shape, not the package
    assert not gateway.call(f"<t:SendEdoc><t:edxmlPackage>{package}</t:edxmlPackage></t:SendEdoc>").fault
    assert gateway.stored()[0] == before[0] + 1


def test_a_15_mb_package_is_not_held_to_the_text_limit(gateway, pki):
    """The package is one 20 MB base64 text node: exempt from soap_max_text_chars (64 K), bounded by the body."""
    package = _package(pki, "812")
    padded = package + b"\n" * (15 * 1024 * 1024 - len(package))  # whitespace after the root: the same document
    before = gateway.stored()
    answer = gateway.call(
        f"<t:SendEdoc><t:edxmlPackage>{base64.b64encode(padded).decode()}</t:edxmlPackage></t:SendEdoc>"
    )
    assert not answer.fault, fault_message(answer)
    assert gateway.stored()[0] == before[0] + 1


def test_a_long_identifier_is_clipped_in_the_fault(gateway):
    """Below the identifier limit but no OrganId: the service's ACCESS.DENIED quotes it, clipped to 64 characters."""
    organ = "9" * 200
    answer = gateway.call(f"<t:GetPendingList><t:organId>{organ}</t:organId></t:GetPendingList>")
    assert answer.code == "ACCESS.DENIED"
    message = fault_message(answer)
    assert organ not in message
    assert "9" * 64 + "…(200 bytes)" in message


# ------------------------------------------------------------------------------------------ finding 3: memory

EIGHT_MB = 8 * 1024 * 1024


def _identifier_requests(n: int) -> Iterator[str]:
    """Operations whose identifier parameter carries ``n`` characters (a different value each time: a cache keyed
    on them would keep every one)."""
    for i in range(8):
        value = f"{i:03d}" + "X" * (n - 3)
        yield [
            f"<t:GetPendingList><t:organId>{value}</t:organId></t:GetPendingList>",
            f"<t:GetStatusHistory><t:documentId>{value}</t:documentId></t:GetStatusHistory>",
            f"<t:GetEdoc><t:deliveryId>{value}</t:deliveryId></t:GetEdoc>",
            f"<t:Acknowledge><t:deliveryId>{value}</t:deliveryId><t:status>done</t:status></t:Acknowledge>",
        ][i % 4]


def _rss_after_identifiers(gateway: Gateway) -> tuple[int, int, set[str]]:
    gateway.call("<t:GetAgencies/>")  # warm: the WSDL-free path, spyne and the database pool are loaded
    gateway.call(next(_identifier_requests(EIGHT_MB)))
    idle = gateway.worker_rss_kb()
    codes = set()
    for body in _identifier_requests(EIGHT_MB):
        answer = gateway.call(body)
        assert answer.fault
        assert len(answer.body) < 4096, len(answer.body)  # never the 8 MB value echoed back
        assert "X" * 100 not in answer.body.decode()
        codes.add(answer.code)
    return idle, gateway.worker_rss_kb(), codes


def test_multi_mb_identifiers_are_refused_small_and_leave_rss_alone(gateway):
    idle, after, codes = _rss_after_identifiers(gateway)
    assert codes == {"SIZE.LIMIT"}
    print(f"worker RSS {idle // 1024} MB before, {after // 1024} MB after 8 requests with 8 MB identifiers")
    assert after - idle < 40 * 1024


@pytest.fixture
def unlimited(tmp_path, pki) -> Iterator[Gateway]:
    """A gateway whose envelope limits let 16 MB identifiers through to the services (SQLite)."""
    yield from _start(
        tmp_path,
        f"sqlite:///{tmp_path / 'gateway.db'}",
        pki,
        SOAP_MAX_TEXT_CHARS=str(MAX_PACKAGE),
        SOAP_MAX_IDENTIFIER_CHARS=str(MAX_PACKAGE),
    )


def test_services_keep_no_multi_mb_identifier_and_faults_clip_them(unlimited):
    """Defence in depth: with the guard's limits raised, the values reach the access rule (the old lru_cache) and
    the services' messages. Every Fault stays small, and the worker keeps none of them: its RSS stops growing with
    the number of such requests (the old cache kept each value, and its Fault, alive: 8 MB+ per request, without
    bound). The first rounds fill bounded working sets — the allocator's, and SQLite's statement cache, which holds
    the last values bound to each cached statement of each pooled connection — that later rounds reuse."""
    first_idle, first, codes = _rss_after_identifiers(unlimited)
    assert codes <= {"ACCESS.DENIED", "NOT_FOUND"}, codes
    rounds = [first]
    for _ in range(5):
        _, later, codes = _rss_after_identifiers(unlimited)
        rounds.append(later)
    print(
        f"(limits raised) worker RSS {first_idle // 1024} MB idle, after each round of 8 requests (MB): "
        + ", ".join(str(r // 1024) for r in rounds)
    )
    # The last 24 requests (192 MB of identifiers): a cache of their values would lift the high-water mark by 192 MB
    # at least. One round's RSS swings by ±60 MB with where the allocator happens to stand (measured in CI: 217, 194,
    # 154, 194, 170, 218), so compare high-water marks, not two single rounds.
    assert max(rounds[3:]) - max(rounds[:3]) < 64 * 1024
