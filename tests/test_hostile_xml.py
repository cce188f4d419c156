"""The attack corpus of the XML trust boundary (gateway.md Quality bars, Security; issue 2 item 6).

Each hostile input must be refused with its stable code, and no file or network resource may be read.
"No file read" is proven with a FIFO: a parser that tried to read the entity's target would block on
it, so each parse runs in a thread with a deadline, and a writer probes whether anyone opened it.
"""

from __future__ import annotations

import base64
import concurrent.futures
import errno
import io
import os
import zipfile

import pytest
from _samples import Corpus
from lxml import etree

from gateway import ns
from gateway.edxml import ZipLimits, extract, read_bytes
from gateway.errors import AttachmentError, EdxmlForbiddenError, EdxmlParseError, SizeLimitError
from gateway.validation import validate_package
from gateway.xmlcheck.safe import parse_bytes


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "secret.fifo"
    os.mkfifo(path)
    return path


def _assert_fifo_never_opened(path):
    # A non-blocking open for writing fails with ENXIO exactly when no reader has the FIFO open.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        assert exc.errno == errno.ENXIO  # noqa: PT017 -- the probe itself, not the code under test
        return
    os.close(fd)
    pytest.fail(f"the parser opened {path}")


def _parse_with_deadline(data: bytes):
    # No context manager: a parser stuck on the FIFO must fail the test, not hang the run.
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(validate_package, data).exception(timeout=10)
    finally:
        pool.shutdown(wait=False)


def _status_with_prolog(corpus: Corpus, prolog: str, text: str, encoding: str = "utf-8") -> bytes:
    base = corpus.read("status_01").decode("utf-8")
    body = base.split("?>", 1)[1]
    body = body.replace("<edXML:Description>", f"<edXML:Description>{text}", 1)
    decl = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
    return (decl + prolog + body).encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_xxe_external_entity_is_refused_and_nothing_is_read(corpus, fifo, encoding):
    data = _status_with_prolog(corpus, f'<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file://{fifo}">]>', "&xxe;", encoding)
    exc = _parse_with_deadline(data)
    assert isinstance(exc, EdxmlForbiddenError)
    assert exc.code == "EDXML.FORBIDDEN"
    _assert_fifo_never_opened(fifo)


def test_parameter_entity_is_refused_and_nothing_is_read(corpus, fifo):
    data = _status_with_prolog(corpus, f'<!DOCTYPE edXML [<!ENTITY % p SYSTEM "file://{fifo}"> %p;]>', "")
    exc = _parse_with_deadline(data)
    assert isinstance(exc, EdxmlForbiddenError)
    _assert_fifo_never_opened(fifo)


def test_external_dtd_is_refused_and_nothing_is_read(corpus, fifo):
    data = _status_with_prolog(corpus, f'<!DOCTYPE edXML SYSTEM "file://{fifo}">', "")
    exc = _parse_with_deadline(data)
    assert isinstance(exc, EdxmlForbiddenError)
    _assert_fifo_never_opened(fifo)


def test_network_entity_is_refused(corpus):
    data = _status_with_prolog(corpus, '<!DOCTYPE edXML [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>', "&x;")
    assert isinstance(_parse_with_deadline(data), EdxmlForbiddenError)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_billion_laughs_is_refused_quickly(corpus, encoding):
    ents = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % ("" if i == 1 else i - 1)) * 10}">' for i in range(1, 10)
    )
    data = _status_with_prolog(corpus, f"<!DOCTYPE edXML [{ents}]>", "&lol9;", encoding)
    exc = _parse_with_deadline(data)
    assert isinstance(exc, EdxmlForbiddenError | EdxmlParseError)
    assert exc.code in ("EDXML.FORBIDDEN", "EDXML.PARSE")


def test_plain_doctype_is_refused(corpus):
    data = _status_with_prolog(corpus, "<!DOCTYPE edXML>", "")
    with pytest.raises(EdxmlForbiddenError):
        parse_bytes(data)


def test_undeclared_entity_is_a_parse_error(corpus):
    data = _status_with_prolog(corpus, "", "&undefined;")
    with pytest.raises(EdxmlParseError) as err:
        validate_package(data)
    assert err.value.code == "EDXML.PARSE"


def test_oversized_input_is_refused_before_parsing(corpus):
    data = corpus.read("edoc_new")
    with pytest.raises(SizeLimitError) as err:
        validate_package(data, max_bytes=len(data) - 1)
    assert err.value.code == "SIZE.LIMIT"
    assert err.value.detail == {"size": len(data), "limit": len(data) - 1}
    # not even well-formedness is looked at: garbage of the same size gets the same answer
    with pytest.raises(SizeLimitError):
        parse_bytes(b"<" * 1000, max_bytes=999)


def test_doctype_text_inside_content_is_not_a_false_alarm(corpus):
    data = _status_with_prolog(corpus, "", "quoted &lt;!DOCTYPE x&gt; and <![CDATA[<!ENTITY y 'z'>]]>")
    pkg = validate_package(data).package
    assert "<!DOCTYPE x>" in pkg.description
    assert "<!ENTITY y 'z'>" in pkg.description


def _with_attachment_payload(corpus: Corpus, payload_b64: str) -> bytes:
    root = etree.fromstring(corpus.read("edoc_new"))
    root.find(f".//{{{ns.EDXML}}}ContentTransferEncoded").text = payload_b64
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("payload", ["not base64 at all!", "QUJD=RA==", "QUJDRA", "QUJD*RA=="])
def test_malformed_base64_attachment_is_refused(corpus, payload):
    with pytest.raises(AttachmentError) as err:
        validate_package(_with_attachment_payload(corpus, payload))
    assert err.value.code == "EDXML.ATTACHMENT"
    assert err.value.path.endswith("ContentTransferEncoded")


def test_base64_with_mime_line_breaks_is_tolerated(corpus):
    raw = os.urandom(3000)
    wrapped = base64.encodebytes(raw).decode()  # 76-column lines
    pkg = read_bytes(_with_attachment_payload(corpus, wrapped))
    assert pkg.attachments[0].data == raw


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_bomb_attachment_is_refused_while_inflating(corpus):
    bomb = _zip({"a.doc": b"\0" * (64 * 1024 * 1024)})  # ~64 KB compressed, 64 MiB inflated
    assert len(bomb) < 200_000
    pkg = read_bytes(_with_attachment_payload(corpus, base64.b64encode(bomb).decode()))
    with pytest.raises(AttachmentError) as err:
        extract(pkg.attachments[0])
    assert err.value.code == "EDXML.ATTACHMENT"
    assert err.value.detail["reason"] == "zip-bomb"


def test_zip_total_and_entry_count_limits(corpus):
    many = _zip({f"f{i}.txt": b"x" for i in range(10)})
    pkg = read_bytes(_with_attachment_payload(corpus, base64.b64encode(many).decode()))
    with pytest.raises(AttachmentError) as err:
        extract(pkg.attachments[0], ZipLimits(max_entries=5))
    assert err.value.detail["reason"] == "zip-entries"
    two = _zip({"a.bin": os.urandom(40_000), "b.bin": os.urandom(40_000)})
    pkg = read_bytes(_with_attachment_payload(corpus, base64.b64encode(two).decode()))
    with pytest.raises(AttachmentError) as err:
        extract(pkg.attachments[0], ZipLimits(max_total_bytes=50_000))
    assert err.value.detail["reason"] == "zip-bomb"


def test_lying_zip_header_sizes_do_not_help_a_bomb(corpus):
    bomb = bytearray(_zip({"a.doc": b"\0" * (8 * 1024 * 1024)}))
    # Forge the central directory's uncompressed size to look tiny; inflation is counted, not trusted.
    cd = bomb.rfind(b"PK\x01\x02")
    bomb[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    pkg = read_bytes(_with_attachment_payload(corpus, base64.b64encode(bytes(bomb)).decode()))
    with pytest.raises(AttachmentError):
        extract(pkg.attachments[0], ZipLimits(max_entry_bytes=1024 * 1024))


def test_broken_zip_is_refused(corpus):
    pkg = read_bytes(_with_attachment_payload(corpus, base64.b64encode(b"PK\x03\x04garbage").decode()))
    with pytest.raises(AttachmentError) as err:
        extract(pkg.attachments[0])
    assert err.value.code == "EDXML.ATTACHMENT"
