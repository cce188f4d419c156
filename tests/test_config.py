"""Settings: the TOML file and EDOC_GATEWAY_* variables, and the refusal of keys nobody reads (issue 8 item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import FILE_TABLES, OTHER_ENV, load_settings
from gateway.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_settings_and_file_only_tables_are_read(tmp_path):
    path = write(
        tmp_path,
        'workers = 3\nbind = "127.0.0.1:9999"\ndata_dir = "state"\n'
        '[credentials."000.00.00.G17"]\nhmac_key = "k"\n'
        '[vdxp]\nendpoint = "http://127.0.0.1:1/vdxp"\nsystem_id = "s"\n'
        '[edocvn]\nendpoint = "http://127.0.0.1:1/legacy/edoc"\n'
        '[adapters]\nsoap = "adapters.soap:SoapAdapter"\n',
    )
    settings = load_settings(path, env={})
    assert (settings.workers, settings.bind, settings.data_dir) == (3, "127.0.0.1:9999", tmp_path / "state")
    assert set(settings.extra) == set(FILE_TABLES)
    assert settings.extra["credentials"] == {"000.00.00.G17": {"hmac_key": "k"}}


@pytest.mark.parametrize(
    ("text", "named", "suggested"),
    [
        ("wokers = 3\n", "'wokers'", "'workers'"),
        ('secretkey = "0123456789abcdef"\n', "'secretkey'", "'secret_key'"),
        ('[credential."000.00.00.G17"]\nhmac_key = "k"\n', "'credential'", "'credentials'"),
        ("colour = 1\n", "'colour'", None),
    ],
)
def test_an_unknown_key_in_the_file_is_refused_with_the_closest_known_key(tmp_path, text, named, suggested):
    path = write(tmp_path, "workers = 2\n" + text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.code == "CONFIG.INVALID"
    assert named in info.value.message and str(path) in info.value.message
    if suggested:
        assert f"(did you mean {suggested}?)" in info.value.message
    else:
        assert "did you mean" not in info.value.message


def test_a_file_only_table_given_as_a_value_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="vdxp must be a table"):
        load_settings(write(tmp_path, 'vdxp = "http://127.0.0.1:1/vdxp"\n'), env={})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("EDOC_GATEWAY_WORKER", "EDOC_GATEWAY_WORKER (did you mean EDOC_GATEWAY_WORKERS?)"),
        ("EDOC_GATEWAY_SECRETKEY", "EDOC_GATEWAY_SECRETKEY (did you mean EDOC_GATEWAY_SECRET_KEY?)"),
        ("EDOC_GATEWAY_VDXP_ENDPOINT", "EDOC_GATEWAY_VDXP_ENDPOINT ([vdxp] is read from the settings file only)"),
        ("EDOC_GATEWAY_ZZZ", "EDOC_GATEWAY_ZZZ"),
    ],
)
def test_an_unknown_environment_variable_is_refused(name, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(env={"EDOC_GATEWAY_WORKERS": "2", name: "1"})
    assert expected in info.value.message
    assert info.value.detail["keys"] == [name]


def test_variables_that_are_not_settings_are_accepted(tmp_path):
    env = {name: "x" for name in OTHER_ENV} | {"EDOC_GATEWAY_TEST_PG_URL": "x", "EDOC_OTHER_TOOL": "x"}
    env["EDOC_GATEWAY_CONFIG"] = str(write(tmp_path, "workers = 4\n"))
    assert load_settings(env=env).workers == 4


def test_the_environment_still_wins_over_the_file(tmp_path):
    path = write(tmp_path, "workers = 4\n")
    assert load_settings(path, env={"EDOC_GATEWAY_WORKERS": "7"}).workers == 7


def test_serving_settings_default_to_trusting_no_proxy_and_bounded_serving():
    settings = load_settings(env={})
    assert settings.trusted_proxies == ()  # issue 10 finding 6: no forwarded header believed from anyone
    settings.require_serving()
    chosen = load_settings(env={"EDOC_GATEWAY_TRUSTED_PROXIES": "127.0.0.1, 10.1.0.0/16"})
    assert chosen.trusted_proxies == ("127.0.0.1", "10.1.0.0/16")
    chosen.require_serving()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"EDOC_GATEWAY_TRUSTED_PROXIES": "10.1.2.3/16"}, "10.1.2.3/16"),  # host bits set: a typo, not a network
        ({"EDOC_GATEWAY_TRUSTED_PROXIES": "*"}, "'*'"),  # trusting everyone is not a setting
        ({"EDOC_GATEWAY_TRUSTED_PROXIES": "nginx.local"}, "nginx.local"),
        ({"EDOC_GATEWAY_WORKER_THREADS": "0"}, "worker_threads"),
        ({"EDOC_GATEWAY_BODY_MIN_RATE": "0"}, "body_min_rate"),
        ({"EDOC_GATEWAY_MAX_REQUESTS_PER_SYSTEM": "0"}, "max_requests_per_system"),
    ],
)
def test_serving_settings_that_would_trust_or_bound_nothing_stop_start_up(env, named):
    with pytest.raises(ConfigError) as info:
        load_settings(env=env).require_serving()
    assert named in info.value.message


@pytest.mark.parametrize("path", ["/services/EdocProxy", "/edoc/v1", "/services/Edoc_Proxy.svc", "/console2"])
def test_legacy_paths_take_a_proxy_path(path):
    settings = load_settings(env={"EDOC_GATEWAY_LEGACY_PATHS": f"{path},/legacy/other"})
    assert settings.legacy_paths == (path, "/legacy/other")


@pytest.mark.parametrize(
    "path",
    ["/soap", "/soap/x", "/vdxp/sendEdoc", "/console/", "/admin", "/metrics", "services/x", "/a//b", "/a b", "/"],
)
def test_legacy_paths_never_take_another_edges_path_or_a_malformed_one(path):
    with pytest.raises(ConfigError) as info:
        load_settings(env={"EDOC_GATEWAY_LEGACY_PATHS": path})
    assert info.value.code == "CONFIG.INVALID" and "legacy_paths" in str(info.value)


def test_legacy_base64_text_lists_organ_ids_or_every_one():
    assert load_settings(env={"EDOC_GATEWAY_LEGACY_BASE64_TEXT": "000.00.13.H53,*"}).legacy_base64_text == (
        "000.00.13.H53",
        "*",
    )
