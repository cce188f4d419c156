"""Legacy credentials (issue 13 item 2): a system logging in through the e-doc.vn SOAP profile with its OrganId and
Token (legacy-edoc-vn.md §3, §16), on SQLite and PostgreSQL with the real store, and through the command line.

The cast (QCVN 102 OrganIds, level from the deepest non-zero group): P = 000.00.00.H53 (level 1, the province),
D = 000.00.12.H53 (level 2, a department under P), U3 = 000.01.12.H53 (level 3 under D), U4 = 001.01.12.H53
(level 4 under U3), S = 000.00.13.H53 (D's sibling), N = 000.02.12.H53 (a level-3 OrganId under D that is NOT
registered). Every agency has signature policy ``off``: these tests are about who may send, not signatures.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from test_services import SECRET_KEY, edoc

from gateway.config import Settings, load_settings
from gateway.db import Store, create_engine
from gateway.db import tables as t
from gateway.demo.pki import DemoPki
from gateway.errors import AccessError, AuthError, RateLimitedError, RequestError
from gateway.services.auth import Authenticator
from gateway.services.gateway import GatewayService
from gateway.services.legacy_credentials import generate_legacy_token, legacy_acts_for
from gateway.services.limits import source_scope
from gateway.xmlcheck.signing import SigningKey
from gateway.xmlcheck.trust import TrustStore

P, D, U3, U4, S, N = (
    "000.00.00.H53",
    "000.00.12.H53",
    "000.01.12.H53",
    "001.01.12.H53",
    "000.00.13.H53",
    "000.02.12.H53",
)
#: legacy-edoc-vn.md §3 "Token": the public example of the axis's token shape ("made up" there, used as given).
SPEC_TOKEN = "Qm9ndXNUb2tlbkV4YW1wbGUwMDE="
#: §3: "Base64-encoded → 28 characters ending in `=`".
AXIS_SHAPE = re.compile(r"^[A-Za-z0-9+/]{27}=$")
ATTACKER = "203.0.113.66"


@pytest.fixture
def make_service(database_url: str, tmp_path, pki: DemoPki) -> Iterator:
    services: list[GatewayService] = []

    def make(**overrides) -> GatewayService:
        settings = Settings(data_dir=tmp_path, database_url=database_url, secret_key=SECRET_KEY, **overrides)
        svc = GatewayService(
            create_engine(settings),
            SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain),
            TrustStore.from_files(pki.trust, pki.crls),
            settings,
        )
        if not services:
            svc.store.create_schema()
            svc.registry.import_records(
                [{"organ_id": o, "name": f"Đơn vị {o}", "signature_policy": "off"} for o in (P, D, U3, U4, S)]
            )
        services.append(svc)
        return svc

    yield make
    for svc in services:
        svc.close()


@pytest.fixture
def svc(make_service) -> GatewayService:
    return make_service(rate_per_system=0)


# ============================================================================================ the token


def test_the_spec_example_and_our_tokens_have_the_axis_shape():
    assert AXIS_SHAPE.match(SPEC_TOKEN) and len(base64.b64decode(SPEC_TOKEN, validate=True)) == 20
    tokens = {generate_legacy_token() for _ in range(200)}
    assert len(tokens) == 200  # random, not a constant
    for token in tokens:
        assert AXIS_SHAPE.match(token), token
        assert len(base64.b64decode(token, validate=True)) == 20


def test_a_token_is_encrypted_at_rest_and_shown_once(svc: GatewayService, database_url: str):
    token = svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    assert AXIS_SHAPE.match(token)
    with svc.store.engine.connect() as conn:
        row = conn.execute(select(t.systems).where(t.systems.c.id == "tn-edoc")).mappings().one()
    assert row["legacy_organ_id"] == D and row["legacy_scope"] == "strict"
    stored = repr(dict(row)).encode() + bytes(row["secret_enc"])
    raw = base64.b64decode(token)
    assert token.encode() not in stored and raw not in stored
    if database_url.startswith("sqlite:"):  # the whole database file, pages and journal included
        path = Path(database_url.removeprefix("sqlite:///"))
        for file in path.parent.glob(path.name + "*"):
            assert token.encode() not in file.read_bytes()
    # Shown once: no read of the registry gives it back.
    info = svc.registry.system_info("tn-edoc")
    assert token not in repr(info) and token not in repr(svc.registry.list_systems())
    assert token not in repr(svc.store.registry.system("tn-edoc"))
    assert (info.legacy_organ_id, info.legacy_scope, info.agencies) == (D, "strict", (D,))


def test_login_trims_both_values_and_returns_the_system(svc: GatewayService):
    token = svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    assert svc.authenticate_legacy(D, token) == "tn-edoc"
    # §3: the axis took getText() untrimmed, so a line break inside <Token>/<OrganId> broke the login; §16: trim.
    assert svc.authenticate_legacy(f"\n  {D}\t", f"\r\n {token}\n  ") == "tn-edoc"
    # The same token is the system's secret everywhere (HTTP Basic with its system id).
    assert svc.authenticate_basic("tn-edoc", token) == "tn-edoc"
    with pytest.raises(AuthError):  # inner whitespace is not trimmed: a different token
        svc.authenticate_legacy(D, token[:10] + " " + token[10:])


def test_rotation_refuses_the_old_token_and_gives_a_new_one_in_the_axis_shape(svc: GatewayService):
    old = svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    new = svc.registry.rotate_secret("tn-edoc")
    assert AXIS_SHAPE.match(new) and new != old
    with pytest.raises(AuthError):
        svc.authenticate_legacy(D, old)
    assert svc.authenticate_legacy(D, new) == "tn-edoc"
    # Other systems keep their own secret shape (43 URL-safe characters).
    plain = svc.registry.add_system("sys-p", [P])
    rotated = svc.registry.rotate_secret("sys-p")
    assert len(plain) == len(rotated) == 43 and "=" not in rotated


def test_unknown_disabled_and_wrong_all_answer_the_same_and_the_token_is_never_audited(svc: GatewayService):
    token = svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    other = svc.registry.add_system("tn-s", [], legacy_organ=S)
    svc.registry.set_system_active("tn-s", False)
    refusals = []
    for organ, given in ((D, SPEC_TOKEN), (P, token), (N, token), ("x" * 5000, token), (S, other), ("", token)):
        with pytest.raises(AuthError) as info:
            svc.authenticate_legacy(organ, given)
        refusals.append(info.value.to_dict())
    assert all(r == refusals[0] for r in refusals) and refusals[0]["code"] == "AUTH.DENIED"
    svc.registry.set_system_active("tn-s", True)
    assert svc.authenticate_legacy(S, other) == "tn-s"  # enabled again, with the token it had
    denied = svc.store.audit.entries(action="auth.denied", limit=100)
    assert denied and {e.detail["method"] for e in denied} == {"legacy"}
    for secret in (token, other, SPEC_TOKEN):
        assert all(secret not in repr(e) for e in denied)


def test_failures_are_throttled_like_every_other_method(make_service):
    svc = make_service(auth_failures_per_address=4, auth_failures_per_user=1000, rate_per_system=0)
    token = svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    with source_scope(ATTACKER):
        for guess in ("wrong", "guesses", "from", "one"):
            with pytest.raises(AuthError):
                svc.authenticate_legacy(D, guess + "=" * 24)
        with pytest.raises(RateLimitedError) as info:
            svc.authenticate_legacy(D, "another-guess")
        assert info.value.code == "RATE.LIMITED" and info.value.retry_after > 0
        with pytest.raises(RateLimitedError):  # an unknown OrganId from the blocked address: the same
            svc.authenticate_legacy(N, token)
        assert svc.authenticate_legacy(D, token) == "tn-edoc"  # checked cheaply: the honest system still gets in
    with pytest.raises(AuthError):  # another address is not blocked
        svc.authenticate_legacy(D, "typo")


def test_a_claimed_organ_id_is_blocked_across_addresses(make_service):
    svc = make_service(auth_failures_per_address=1000, auth_failures_per_user=3, rate_per_system=0)
    svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    for i in range(3):
        with source_scope(f"192.0.2.{i}"), pytest.raises(AuthError):
            svc.authenticate_legacy(f" {D} ", "guess")  # trimmed before it is counted: one key
    with source_scope("192.0.2.99"), pytest.raises(RateLimitedError):
        svc.authenticate_legacy(D, "guess")


# ============================================================================================ operator-given tokens


def test_an_operator_given_token_is_kept_and_a_malformed_one_refused(svc: GatewayService):
    assert svc.registry.add_system("tn-edoc", [], legacy_organ=D, secret=SPEC_TOKEN) == SPEC_TOKEN
    assert svc.authenticate_legacy(D, SPEC_TOKEN) == "tn-edoc"
    bad = {
        "space inside": "Qm9ndXNUb2tl bkV4YW1wbGUwMDE=",
        "line break": SPEC_TOKEN + "\n",
        "leading space": " " + SPEC_TOKEN,
        "too short": "Qm9ndXM=",
        "too long": "A" * 201,
        "not ASCII": "Qm9ndXNUb2tlbkV4YW1wbGUwMDđ=",
        "control": "Qm9ndXNUb2tlbkV4YW1wbGUw\x00DE=",
    }
    for why, token in bad.items():
        with pytest.raises(RequestError) as info:
            svc.registry.add_system(f"x-{len(token)}", [], legacy_organ=S, secret=token)
        assert info.value.code == "REQUEST.INVALID", why
        assert token.strip() not in str(info.value.to_dict()), why  # the refusal never echoes the token
        with pytest.raises(RequestError):
            svc.registry.rotate_secret("tn-edoc", secret=token)
    assert svc.authenticate_legacy(D, SPEC_TOKEN) == "tn-edoc"  # no refused rotation changed it
    assert svc.store.registry.system_by_legacy_organ(S) is None  # nothing half-added


def test_one_login_per_organ_id_and_no_scope_without_a_login(svc: GatewayService):
    svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    with pytest.raises(RequestError, match="already the login of system 'tn-edoc'"):
        svc.registry.add_system("tn-other", [D], legacy_organ=D)
    with pytest.raises(RequestError, match="needs a legacy OrganId"):
        svc.registry.add_system("sys-p", [P], legacy_scope="subtree")
    with pytest.raises(RequestError, match="not an OrganId"):
        svc.registry.add_system("tn-bad", [P], legacy_organ="000.00.12.H53 ")
    with pytest.raises(RequestError, match="unknown agencies"):  # the login must be a registered agency
        svc.registry.add_system("tn-n", [], legacy_organ=N)
    with pytest.raises(RequestError, match="is not a legacy scope"):
        svc.registry.add_system("tn-s", [], legacy_organ=S, legacy_scope="everyone")
    svc.registry.add_system("sys-p", [P])
    with pytest.raises(RequestError, match="not a legacy system"):
        svc.registry.set_system_legacy_scope("sys-p", "subtree")
    assert svc.registry.system_info("sys-p").legacy_organ_id is None


# ============================================================================================ whom it may send as


def _refused(svc: GatewayService, system_id: str, organ_id: str) -> AccessError:
    with pytest.raises(AccessError) as info:
        svc.authorise_legacy(system_id, organ_id)
    assert info.value.code == "ACCESS.DENIED"
    return info.value


def test_strict_sends_only_as_its_own_organ_id(svc: GatewayService):
    svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    svc.authorise_legacy("tn-edoc", D)
    refusal = _refused(svc, "tn-edoc", U3)
    assert "--legacy-scope subtree" in refusal.message  # the refusal names the switch
    for organ in (U4, S, P, N):
        _refused(svc, "tn-edoc", organ)


def test_subtree_sends_for_registered_units_below_but_not_a_sibling_or_the_parent(svc: GatewayService):
    svc.registry.add_system("tn-edoc", [], legacy_organ=D, legacy_scope="subtree")
    for organ in (D, U3, U4):
        svc.authorise_legacy("tn-edoc", organ)
    for organ in (S, P, N):  # sibling, parent, unregistered unit below it
        _refused(svc, "tn-edoc", organ)


def test_explicit_follows_the_system_agencies(svc: GatewayService):
    svc.registry.add_system("tn-edoc", [S], legacy_organ=D, legacy_scope="explicit")
    assert svc.registry.system_info("tn-edoc").agencies == (D, S)
    for organ in (D, S):
        svc.authorise_legacy("tn-edoc", organ)
    for organ in (U3, U4, P):
        _refused(svc, "tn-edoc", organ)


def test_the_switch_applies_from_the_next_request_and_a_disabled_system_is_refused(svc: GatewayService):
    svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    _refused(svc, "tn-edoc", U3)
    assert svc.registry.set_system_legacy_scope("tn-edoc", "subtree").legacy_scope == "subtree"
    svc.authorise_legacy("tn-edoc", U3)
    svc.registry.set_system_active("tn-edoc", False)
    _refused(svc, "tn-edoc", D)
    _refused(svc, "no-such-system", D)


def test_intake_applies_the_scope_whatever_edge_the_package_came_through(svc: GatewayService):
    """The token is also the system's Basic / WS-Security secret: /soap and /api must not walk around it."""
    svc.registry.add_system("tn-edoc", [], legacy_organ=D)
    svc.registry.add_system("sys-p", [P])  # an ordinary system: its usual subtree rule is unchanged
    child = edoc(U3, (S,))
    with pytest.raises(AccessError):
        svc.submit("tn-edoc", child)
    assert svc.store.counts()["documents"] == 0
    assert not svc.submit("tn-edoc", edoc(D, (S,))).duplicate
    assert not svc.submit("sys-p", edoc(U4, (S,))).duplicate
    svc.registry.set_system_legacy_scope("tn-edoc", "subtree")
    assert not svc.submit("tn-edoc", child).duplicate


def test_the_rule_table():
    rows = [
        ("strict", D, [D], D, True),
        ("strict", D, [D], U3, False),
        ("explicit", D, [D, S], S, True),
        ("explicit", D, [D, S], U3, False),
        ("subtree", D, [D], U4, True),
        ("subtree", D, [D], S, False),
        ("subtree", D, [D], P, False),
    ]
    assert [legacy_acts_for(scope, own, acting, organ) for scope, own, acting, organ, _ in rows] == [
        expected for *_, expected in rows
    ]


# ============================================================================================ the command line

EXE = shutil.which("edoc-gateway", path=str(Path(sys.executable).parent)) or "edoc-gateway"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("EDOC_GATEWAY_")}


def cli(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EXE, "--config", str(config), *args], input=stdin, capture_output=True, text=True, timeout=120, env=CLEAN_ENV
    )


def test_the_command_line_round_trip(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text('data_dir = "."\nsecret_key = "cli-legacy-test-0123456789"\n', encoding="utf-8")
    assert cli(config, "db", "upgrade").returncode == 0
    for organ in (P, D, U3, S):
        assert cli(config, "agencies", "add", organ, "--name", f"Đơn vị {organ}").returncode == 0
    added = cli(config, "systems", "add", "tn-edoc", "--legacy-organ", D)
    assert added.returncode == 0, added.stderr
    first, second = added.stdout.splitlines()
    assert first == (
        f"system tn-edoc acts for {D}; logs in as {D} and sends only as {D}; vdxp=strict legacy={D} scope=strict"
    )
    token = second.removeprefix("secret: ")
    assert AXIS_SHAPE.match(token)

    kept = cli(config, "systems", "add", "tn-s", "--legacy-organ", S, "--legacy-token-stdin", stdin=SPEC_TOKEN + "\n")
    assert kept.returncode == 0, kept.stderr
    assert SPEC_TOKEN not in kept.stdout
    malformed = cli(config, "systems", "add", "tn-p", "--legacy-organ", P, "--legacy-token-stdin", stdin="a b c d\n")
    assert malformed.returncode == 1 and "REQUEST.INVALID" in malformed.stderr and "a b c d" not in malformed.stderr

    rotated = cli(config, "systems", "rotate-secret", "tn-edoc")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.splitlines()[-1].removeprefix("secret: ")
    assert AXIS_SHAPE.match(new) and new != token
    assert cli(config, "systems", "update", "tn-edoc", "--legacy-scope", "subtree").stdout == (
        f"system tn-edoc: vdxp=strict legacy={D} scope=subtree\n"
    )
    assert cli(config, "systems", "update", "tn-edoc", "--legacy-scope", "wide").returncode == 1
    assert cli(config, "systems", "disable", "tn-s").returncode == 0
    assert cli(config, "systems", "add", "x", "--agency", P, "--legacy-scope", "strict").returncode == 2
    assert cli(config, "systems", "add", "x").returncode == 2  # neither --agency nor --legacy-organ
    listed = cli(config, "systems", "list").stdout.splitlines()
    assert listed[0].startswith("tn-edoc") and listed[0].endswith(f"legacy={D} scope=subtree")
    assert "(inactive)" in listed[1] and listed[1].endswith(f"legacy={S} scope=strict")

    settings = load_settings(config)
    store = Store(create_engine(settings))
    try:
        auth = Authenticator(store, settings, lambda: datetime.now(UTC))
        assert auth.legacy(D, new) == "tn-edoc"
        for organ, given in ((D, token), (S, SPEC_TOKEN)):  # the rotated-out token; the disabled system
            with pytest.raises(AuthError):
                auth.legacy(organ, given)
        assert cli(config, "systems", "enable", "tn-s").returncode == 0
        assert auth.legacy(S, SPEC_TOKEN) == "tn-s"
    finally:
        store.engine.dispose()
