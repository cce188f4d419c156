"""Producer variants for the project's own corpus (:mod:`gateway.demo.corpus`): what real producers write that
our canonical writer never does (edxml.md §8–9), applied to canonical bytes.

Each function takes the bytes of a package and returns them changed in one respect only, so a corpus entry
differs from the canonical rendering of its model by exactly the variants it names. Trees come from the
project's safe parser; the changes are made with lxml, never by string surgery on markup, except where the
point is bytes lxml would not write (a foreign namespace URI, a file that is not well-formed).
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Final

from lxml import etree

from gateway import ns
from gateway.edxml import SignatureBlock
from gateway.edxml.dates import VN_TZ
from gateway.xmlcheck.safe import parse_bytes

Variant = Callable[[bytes], bytes]
_E: Final = f"{{{ns.EDXML}}}"
#: The seed of the placeholder's made-up SignatureValue (a fixed value: the corpus is deterministic).
SEED: Final = 1022016


def _edit(data: bytes, change: Callable[[etree._Element], None]) -> bytes:
    root = parse_bytes(data).getroot()
    change(root)
    # The declaration as producers write it (lxml's own uses single quotes).
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8") + b"\n"


def _all(root: etree._Element, local: str) -> list[etree._Element]:
    return list(root.iter(_E + local))


def _one(root: etree._Element, local: str) -> etree._Element:
    found = _all(root, local)
    if len(found) != 1:
        raise ValueError(f"expected one {local}, found {len(found)}")
    return found[0]


# ------------------------------------------------------------------------------------------- spelling


def legacy_namespace(data: bytes) -> bytes:
    """The whole package in the old ``http://www.e-doc.vn/Schema/`` namespace (pre-QCVN producers)."""
    return data.replace(ns.EDXML.encode(), ns.EDXML_LEGACY.encode())


def business_spelling(data: bytes) -> bytes:
    """``Business`` for the standard's own misspelt ``Bussiness`` container."""

    def change(root: etree._Element) -> None:
        _one(root, "Bussiness").tag = _E + "Business"

    return _edit(data, change)


def bare_content_ids(data: bytes) -> bytes:
    """``ContentId`` without its ``cid:`` prefix, in the manifest and in the attachments."""

    def change(root: etree._Element) -> None:
        for el in _all(root, "ContentId"):
            el.text = (el.text or "").removeprefix("cid:")

    return _edit(data, change)


def mime_base64(data: bytes) -> bytes:
    """Attachments in 76-column MIME base64 (line breaks inside ``ContentTransferEncoded``)."""

    def change(root: etree._Element) -> None:
        for el in _all(root, "ContentTransferEncoded"):
            el.text = "\n" + base64.encodebytes(base64.b64decode(el.text or "")).decode()

    return _edit(data, change)


def crlf_line_endings(data: bytes) -> bytes:
    """Windows line endings (CRLF), as files saved on Windows carry them; XML parsers read them as LF."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# ------------------------------------------------------------------------------------------------ dates


def _redate(data: bytes, locals_: tuple[str, ...], date_form: str, time_form: Callable[[datetime], str]) -> bytes:
    def change(root: etree._Element) -> None:
        for local in locals_:
            for el in _all(root, local):
                if not el.text:
                    continue
                if local == "Timestamp":
                    el.text = time_form(datetime.strptime(el.text, "%Y/%m/%d %H:%M:%S"))
                else:
                    el.text = date.fromisoformat(el.text.replace("/", "-")).strftime(date_form)

    return _edit(data, change)


def day_first_dates(data: bytes) -> bytes:
    """``dd/MM/yyyy`` dates and ``dd/MM/yyyy HH:mm:ss`` timestamps (the Bkav axis and the e-doc.vn profile)."""
    return _redate(
        data,
        ("PromulgationDate", "DueDate", "Timestamp"),
        "%d/%m/%Y",
        lambda t: t.strftime("%d/%m/%Y %H:%M:%S"),
    )


def iso_dates(data: bytes) -> bytes:
    """ISO-8601 dates and UTC timestamps with ``Z`` (JSON-minded producers)."""
    return _redate(
        data,
        ("PromulgationDate", "DueDate", "Timestamp"),
        "%Y-%m-%d",
        lambda t: t.replace(tzinfo=VN_TZ).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


# ------------------------------------------------------------------------------------------------ shape


def open_empty_elements(data: bytes) -> bytes:
    """Empty elements written open-and-closed (``<x></x>``) and an ``Appendixes`` holding one empty
    ``Appendix``: both read as "no value" (edxml.md §8)."""

    def change(root: etree._Element) -> None:
        for el in root.iter():
            if isinstance(el.tag, str) and len(el) == 0 and not el.text:
                el.text = ""
        other = _one(root, "OtherInfo")
        if other.find(_E + "Appendixes") is None:
            box = etree.SubElement(other, _E + "Appendixes")
            etree.SubElement(box, _E + "Appendix")

    return _edit(data, change)


def bussiness_first(data: bytes) -> bytes:
    """``Bussiness`` before the ``TraceHeader`` entries (a document stored by an axis under its message id)."""

    def change(root: etree._Element) -> None:
        bussiness = _one(root, "Bussiness")
        trace_list = bussiness.getparent()
        trace_list.remove(bussiness)
        trace_list.insert(0, bussiness)

    return _edit(data, change)


def swapped_children(parent: str, first: str, second: str) -> Variant:
    """``second`` written before ``first`` inside every ``parent``: elements are found by name, not position."""

    def variant(data: bytes) -> bytes:
        def change(root: etree._Element) -> None:
            for box in _all(root, parent):
                a, b = box.find(_E + first), box.find(_E + second)
                if a is not None and b is not None:
                    box.remove(b)
                    a.addprevious(b)

        return _edit(data, change)

    return variant


def status_code_text(text: str) -> Variant:
    """``StatusCode`` written as ``text`` (``1`` for 01; ``14``, a VNPT C# SDK defect, for 15)."""

    def variant(data: bytes) -> bytes:
        def change(root: etree._Element) -> None:
            _one(root, "StatusCode").text = text

        return _edit(data, change)

    return variant


# ---------------------------------------------------------------------------------------------- signature


def dummy_signature() -> SignatureBlock:
    """A ``Signature`` in the edXML namespace shaped like the official samples' placeholder (edxml.md §10.1): an
    rsa-sha1 SignedInfo over ``URI=""``, a value that verifies nothing and a truncated certificate. Receivers
    must report it as "unsigned (legacy placeholder)"; the exclusive-C14N form is what the reader carries."""
    rng = random.Random(f"{SEED}:signature")  # noqa: S311 -- test data, not a secret
    digest = hashlib.sha1(b"edoc-gateway corpus", usedforsecurity=False).digest()
    value = bytes(rng.getrandbits(8) for _ in range(256))
    b64 = base64.b64encode
    xml = (
        f'<Signature xmlns="{ns.EDXML}"><SignedInfo>'
        '<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"></CanonicalizationMethod>'
        '<SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"></SignatureMethod>'
        '<Reference URI=""><Transforms>'
        '<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"></Transform>'
        '<Transform Algorithm="http://www.w3.org/TR/xml-exc-c14n#"></Transform></Transforms>'
        '<DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"></DigestMethod>'
        f"<DigestValue>{b64(digest).decode()}</DigestValue></Reference></SignedInfo>"
        f"<SignatureValue>{b64(value).decode()}</SignatureValue>"
        "<KeyInfo><X509Data><X509SubjectName>CN=edoc-gateway corpus</X509SubjectName>"
        "<X509Certificate>MIIBszCCAVmgAwIBAgIU</X509Certificate></X509Data></KeyInfo></Signature>"
    )
    return SignatureBlock(xml=xml, is_xmldsig=False)


# ------------------------------------------------------------------------------------------- refused


def jmeter_template(data: bytes) -> bytes:
    """A load-test template, as shipped beside the official samples: a ``From`` nested in an unclosed ``From``,
    an ``xlink:`` attribute whose prefix is never bound, a ``${__StringFromFile(…)}`` placeholder for the
    attachment and an xmldsig ``Signature``. It is not well-formed XML: every receiver must refuse it at the
    parser (``EDXML.PARSE``), never crash on it."""
    text = data.decode("utf-8")
    start = text.index("<edXML:From>")
    text = text[:start] + "<edXML:From>\n          " + text[start:]
    text = text.replace("<edXML:Reference>", '<edXML:Reference xlink:href="">', 1)
    head, _, rest = text.partition("<edXML:ContentTransferEncoded")
    rest = rest[rest.index(">") + 1 :]
    rest = rest[rest.index("<") :]
    text = f'{head}<edXML:ContentTransferEncoded xmlns:edXML="{ns.EDXML}">${{__StringFromFile(test.txt,,,)}}{rest}'
    text = text.replace(f'<Signature xmlns="{ns.EDXML}">', f'<Signature xmlns="{ns.DSIG}">', 1)
    return text.encode("utf-8")
