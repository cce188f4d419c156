"""Registry administration (agencies import/export/list, systems add/list) and system secrets at rest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from gateway.config import Settings
from gateway.db import Store, create_engine, upgrade
from gateway.errors import AuthError, ConfigError, NotFoundError, RequestError
from gateway.services.auth import Authenticator, SecretBox, hash_secret, verify_secret_hash
from gateway.services.registry import Registry, RegistryImportError
from gateway.services.registry_rows import COLUMNS

KEY = "registry-test-key-0123456789"
FP1, FP2 = "ab" * 32, "cd" * 32

CSV = f"""organ_id,name,signature_policy,cert_fingerprints
000.00.00.H53,UBND tỉnh Tây Ninh,require,
000.00.01.H53,Văn phòng UBND tỉnh,require,{FP1};{":".join(FP2[i : i + 2] for i in range(0, 64, 2)).upper()}
000.01.01.H53,Ban Tiếp Công dân,,
000.00.00.G22,Văn phòng Chính phủ,off,
vxp.saas.02,Tenant thử nghiệm,,
"""


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(create_engine(database_url))
    s.create_schema()
    yield s
    s.engine.dispose()


@pytest.fixture
def registry(store: Store, tmp_path) -> Registry:
    return Registry(store, Settings(data_dir=tmp_path, secret_key=KEY), clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def test_csv_import_derives_level_and_parent(registry: Registry):
    report = registry.import_csv(CSV)
    assert (report.created, report.updated, report.total) == (5, 0, 5)
    got = {a.organ_id: a for a in registry.list_agencies()}
    assert (got["000.00.00.H53"].level, got["000.00.00.H53"].parent) == (1, None)
    assert (got["000.00.01.H53"].level, got["000.00.01.H53"].parent) == (2, "000.00.00.H53")
    assert (got["000.01.01.H53"].level, got["000.01.01.H53"].parent) == (3, "000.00.01.H53")
    assert (got["vxp.saas.02"].level, got["vxp.saas.02"].parent) == (None, None)
    assert got["000.00.01.H53"].cert_fingerprints == (FP1, FP2)
    assert got["000.01.01.H53"].signature_policy == "verify-if-present"  # default
    assert got["000.00.00.G22"].signature_policy == "off"
    assert all(a.channel == "mailbox" and a.active and not a.allow_sha1 for a in got.values())
    assert [a.organ_id for a in registry.list_agencies(parent="000.00.01.H53")] == ["000.01.01.H53"]


def test_reimport_updates_only_what_the_row_gives(registry: Registry):
    registry.import_csv(CSV)
    registry.set_agency_policy("000.01.01.H53", emit_arrived_on_ack=True, signature_policy="require")
    report = registry.import_records([{"organ_id": "000.01.01.H53", "name": "Ban Tiếp Công dân tỉnh"}])
    assert (report.created, report.updated) == (0, 1)
    a = registry.agency("000.01.01.H53")
    assert a.name == "Ban Tiếp Công dân tỉnh"
    assert a.emit_arrived_on_ack and a.signature_policy == "require"  # kept
    assert a.parent == "000.00.01.H53"


def test_invalid_rows_reject_the_whole_file_listing_every_row(registry: Registry, store: Store):
    registry.import_csv(CSV)
    before = store.counts()
    bad = (
        "organ_id,name,channel,active,signature_policy,endpoint\n"
        "000.00.05.H53,Sở mới,mailbox,true,,\n"  # fine, but must not be imported either
        "not an id!,X,,,,\n"
        ",,,,,\n"
        "000.00.06.H53,Sở B,pigeon,maybe,strict,\n"
        "000.00.07.H53,Sở C,soap,,,\n"  # a push channel without an endpoint
        "000.00.05.H53,Sở mới lần 2,,,,\n"  # the same agency twice
    )
    with pytest.raises(RegistryImportError) as info:
        registry.import_csv(bad)
    problems = info.value.detail["problems"]
    assert sorted({p["row"] for p in problems}) == [2, 3, 4, 5, 6]
    assert {p["field"] for p in problems if p["row"] == 4} == {"channel", "active", "signature_policy"}
    assert "row(s) 2, 3, 4, 5, 6" in info.value.message and info.value.code == "REGISTRY.INVALID"
    assert store.counts() == before
    with pytest.raises(RegistryImportError, match="unknown column"):
        registry.import_records([{"organ_id": "000.00.05.H53", "name": "x", "colour": "red"}])
    with pytest.raises(RegistryImportError, match="fingerprint"):
        registry.import_records([{"organ_id": "000.00.05.H53", "name": "x", "cert_fingerprints": "abc"}])


def test_json_import_and_exports_round_trip(registry: Registry, tmp_path):
    doc = [
        {"organ_id": "000.00.00.H53", "name": "UBND tỉnh", "allow_sha1": True},
        {
            "organ_id": "000.00.01.H53",
            "name": "Văn phòng",
            "channel": "soap",
            "endpoint": "https://vp.example/edoc?wsdl",
            "cert_fingerprints": [FP1],
            "system": "00.53.W00",
            "emit_arrived_on_ack": "yes",
        },
    ]
    path = tmp_path / "agencies.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert registry.import_file(path).created == 2
    a = registry.agency("000.00.01.H53")
    assert (a.channel, a.endpoint, a.system_id, a.emit_arrived_on_ack, a.parent) == (
        "soap",
        "https://vp.example/edoc?wsdl",
        "00.53.W00",
        True,
        "000.00.00.H53",
    )
    csv_text = registry.export("csv")
    assert csv_text.splitlines()[0] == ",".join(COLUMNS)
    json_text = registry.export("json")
    assert json.loads(json_text)[1]["cert_fingerprints"] == [FP1]
    # Re-importing an export changes nothing.
    (tmp_path / "export.csv").write_text(csv_text, encoding="utf-8")
    assert registry.import_file(tmp_path / "export.csv").updated == 2
    assert registry.export("csv") == csv_text
    assert registry.import_json(json_text).updated == 2
    assert registry.export("json") == json_text
    with pytest.raises(RequestError):
        registry.export("xml")
    (tmp_path / "agencies.xlsx").write_bytes(b"")
    with pytest.raises(RequestError):
        registry.import_file(tmp_path / "agencies.xlsx")
    with pytest.raises(RegistryImportError):
        registry.import_json('{"organ_id": "x"}')


def test_set_agency_policy(registry: Registry):
    registry.import_csv(CSV)
    a = registry.set_agency_policy("000.00.00.G22", signature_policy="require", cert_fingerprints=[f"sha256:{FP2}"])
    assert a.signature_policy == "require" and a.cert_fingerprints == (FP2,)
    with pytest.raises(RequestError):
        registry.set_agency_policy("000.00.00.G22", signature_policy="sometimes")
    with pytest.raises(RequestError):
        registry.set_agency_policy("000.00.00.G22", cert_fingerprints=["nope"])
    with pytest.raises(RequestError):
        registry.set_agency_policy("000.00.00.G22", channel="fax")
    with pytest.raises(NotFoundError):
        registry.set_agency_policy("000.00.09.G22", active=False)


def test_systems_add_and_list_never_show_secrets(registry: Registry, store: Store, tmp_path):
    registry.import_csv(CSV)
    secret = registry.add_system("00.53.W00", ["000.00.01.H53", "000.00.00.G22"], name="Trục Tây Ninh")
    assert len(secret) >= 43
    (info,) = registry.list_systems()
    assert (info.id, info.name, info.active, info.agencies) == (
        "00.53.W00",
        "Trục Tây Ninh",
        True,
        ("000.00.00.G22", "000.00.01.H53"),
    )
    assert not hasattr(info, "secret") and secret not in repr(info)
    row = store.registry.system("00.53.W00")
    assert row is not None
    assert secret.encode() not in row.secret_enc and secret not in row.secret_hash
    assert secret not in repr(row)
    assert SecretBox(KEY).open("00.53.W00", row.secret_enc) == secret
    assert verify_secret_hash(secret, row.secret_hash) and not verify_secret_hash("x", row.secret_hash)
    auth = Authenticator(store, Settings(data_dir=tmp_path, secret_key=KEY), lambda: datetime.now(UTC))
    assert auth.basic("00.53.W00", secret) == "00.53.W00"
    with pytest.raises(AuthError):
        auth.basic("00.53.W00", secret + "x")

    with pytest.raises(RequestError, match="already exists"):
        registry.add_system("00.53.W00", ["000.00.01.H53"])
    with pytest.raises(RequestError, match="unknown agencies"):
        registry.add_system("other", ["000.00.09.H53"])
    with pytest.raises(RequestError):
        registry.add_system("bad id with spaces", ["000.00.01.H53"])
    with pytest.raises(RequestError):
        registry.add_system("lonely", [])
    assert [s.id for s in registry.list_systems()] == ["00.53.W00"]  # nothing half-added
    with pytest.raises(NotFoundError):
        registry.rotate_secret("nobody")


def test_secret_box_binds_key_and_system():
    blob = SecretBox(KEY).seal("sys-1", "s3cret")
    assert SecretBox(KEY).open("sys-1", blob) == "s3cret"
    with pytest.raises(ConfigError):
        SecretBox("another-key-0123456789").open("sys-1", blob)
    with pytest.raises(ConfigError):
        SecretBox(KEY).open("sys-2", blob)  # copied onto another system's row
    with pytest.raises(ConfigError):
        SecretBox("")
    assert hash_secret("x") != hash_secret("x")  # salted


def test_adding_a_system_needs_the_secret_key(store: Store, tmp_path):
    registry = Registry(store, Settings(data_dir=tmp_path))
    registry.import_records([{"organ_id": "000.00.00.H53", "name": "UBND"}])
    with pytest.raises(ConfigError):
        registry.add_system("sys", ["000.00.00.H53"])


def test_registry_from_settings_owns_and_releases_its_engine(database_url: str, tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=database_url, secret_key=KEY)
    upgrade(settings)
    with Registry.from_settings(settings) as registry:
        registry.import_csv(CSV)
        assert len(registry.list_agencies()) == 5
        assert registry.add_system("sys", ["000.00.00.H53"])
    with Registry.from_settings(settings) as again:
        assert [s.id for s in again.list_systems()] == ["sys"]


# ------------------------------------------------------------------------ parents and levels (issue 8 item 6)


def test_a_parent_must_be_registered_or_in_the_same_file(registry: Registry, store: Store):
    registry.import_csv(CSV)
    before = store.counts()
    with pytest.raises(RegistryImportError) as info:
        registry.import_csv(
            "organ_id,name,parent\n"
            "000.00.05.H53,Sở mới,000.00.00.H53\n"  # parent in the database: fine
            "000.00.01.H99,Văn phòng,000.00.00.H99\n"  # parent nowhere
            "vxp.saas.03,Tenant,vxp.saas.99\n"  # off-grammar identifiers too
        )
    problems = info.value.detail["problems"]
    assert [(p["row"], p["field"]) for p in problems] == [(2, "parent"), (3, "parent")]
    assert "parent 000.00.00.H99 is not registered" in problems[0]["message"]
    assert info.value.code == "REGISTRY.INVALID" and "row(s) 2, 3" in info.value.message
    assert store.counts() == before  # all rows or none
    # The parent later in the same file is enough.
    report = registry.import_csv(
        "organ_id,name,parent\n000.00.01.H99,Văn phòng,000.00.00.H99\n000.00.00.H99,UBND tỉnh,\n"
    )
    assert report.created == 2
    assert registry.agency("000.00.01.H99").parent == "000.00.00.H99"


@pytest.mark.parametrize(
    ("organ", "parent"),
    [
        ("001.01.01.H53", "000.00.01.H53"),  # level 4 directly under level 2
        ("000.01.01.H53", "000.00.00.H53"),  # level 3 directly under level 1
        ("000.00.05.H53", "000.00.01.H53"),  # level 2 under level 2
        ("000.00.00.H41", "000.00.00.H53"),  # level 1 under level 1
        ("000.00.05.H53", "000.01.01.H53"),  # upwards
    ],
)
def test_levels_must_nest_one_below_the_parent(registry: Registry, organ: str, parent: str):
    registry.import_csv(CSV)
    with pytest.raises(RegistryImportError) as info:
        registry.import_records([{"organ_id": organ, "name": "X", "parent": parent}])
    [problem] = info.value.detail["problems"]
    assert problem["field"] == "parent"
    assert "a unit is exactly one level below its parent" in problem["message"]


def test_nested_levels_and_identifiers_without_levels_are_accepted(registry: Registry):
    registry.import_csv(CSV)
    report = registry.import_records(
        [
            {"organ_id": "001.01.01.H53", "name": "Tổ", "parent": "000.01.01.H53"},  # 4 under 3
            {"organ_id": "000.12.31.H53", "name": "Thanh tra huyện", "parent": "000.00.31.H53"},  # 3 under 2
            {"organ_id": "000.00.31.H53", "name": "UBND huyện", "parent": "000.00.00.H53"},  # 2 under 1
            {"organ_id": "vxp.saas.03", "name": "Tenant", "parent": "000.00.00.G22"},  # no level: parent exists
        ]
    )
    assert report.created == 4
    assert registry.agency("001.01.01.H53").level == 4


def test_add_agency_is_a_validated_one_row_import(registry: Registry, store: Store):
    registry.import_csv(CSV)
    added = registry.add_agency("000.00.05.H53", name="Sở Xây dựng", channel="rest", endpoint="http://127.0.0.1:1/in")
    assert (added.level, added.parent, added.channel, added.signature_policy) == (
        2,
        "000.00.00.H53",
        "rest",
        "verify-if-present",
    )
    before = store.counts()
    cases = {
        "000.00.06.H53": ({"channel": "pigeon"}, "channel: channel must be one of"),
        "000.00.07.H53": ({"channel": "soap"}, "endpoint: channel soap needs an endpoint"),
        "000.00.08.H53": ({"parent": "000.00.00.H99"}, "parent: parent 000.00.00.H99 is not registered"),
        "001.01.01.H53": ({"parent": "000.00.01.H53"}, "a unit is exactly one level below its parent"),
        "not an id!": ({}, "is not an agency identifier"),
        "000.00.09.H53": ({"signature_policy": "sometimes"}, "signature_policy: signature_policy must be one of"),
    }
    for organ, (options, expected) in cases.items():
        with pytest.raises(RegistryImportError) as info:
            registry.add_agency(organ, name="X", **options)
        assert expected in info.value.message and info.value.message.endswith("nothing was added")
    with pytest.raises(RegistryImportError, match="already registered"):
        registry.add_agency("000.00.05.H53", name="Another name")
    assert registry.agency("000.00.05.H53").name == "Sở Xây dựng"  # never overwritten by add
    assert store.counts() == before


def test_an_endpoint_is_an_http_url_and_a_parent_is_never_one_of_the_agencys_own_units(
    registry: Registry, store: Store
):
    registry.import_csv(CSV)
    registry.import_records([{"organ_id": "a.b", "name": "A"}, {"organ_id": "c.d", "name": "C", "parent": "a.b"}])
    before = store.counts()
    for endpoint in ("ftp://x.example/", "x.example/edoc", "javascript:alert(1)", "http:///nohost", "http://a b/"):
        with pytest.raises(RegistryImportError, match="not an http"):
            registry.import_records(
                [{"organ_id": "000.00.05.H53", "name": "S", "channel": "soap", "endpoint": endpoint}]
            )
    with pytest.raises(RequestError, match="not an http"):
        registry.set_agency_policy("000.00.01.H53", endpoint="ftp://x.example/")
    # OrganIds outside the four-group form have no level: only a loop can make them wrong.
    with pytest.raises(RegistryImportError, match="cannot sit below itself"):
        registry.import_records([{"organ_id": "a.b", "name": "A", "parent": "c.d"}])
    assert store.counts() == before


def test_save_agency_is_the_import_row_and_an_edit_clears_what_it_leaves_empty(registry: Registry, store: Store):
    registry.import_csv(CSV)
    row = {"organ_id": "000.00.05.H53", "name": "Sở", "channel": "rest", "endpoint": "https://s.example/in",
           "contact_email": "a@s.example.vn", "cert_fingerprints": FP1}  # fmt: skip
    saved, before = registry.save_agency(row, new=True)
    assert before is None and (saved.parent, saved.level, saved.cert_fingerprints) == ("000.00.00.H53", 2, (FP1,))
    with pytest.raises(RegistryImportError, match="already registered"):
        registry.save_agency(row, new=True)
    with pytest.raises(NotFoundError):
        registry.save_agency({**row, "organ_id": "000.00.06.H53"}, new=False)
    after, before = registry.save_agency(
        {"organ_id": "000.00.05.H53", "name": "Sở", "channel": "mailbox", "endpoint": "", "contact_email": " "},
        new=False,
    )
    assert before == saved
    assert (after.endpoint, after.contact_email, after.cert_fingerprints, after.channel) == (None, None, (), "mailbox")
    counts = store.counts()
    with pytest.raises(RegistryImportError, match="needs an endpoint"):
        registry.save_agency({"organ_id": "000.00.05.H53", "name": "Sở", "channel": "soap"}, new=False)
    assert store.counts() == counts and registry.agency("000.00.05.H53") == after
