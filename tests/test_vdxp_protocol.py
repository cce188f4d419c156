"""gateway.protocols.vdxp against the VNPT SDK's requests: the verifier accepts each one and refuses tampering,
and signing reproduces every request of the real wire capture byte for byte (edxml.md §11.2, §11.4).

Each test runs on the requests built here the way the SDK builds them (``own``, tests/_vdxp_vectors.py) and on
the real capture when the external corpus has it (``real``): the ``sdk`` fixture."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import pytest
from _samples import OWN, REAL
from _vdxp_vectors import CapturedRequest, SdkRequests, sdk_params
from _vdxp_vectors import sdk as sdk_named

from gateway.edxml.dates import VN_TZ
from gateway.errors import AuthError, ReplayError, RequestError
from gateway.protocols import vdxp
from gateway.protocols.vdxp import Operation

#: Credentials of the synthetic requests of test_which_headers_count_per_operation (any system and secret).
SYSTEM_ID, SECRET = "sys-headers", "s" * 24
#: (source, operation) pairs: every operation of both request sources, the real one skipped when absent.
EACH = [
    pytest.param(source.values[0], op.value, id=f"{source.id}-{op.value}", marks=source.marks)
    for source in sdk_params()
    for op in Operation
]


def _request(source: str, operation: str) -> tuple[SdkRequests, CapturedRequest]:
    requests = sdk_named(source)
    return requests, requests.request(operation)


def _verify(sdk: SdkRequests, r: CapturedRequest, headers: dict[str, str] | None = None, **kw) -> vdxp.VerifiedRequest:
    lookup = vdxp.mapping_headers(headers if headers is not None else r.headers)
    secret = kw.pop("secret", sdk.secret)
    return vdxp.verify_request(lookup, secret, Operation(r.operation), system_id=sdk.system_id, **kw)


def _resigned(headers: dict[str, str], secret: str) -> dict[str, str]:
    """Recompute the hash over a (modified) sign-header: a client holding the secret made this request."""
    out = dict(headers)
    out[vdxp.HASH_HEADER] = vdxp.sign(secret, out[vdxp.SIGN_HEADER])
    return out


# ================================================================================================ signing


def test_capture_covers_every_operation_we_serve(sdk):
    assert {r.operation for r in sdk.requests} == {op.value for op in Operation}
    assert all(r.path == f"/{r.operation}" for r in sdk.requests)


@pytest.mark.parametrize(("source", "operation"), EACH)
def test_signing_reproduces_the_captured_headers_exactly(sdk, source: str, operation: str):
    sdk, r = _request(source, operation)
    content_type = r.headers["Content-Type"]
    headers = vdxp.signed_headers(sdk.secret, r.entries, content_type=content_type)
    assert headers[vdxp.SIGN_HEADER] == r.headers[vdxp.SIGN_HEADER]
    assert headers[vdxp.HASH_HEADER] == r.headers[vdxp.HASH_HEADER]
    assert vdxp.sign(sdk.secret, r.headers[vdxp.SIGN_HEADER]) == r.headers[vdxp.HASH_HEADER]
    expected = {k: v for k, v in r.headers.items() if k not in ("Content-Length", "Expect")}
    assert headers == expected  # every header the SDK sends, with the same values (order is not significant)


def test_sdk_hash_file_form_drops_each_bytes_leading_zero(sdk):
    data = sdk.sent_file()
    digest = hashlib.sha256(data).digest()
    captured = sdk.request("sendEdoc").headers["XroadVnpt-hash-file"]
    assert vdxp.file_hash(data) == vdxp.sdk_hex(digest) == captured
    assert vdxp.sdk_hex(bytes([0x0A, 0xFF, 0x00, 0x10])) == "aff010"
    assert len(captured) == 64 - sum(1 for b in digest if b < 0x10)  # 0a → a, 0e → e …
    if sdk.name == REAL:
        assert digest.hex() == "f51b0a8b927ea8c70e6c2b0e88ef55b86ca859f2030fbcbf090e2103e203e24e"
    assert vdxp.file_hash_matches(data, captured)
    assert vdxp.file_hash_matches(data, digest.hex())  # the normal form is accepted too
    assert vdxp.file_hash_matches(data, digest.hex().upper())
    assert not vdxp.file_hash_matches(data + b" ", captured)
    assert not vdxp.file_hash_matches(data, captured[:-1])


#: The timestamp each source's client fixed when it was created, as sent and as read.
_STAMPS = {
    OWN: ("01102025T094107+0052", datetime(2025, 10, 1, 9, 41, 7, 52_000, tzinfo=VN_TZ)),
    REAL: ("28112026T003758+0889", datetime(2026, 11, 28, 0, 37, 58, 889_000, tzinfo=VN_TZ)),
}


def test_timestamp_format_is_day_first_with_milliseconds_not_a_zone(sdk):
    stamp = sdk.request("getAgenciesList").headers["XroadVnpt-timestamp"]
    assert stamp == _STAMPS[sdk.name][0]
    parsed = vdxp.parse_timestamp(stamp)
    assert parsed == _STAMPS[sdk.name][1]
    assert vdxp.format_timestamp(parsed) == stamp
    assert vdxp.format_timestamp(datetime(2026, 1, 2, 3, 4, 5, 7_000, tzinfo=VN_TZ)) == "02012026T030405+0007"
    for bad in ("", "28112026T003758", "28112026T003758+1000", "32112026T003758+0001", "28112026X003758+0001"):
        assert vdxp.parse_timestamp(bad) is None


def test_sign_header_json_escapes_like_gson():
    entries = [("XroadVnpt-description", "Đã nhận <b> & 'x'=1\u2028"), ("XroadVnpt-n", 'a"b\\c\n')]
    text = vdxp.gson_json(entries)
    assert text == (
        '{"XroadVnpt-description":"Đã nhận \\u003cb\\u003e \\u0026 \\u0027x\\u0027\\u003d1\\u2028",'
        '"XroadVnpt-n":"a\\"b\\\\c\\n"}'
    )
    assert json.loads(text) == dict(entries)
    assert vdxp.gson_json(entries, ascii_only=True).isascii()
    with pytest.raises(ValueError, match="duplicate"):
        vdxp.gson_json([("a", "1"), ("a", "2")])


def test_client_entries_carry_only_this_calls_parameters():
    entries = vdxp.request_entries(Operation.GET_EDOC, "sys", "01012026T000000+0000", {"docId": "d1"})
    assert entries == [
        ("systemid", "sys"),
        ("timestamp", "01012026T000000+0000"),
        ("docId", "d1"),
        ("Content-Type", "application/json"),
    ]
    headers = vdxp.signed_headers("k" * 20, entries)
    assert headers["Content-Type"] == "application/json"
    assert headers[vdxp.SIGN_HEADER_KEY] == "systemid;timestamp;docId;Content-Type"
    assert _verify_mapping(headers, Operation.GET_EDOC, "sys", "k" * 20).get("docId") == "d1"
    with pytest.raises(ValueError, match="lack"):
        vdxp.signed_headers("k", [("docId", "x")])


def _verify_mapping(headers, op, system_id, secret) -> vdxp.VerifiedRequest:
    return vdxp.verify_request(vdxp.mapping_headers(headers), secret, op, system_id=system_id)


# ================================================================================================ verification


@pytest.mark.parametrize(("source", "operation"), EACH)
def test_verifier_accepts_every_captured_request_and_keeps_only_the_operations_parameters(source, operation):
    sdk, r = _request(source, operation)
    verified = _verify(sdk, r)
    assert verified.system_id == sdk.system_id
    assert verified.operation.value == r.operation
    assert set(verified.params) <= {p.lower() for p in vdxp.OPERATION_PARAMS[verified.operation]}
    assert verified.timestamp is not None
    assert verified.signed_names == tuple(name for name, _ in r.entries)
    assert vdxp.claimed_system_id(vdxp.mapping_headers(r.headers)) == sdk.system_id


def test_stale_sdk_parameters_are_ignored_not_used(sdk):
    sent = _verify(sdk, sdk.request("getSentEdocList"))
    # status, filePath, from and hash-file are left over from earlier calls: signed, but not sentList's
    assert "status" in sent.signed_names and "filePath" in sent.signed_names
    assert set(sent.stale) == {"hash-file", "filePath", "from", "status"}
    # … which proves the map is stale, so the docId getEdoc left in it does not filter the sent list
    assert sent.params == {"servicetype": "eDoc", "messagetype": "edoc"}
    assert sent.ignored == ("docId",)
    received = _verify(sdk, sdk.request("getReceivedEdocList"))
    assert received.get("from") is None  # stale from the sendEdoc before it
    assert received.get("messagetype") == "edoc"
    agencies = _verify(sdk, sdk.request("getAgenciesList"))
    assert agencies.params == {}
    update = _verify(sdk, sdk.request("updateStatus"))
    assert update.get("docid") == update.get("docId") == sdk.foreign_doc_id
    assert update.get("status") == "done"


def _sdk_call(entries: list[tuple[str, str]], op: Operation) -> vdxp.VerifiedRequest:
    base = [("systemid", SYSTEM_ID), ("timestamp", "28112026T003759+0266")]
    headers = vdxp.signed_headers(SECRET, [*base, *entries, ("Content-Type", vdxp.CONTENT_TYPES[op])])
    return _verify_mapping(headers, op, SYSTEM_ID, SECRET)


def test_which_headers_count_per_operation():
    # A clean request (only the operation's own entries): every filter counts — our client, a fresh SDK object.
    clean = _sdk_call([("servicetype", "eDoc"), ("messagetype", "edoc"), ("docId", "d1")], Operation.GET_SENT_EDOC_LIST)
    assert (clean.get("docId"), clean.stale, clean.ignored) == ("d1", (), ())
    dated = [("messagetype", "edoc"), ("fromDate", "01/11/2026"), ("toDate", "30/11/2026")]
    assert _sdk_call(dated, Operation.GET_RECEIVED_EDOC_LIST).get("fromDate") == "01/11/2026"
    # A stale request: the lists' filters do not count (and say so); required parameters still do.
    stale = _sdk_call([*dated, ("docId", "d1"), ("filePath", "/tmp")], Operation.GET_RECEIVED_EDOC_LIST)
    assert (stale.get("messagetype"), stale.get("fromDate"), stale.get("toDate")) == ("edoc", None, None)
    assert stale.ignored == ("fromDate", "toDate") and stale.stale == ("docId", "filePath")
    sent = _sdk_call([*dated, ("docId", "d1"), ("status", "done")], Operation.GET_SENT_EDOC_LIST)
    assert sent.params == {"messagetype": "edoc"}
    # getEdoc / updateStatus take their own docId whatever else is in the map: every call sets it
    fetched = _sdk_call([("docId", "d2"), ("filePath", "/tmp"), ("from", "x")], Operation.GET_EDOC)
    assert fetched.get("docId") == "d2" and fetched.ignored == ()
    update = _sdk_call(
        [("docId", "d2"), ("status", "fail"), ("description", "r"), ("filePath", "/t")], Operation.UPDATE_STATUS
    )
    assert (update.get("docId"), update.get("status"), update.get("description")) == ("d2", "fail", "r")
    # an ignored filter is still covered by the signature: its plain header must equal the signed value
    headers = vdxp.signed_headers(
        SECRET,
        [
            ("systemid", SYSTEM_ID),
            ("timestamp", "t"),
            ("docId", "d1"),
            ("status", "done"),
            ("Content-Type", "application/json"),
        ],
    )
    headers["XroadVnpt-docId"] = "d9"
    with pytest.raises(AuthError, match="differs"):
        _verify_mapping(headers, Operation.GET_SENT_EDOC_LIST, SYSTEM_ID, SECRET)


def test_wrong_secret_and_tampered_signature_are_refused_alike(sdk):
    r = sdk.request("sendEdoc")
    with pytest.raises(AuthError) as wrong:
        _verify(sdk, r, secret="not-the-secret-at-all")
    assert wrong.value.message == "authentication failed"
    tampered = dict(r.headers)
    tampered[vdxp.SIGN_HEADER] = tampered[vdxp.SIGN_HEADER].replace("000.00.00.H41", "000.00.00.G22")
    with pytest.raises(AuthError) as err:
        _verify(sdk, r, tampered)
    assert err.value.message == wrong.value.message
    bad_hash = dict(r.headers)
    bad_hash[vdxp.HASH_HEADER] = "0" * 64
    with pytest.raises(AuthError):
        _verify(sdk, r, bad_hash)


@pytest.mark.parametrize("missing", [vdxp.SIGN_HEADER, vdxp.HASH_HEADER])
def test_missing_signature_headers_are_refused(sdk, missing: str):
    headers = {k: v for k, v in sdk.request("getEdoc").headers.items() if k != missing}
    with pytest.raises(AuthError, match="required"):
        _verify(sdk, sdk.request("getEdoc"), headers)


def test_a_plain_header_that_differs_from_its_signed_value_is_refused(sdk):
    r = sdk.request("getEdoc")
    headers = dict(r.headers)
    headers["XroadVnpt-docId"] = "someone-elses-doc"
    with pytest.raises(AuthError, match="differs from its signed value"):
        _verify(sdk, r, headers)
    # the same for an unused stale header? No: headers the operation does not use are not looked at.
    headers = dict(r.headers)
    headers["XroadVnpt-filePath"] = "/elsewhere"
    assert _verify(sdk, r, headers).get("docId") == sdk.foreign_doc_id


def test_an_unsigned_operation_parameter_is_refused(sdk):
    r = sdk.request("getReceivedEdocList")
    headers = dict(r.headers)
    headers["XroadVnpt-fromDate"] = "01/01/2020 00:00:00"  # not in the signed set
    with pytest.raises(AuthError, match="not signed"):
        _verify(sdk, r, headers)


def test_systemid_must_be_signed_and_match_the_claim(sdk):
    r = sdk.request("getAgenciesList")
    with pytest.raises(AuthError, match="systemid"):
        vdxp.verify_request(vdxp.mapping_headers(r.headers), sdk.secret, Operation.GET_AGENCIES_LIST, system_id="other")
    entries = [(n, v) for n, v in r.entries if n != "systemid"]
    headers = vdxp.signed_headers(sdk.secret, [*entries, ("systemid", "00.53.W99")])
    with pytest.raises(AuthError, match="systemid"):
        _verify(sdk, r, headers)


def test_content_type_must_have_the_signed_media_type(sdk):
    r = sdk.request("getEdoc")
    headers = dict(r.headers)
    headers["Content-Type"] = "application/json; charset=UTF-8"
    _verify(sdk, r, headers)  # parameters do not matter
    headers["Content-Type"] = "text/plain"
    with pytest.raises(AuthError, match="Content-Type"):
        _verify(sdk, r, headers)


def test_sign_header_key_must_list_the_signed_entries(sdk):
    r = sdk.request("getEdoc")
    headers = dict(r.headers)
    headers[vdxp.SIGN_HEADER_KEY] = "systemid;timestamp"
    with pytest.raises(AuthError, match="sign-header-key"):
        _verify(sdk, r, headers)
    del headers[vdxp.SIGN_HEADER_KEY]  # optional: the sign-header itself is what is signed
    _verify(sdk, r, headers)


def test_malformed_or_ambiguous_signed_json_is_refused_after_the_hmac(sdk):
    r = sdk.request("getEdoc")
    for text, error in (
        ('["not", "an object"]', RequestError),
        ('{"XroadVnpt-systemid": 5}', RequestError),
        ('{"systemid":"00.53.W00"}', RequestError),
        ("[" * 10000, RequestError),
    ):
        headers = dict(r.headers)
        headers[vdxp.SIGN_HEADER] = text
        del headers[vdxp.SIGN_HEADER_KEY]
        with pytest.raises(error):
            _verify(sdk, r, _resigned(headers, sdk.secret))
    entries = [*r.entries, ("docid", "another")]  # the same name twice, case-insensitively
    headers = vdxp.signed_headers(sdk.secret, entries)
    headers.pop("XroadVnpt-docId")
    headers.pop("XroadVnpt-docid")
    with pytest.raises(RequestError, match="signed twice"):
        _verify(sdk, r, headers)


def test_oversized_sign_header_is_refused_before_hashing(sdk):
    r = sdk.request("getEdoc")
    headers = dict(r.headers)
    headers[vdxp.SIGN_HEADER] = '{"XroadVnpt-x":"' + "a" * vdxp.MAX_SIGN_HEADER_BYTES + '"}'
    with pytest.raises(AuthError, match="longer"):
        _verify(sdk, r, _resigned(headers, sdk.secret))


def test_freshness_is_optional_and_named(sdk):
    r = sdk.request("getAgenciesList")
    stamp = vdxp.parse_timestamp(r.headers["XroadVnpt-timestamp"])
    assert stamp is not None
    _verify(sdk, r)  # default: no window (the SDK fixes its timestamp when the client object is created)
    _verify(sdk, r, max_age=timedelta(minutes=5), now=stamp + timedelta(minutes=4))
    with pytest.raises(ReplayError):
        _verify(sdk, r, max_age=timedelta(minutes=5), now=stamp + timedelta(minutes=6))


# ================================================================================================ body


def test_package_is_cut_from_the_body_by_its_hash_not_by_guessing(sdk):
    r = sdk.request("sendEdoc")
    verified = _verify(sdk, r)
    data = sdk.sent_file()
    assert data.endswith(b"\r\n")  # the file itself ends with CRLF, and the SDK added another
    assert vdxp.package_from_body(r.body, verified.get("hash-file")) == data
    assert vdxp.package_from_body(data, verified.get("hash-file")) == data  # a client that adds nothing
    normal = hashlib.sha256(data).hexdigest()
    assert vdxp.package_from_body(data + b"\r\n", normal) == data
    # a package whose last CRLF is part of it: hashed with it, it is kept whole
    assert vdxp.package_from_body(data, hashlib.sha256(data).hexdigest()) == data
    stripped = data[:-2]
    assert vdxp.package_from_body(data, hashlib.sha256(stripped).hexdigest()) == stripped


def test_body_not_matching_hash_file_or_without_one_is_refused(sdk):
    r = sdk.request("sendEdoc")
    claimed = _verify(sdk, r).get("hash-file")
    tampered = r.body.replace(b"<edXML:StatusCode>01<", b"<edXML:StatusCode>06<")
    assert tampered != r.body
    with pytest.raises(AuthError, match="does not match"):
        vdxp.package_from_body(tampered, claimed)
    with pytest.raises(AuthError, match="hash-file"):
        vdxp.package_from_body(r.body, None)
    with pytest.raises(AuthError):
        vdxp.package_from_body(r.body + b"\r\n", claimed)  # only ONE trailing CRLF is the SDK's


def test_wsgi_header_lookup_returns_the_bytes_as_sent():
    environ = {
        "HTTP_XROADVNPT_DESCRIPTION": "Đã nhận".encode().decode("latin-1"),  # PEP 3333: Latin-1 decoded bytes
        "CONTENT_TYPE": "application/json",
        "HTTP_XROADVNPT_CONTENT_TYPE": "application/json",
    }
    lookup = vdxp.wsgi_headers(environ)
    assert lookup("XroadVnpt-description") == "Đã nhận".encode()
    assert lookup("Content-Type") == b"application/json"
    assert lookup("XroadVnpt-Content-Type") == b"application/json"
    assert lookup("XroadVnpt-docId") is None


def test_non_ascii_parameter_round_trip():
    entries = vdxp.request_entries(
        Operation.UPDATE_STATUS, "sys", "01012026T000000+0000", {"docId": "d", "status": "fail", "description": "Lỗi"}
    )
    headers = vdxp.signed_headers("k" * 20, entries, ascii_only=True)
    assert headers[vdxp.SIGN_HEADER].isascii()
    wire = {k: v.encode("utf-8") for k, v in headers.items()}  # what our client sends
    verified = vdxp.verify_request(vdxp.mapping_headers(wire), "k" * 20, Operation.UPDATE_STATUS, system_id="sys")
    assert verified.get("description") == "Lỗi"


# ================================================================================================ answers


def test_a_refusal_carries_the_operations_answer_keys_empty_and_fresh():
    assert vdxp.fail_answer("NOT_FOUND", "x", "getEdoc") == {
        "status": "FAIL",
        "ErrorCode": "NOT_FOUND",
        "ErrorDesc": "x",
        "data": "",
    }
    assert vdxp.fail_answer("AUTH.DENIED", "x", "sendEdoc")["DocId"] == ""
    assert set(vdxp.fail_answer("AUTH.DENIED", "x", "updateStatus")) == {"status", "ErrorCode", "ErrorDesc"}
    assert set(vdxp.fail_answer("NOT_FOUND", "x", "nosuch")) == {"status", "ErrorCode", "ErrorDesc"}
    one, two = vdxp.fail_answer("C", "x", "getSentEdocList"), vdxp.fail_answer("C", "x", "getSentEdocList")
    one["data"].append("mutated")
    assert two["data"] == []  # never a shared list
    # every key a refusal carries is one the success answer carries too, with the same JSON type
    assert isinstance(vdxp.ok_answer(data=[])["data"], type(vdxp.empty_fields("getAgenciesList")["data"]))
    assert set(vdxp.ANSWER_FIELDS) >= {op.value for op in Operation} | vdxp.UNSERVED
    # the client reads an empty DocId as none
    assert vdxp.answer_doc_id(vdxp.fail_answer("C", "x", "sendEdoc")) is None


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1000, 1 << 20])
def test_a_spooled_body_gives_the_same_package_as_the_bytes_whatever_its_pieces(sdk, tmp_path, piece):
    """The edge spools a sendEdoc body (issue 14) and counts both candidates' digests as the pieces arrive: a CRLF
    split across two pieces, a one-byte piece, a body shorter than CRLF — the same package and the same refusals
    as :func:`vdxp.package_from_body` on the whole bytes."""
    from gateway.payload import PayloadWriter

    r = sdk.request("sendEdoc")
    claimed = _verify(sdk, r).get("hash-file")
    data = sdk.sent_file()
    bodies = [r.body, data, data + b"\r\n", b"\r", b"", b"x\r\n"]
    claims = [claimed, hashlib.sha256(data).hexdigest(), hashlib.sha256(data[:-2]).hexdigest(), "00", None]
    for body in bodies:
        for hash_file in claims:
            pieces = [body[i : i + piece] for i in range(0, len(body), piece)]
            sent = vdxp.SendEdocBody.read(pieces, PayloadWriter(tmp_path, memory_limit=64))
            try:
                expected: bytes | type[AuthError] = vdxp.package_from_body(body, hash_file)
            except AuthError:
                expected = AuthError
            with sent:
                if expected is AuthError:
                    with pytest.raises(AuthError):
                        vdxp.package_from_payload(sent, hash_file)
                    continue
                package = vdxp.package_from_payload(sent, hash_file)
                assert package.read() == expected
                assert package.sha256 == hashlib.sha256(expected).hexdigest()
                assert package.size == len(expected)
