"""Real non-Python SOAP stacks against the real gateway (issue 8 "Show"): node-soap and PHP's SoapClient.

Each client (tests/node/client.js, tests/php/client.php) loads the WSDL the gunicorn-served gateway publishes at
``/soap?wsdl``, authenticates with a WS-Security UsernameToken PasswordDigest — node-soap's own ``WSSecurity``; for
PHP, which has no WS-Security, a header the script builds itself — and sends, lists, fetches and acknowledges a
signed package exactly as an integrator's code would. The clients print one JSON object; the assertions are here.

A toolkit that is not installed skips its tests with what to run; .ci/run installs both (Debian ``nodejs npm php-cli
php-soap``, then ``npm ci --prefix tests/node``, from the committed package-lock.json pinning ``soap`` 1.13.0).
SQLite only: the store is exercised on both databases by test_e2e; here the subject is the wire.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from gatewayproc import gateway_env, served

from gateway.config import Settings, load_settings
from gateway.db.migrations import upgrade
from gateway.demo.documents import demo_package
from gateway.edxml import Organization, render
from gateway.services.registry import Registry
from gateway.xmlcheck.signing import SigningKey, sign_package

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
PHP_CLIENT = HERE / "php" / "client.php"
SENDER, RECIPIENT = "000.00.01.H53", "000.00.00.G22"
AGENCIES = f"""organ_id,name,signature_policy
{SENDER},Văn phòng UBND tỉnh Tây Ninh,require
{RECIPIENT},Văn phòng Chính phủ,verify-if-present
"""


def _node_argv() -> list[str]:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed (Debian packages nodejs npm), then run npm ci --prefix tests/node")
    if not (NODE_DIR / "node_modules" / "soap" / "package.json").is_file():
        pytest.skip("node-soap is not installed: run npm ci --prefix tests/node")
    return ["node", str(NODE_DIR / "client.js")]


def _php_argv() -> list[str]:
    php = shutil.which("php")
    if php is None:
        pytest.skip("PHP is not installed: apt-get install php-cli php-soap")
    modules = subprocess.run([php, "-m"], capture_output=True, text=True, check=False).stdout.split()
    if "soap" not in modules:
        pytest.skip("the PHP soap extension is missing: apt-get install php-cli php-soap")
    return [php, str(PHP_CLIENT)]


CLIENTS = {"node-soap": _node_argv, "php-soapclient": _php_argv}


@dataclass
class Gateway:
    wsdl: str
    settings: Settings
    secrets: dict[str, str]

    def documents(self) -> int:
        engine = sa.create_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one()
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, pki) -> Iterator[Gateway]:
    """One gunicorn-served gateway on SQLite for the module; each test sends its own document number."""
    tmp = tmp_path_factory.mktemp("soap-clients")
    env = gateway_env(tmp, f"sqlite:///{tmp / 'gateway.db'}", pki, max_package_bytes=2 * 1024 * 1024)
    settings = load_settings(env=env)
    upgrade(settings)
    registry = Registry.from_settings(settings)
    (tmp / "agencies.csv").write_text(AGENCIES, encoding="utf-8")
    registry.import_file(tmp / "agencies.csv")
    creds = {"SA": registry.add_system("SA", [SENDER]), "SB": registry.add_system("SB", [RECIPIENT])}
    with served(settings, env, tmp / "gunicorn.log"):
        yield Gateway(f"http://{settings.bind}/soap?wsdl", settings, creds)


def _signed_package(pki, number: str) -> tuple[bytes, str]:
    """The demo document from SENDER to RECIPIENT alone, numbered ``number``, signed with the sender's key."""
    base = demo_package()
    h = base.message_header
    h = dataclasses.replace(
        h,
        to=(Organization(organ_id=RECIPIENT, organ_name="Văn phòng Chính phủ"),),
        document_id=f"{SENDER},{h.document_id.split(',')[1]},{number}/VP-HCTC",
        code=dataclasses.replace(h.code, code_number=number),
    )
    cred = pki.agencies[SENDER]
    data = sign_package(
        render(dataclasses.replace(base, message_header=h)), SigningKey.from_files(cred.key, cred.cert, pki.chain)
    )
    return data, h.document_id


def _run(argv: list[str], tmp_path: Path, job: dict) -> dict:
    (tmp_path / "job.json").write_text(json.dumps(job), encoding="utf-8")
    run = subprocess.run([*argv, str(tmp_path / "job.json")], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    return json.loads(run.stdout)


def _flag(value: object) -> bool:
    """xs:boolean as the client decoded it: node-soap and ext-soap give a JSON boolean; tolerate the lexical form."""
    return value is True or str(value).lower() in ("true", "1")


@pytest.mark.parametrize("client", CLIENTS)
def test_a_real_client_round_trips_a_package_byte_identical(client, gateway, pki, tmp_path):
    argv = CLIENTS[client]()
    data, document_id = _signed_package(pki, f"{300 + list(CLIENTS).index(client)}")
    (tmp_path / "package.xml").write_bytes(data)
    out = _run(
        argv,
        tmp_path,
        {
            "wsdl": gateway.wsdl,
            "send": {"system": "SA", "secret": gateway.secrets["SA"], "package": str(tmp_path / "package.xml")},
            "receive": {"system": "SB", "secret": gateway.secrets["SB"], "organId": RECIPIENT},
        },
    )
    assert "fault" not in out, out
    receipt = out["receipt"]
    assert receipt["documentId"] == document_id
    assert receipt["sha256"] == hashlib.sha256(data).hexdigest()
    assert not _flag(receipt["duplicate"])
    assert [(i["documentId"], i["sender"], i["recipient"]) for i in out["pending"]] == [
        (document_id, SENDER, RECIPIENT)
    ]
    assert base64.b64decode(out["fetched"], validate=True) == data  # byte-identical through the client's stack
    assert _flag(out["acknowledged"])
    assert out["pendingAfter"] == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_a_real_client_with_a_wrong_secret_gets_the_auth_denied_fault(client, gateway, pki, tmp_path):
    argv = CLIENTS[client]()
    data, _ = _signed_package(pki, f"{400 + list(CLIENTS).index(client)}")
    (tmp_path / "package.xml").write_bytes(data)
    before = gateway.documents()
    out = _run(
        argv,
        tmp_path,
        {
            "wsdl": gateway.wsdl,
            "send": {"system": "SA", "secret": gateway.secrets["SA"] + "x", "package": str(tmp_path / "package.xml")},
        },
    )
    assert out["fault"]["code"] == "AUTH.DENIED", out
    assert out["fault"]["faultstring"].startswith("AUTH.DENIED"), out
    assert out["fault"]["faultcode"].endswith(":Client"), out  # the caller's fault, not retryable
    assert gateway.documents() == before  # nothing stored
