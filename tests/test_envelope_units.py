"""Issue 10 units of the SOAP edge that need no server: the WSDL address from settings, the Fault clip, the OrganId
cache bound, the bounded parser's accounting (served behaviour: test_envelope_limits.py, test_envelope_fuzz.py)."""

from __future__ import annotations

import pytest

from gateway.config import Settings, load_settings
from gateway.errors import AccessError, ConfigError, EdxmlForbiddenError, SizeLimitError, clip
from gateway.services import access
from gateway.web.faults import FaultInfo
from gateway.xmlcheck.safe import TreeLimits, parse_bounded

LIMITS = TreeLimits(max_depth=4, max_elements=10, max_attributes=2, max_text_chars=8, bulk=frozenset({("r", "pkg")}))


@pytest.mark.parametrize(
    ("bind", "public_url", "expected"),
    [
        ("127.0.0.1:8080", "", "http://127.0.0.1:8080"),
        ("0.0.0.0:9000", "", "http://127.0.0.1:9000"),
        ("[::]:9000", "", "http://[::1]:9000"),
        ("127.0.0.1:8080", "https://axis.example.gov.vn/edoc/", "https://axis.example.gov.vn/edoc"),
    ],
)
def test_public_base_url_comes_from_settings(bind, public_url, expected):
    assert Settings(bind=bind, public_url=public_url).public_base_url == expected


@pytest.mark.parametrize(
    "url", ["axis.example.gov.vn", "ftp://x/", "https://x/?a=1", "https://x/#f", 'https://x/"><a', "https:///soap"]
)
def test_public_url_must_be_a_plain_http_url(url):
    with pytest.raises(ConfigError):
        load_settings(env={"EDOC_GATEWAY_PUBLIC_URL": url})


def test_envelope_limits_are_settings_with_a_floor():
    assert load_settings(env={"EDOC_GATEWAY_SOAP_MAX_ATTRIBUTES": "64"}).soap_max_attributes == 64
    with pytest.raises(ConfigError):
        Settings(soap_max_depth=2)


def test_clip_cuts_long_runs_and_says_how_long_they_were():
    value = "é" * 5000
    clipped = clip(f"system s may not read the mailbox of {value}")
    assert clipped == "system s may not read the mailbox of " + "é" * 64 + "…(10000 bytes)"
    assert clip("short words stay as they are") == "short words stay as they are"
    assert len(clip(" ".join(["x" * 200] * 1000))) < 2100
    info = FaultInfo.from_error(AccessError(f"no {value}", path=f"/Envelope/Body/X/{value}"))
    assert len(info.message) < 100 and len(info.path) < 120


def test_the_organ_cache_never_holds_a_caller_value_that_is_not_an_organ_id():
    access._valid_organ.cache_clear()
    huge = "0" * 8_000_000
    assert not access.acts_for(("000.00.00.H02",), huge)
    assert not access.acts_for(("000.00.00.H02",), "000.00.00.H03")
    assert access.acts_for(("000.00.00.H02",), "000.00.01.H02")
    assert access._valid_organ.cache_info().currsize == 3  # H03, H02 (acting), 01.H02: never `huge`
    assert access._organ(huge) is None


@pytest.mark.parametrize(
    ("xml", "kind"),
    [
        (b"<r><a><b><c><d/></c></b></a></r>", "depth"),
        (b"<r>" + b"<a/>" * 10 + b"</r>", "elements"),
        (b'<r a="1" b="2" c="3"/>', "attributes"),
        (b'<r xmlns:p="u" xmlns:q="v" a="1"/>', "attributes"),
        (b"<r>123456789</r>", "text"),
        (b"<r><a/>123456789</r>", "text"),
        (b'<r a="123456789"/>', "text"),
        (b"<r><pkg>1</pkg>123456789</r>", "text"),
        (b"<r>" + b'<a xmlns:p="u"/>' * 11 + b"</r>", "elements"),
    ],
)
def test_bounded_parse_refuses_each_limit(xml, kind):
    with pytest.raises(SizeLimitError) as err:
        parse_bounded(xml, LIMITS)
    assert err.value.code == "SIZE.LIMIT" and err.value.detail["kind"] == kind


def test_bounded_parse_exempts_the_bulk_path_only_and_merges_text_around_comments():
    root = parse_bounded(b"<r><pkg>QUJD<!-- x -->RA==" + b"A" * 1000 + b"</pkg></r>", LIMITS, strip_comments=True)
    assert root.getroot()[0].text == "QUJDRA==" + "A" * 1000
    with pytest.raises(SizeLimitError):
        parse_bounded(b"<r><a><pkg>" + b"A" * 100 + b"</pkg></a></r>", LIMITS)


def test_bounded_parse_refuses_processing_instructions_when_asked():
    with pytest.raises(EdxmlForbiddenError) as err:
        parse_bounded(b"<r><a><?x y?></a></r>", LIMITS, forbid_pis=True)
    assert err.value.path == "/r/a"
    assert parse_bounded(b"<r><?x y?></r>", LIMITS).getroot() is not None


def test_json_error_bodies_clip_caller_values_like_faults():
    """The JSON edges answer ``GatewayError.to_dict``: a multi-megabyte identifier is not echoed back whole there
    either — in the message, the path or a detail (strings and lists of them)."""
    from gateway.errors import RouteError

    huge = "9" * 8_000_000
    body = RouteError(f"unknown or inactive recipient(s): {huge}", path=f"/To/{huge}", recipients=[huge] * 500)
    out = body.to_dict()
    assert len(str(out)) < 20_000
    assert out["message"].startswith("unknown or inactive recipient(s): 9999") and "(8000000 bytes)" in out["message"]
    assert len(out["detail"]["recipients"]) == 100 and all(len(r) < 100 for r in out["detail"]["recipients"])
