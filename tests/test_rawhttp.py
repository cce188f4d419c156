"""The HTTP-layer helpers every raw-body edge shares (gateway.web.rawhttp): the declared length is judged before a
byte of the body is read, the same way at the VDXP and the legacy e-doc.vn edges."""

from __future__ import annotations

import pytest

from gateway.web.rawhttp import Refusal, declared_length


@pytest.mark.parametrize(
    ("headers", "length"),
    [({"Content-Length": "1234"}, 1234), ({"Content-Length": " 7 "}, 7), ({}, 0), ({"Content-Length": ""}, 0)],
)
def test_a_declared_length_is_read_and_none_is_an_empty_body(headers, length):
    assert declared_length(headers) == length


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({"Transfer-Encoding": "chunked"}, 411, "Content-Length is required"),
        ({"Transfer-Encoding": "gzip, Chunked"}, 411, "chunked"),
        ({"Content-Length": "12a"}, 400, "not a number"),
        ({"Content-Length": "-1"}, 400, "not a number"),
    ],
)
def test_chunked_or_malformed_lengths_are_refused_and_the_connection_closed(headers, status, words):
    with pytest.raises(Refusal) as info:
        declared_length(headers)
    assert info.value.status == status and words in info.value.error.message and info.value.close
    assert info.value.error.code == "REQUEST.INVALID"
