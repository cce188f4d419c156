"""XML-DSig core validation of the one enveloped, whole-document signature, on the tree we already parsed.

Why: signxml verifies a copy of its input. On an lxml element it serialises and re-parses the whole document
three times per call and parses the canonical form once more (issue 14: ≈ 60 % of the verification time, and
the 1 MB package held four more times). The signatures we accept have ONE shape —
:func:`gateway.xmlcheck.dsig.locate_signature` and :func:`~gateway.xmlcheck.dsig.check_signed_info` have already
proven it: one ``ds:Signature`` at ``edXMLHeader``, one ``Reference URI=""``, ``enveloped-signature`` plus a C14N
transform. For that shape XML-DSig core validation (xmldsig-core §3.2) is: canonicalise ``SignedInfo``, check the
``SignatureValue`` with the signer's key, then canonicalise the document without its ``Signature`` and compare the
digest. :func:`verify_enveloped` does exactly that on the caller's tree, computing the same bytes signxml computes
on its copies (the differential tests in ``tests/test_signature_fast.py`` hold both to the same verdicts), with
signxml's own algorithm tables and XML-DSig schema.

What it does not take, it hands back (``None``): the caller then runs signxml as before. That is any signature
with a comment or processing instruction inside it (lxml's ``.text`` would stop at it where signxml reads the
re-parsed canonical ``SignedInfo``), a comment or processing instruction beside the root element (see
:func:`_fast_shape`), a ``KeyValue``/``DEREncodedKeyValue`` next to the certificate (signxml matches them against
it), or more than one C14N transform.

Only the signed data is ever returned: :class:`SignedContent` carries the canonical bytes the digest was computed
over; ``parse()`` turns them into the element callers read — and ``is_input`` says when that element would read
exactly like the input tree (no comment in the document: the only node canonicalisation drops, besides the
Signature itself).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, PSS, AsymmetricPadding, PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import Hash
from lxml import etree
from signxml import XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.algorithms import digest_algorithm_implementations as _HASHES

from gateway.ns import DSIG
from gateway.xmlcheck.bulk import IndexPath, SpooledTexts
from gateway.xmlcheck.safe import make_parser

_DS: Final = f"{{{DSIG}}}"
_EC_NS: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
_DSIG11: Final = "http://www.w3.org/2009/xmldsig11#"
_ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#: XML-DSig §4.4.3.2: a node-set left after the transforms is serialised with Canonical XML 1.0.
_DEFAULT_C14N: Final = CanonicalizationMethod.CANONICAL_XML_1_0.value
_C14N_URIS: Final = frozenset(m.value for m in CanonicalizationMethod)


class Refused(Exception):
    """A refusal with the ``reason`` code :func:`gateway.xmlcheck.dsig.fail` raises it under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SignedContent:
    """What the signature covers: the canonical bytes of the document without its Signature.

    ``c14n`` is ``None`` when the digest was streamed (:func:`verify_enveloped` with ``spooled``): then
    ``is_input`` is true and the caller reads what it already read from the input tree."""

    c14n: bytes | None
    #: The input tree held no comment: the signed content is the input without its Signature element, so a model
    #: read from the input equals one read from :meth:`parse` (apart from the Signature block itself).
    is_input: bool

    def parse(self) -> etree._Element:
        """The signed content as an element (our own canonical output: no DOCTYPE, no entity can be in it)."""
        if self.c14n is None:
            raise ValueError("the signed content was streamed into the digest, not kept")
        return etree.fromstring(self.c14n, make_parser(huge_tree=True))


def verify_enveloped(
    root: etree._Element,
    signature: etree._Element,
    leaf: x509.Certificate,
    *,
    spooled: SpooledTexts | None = None,
) -> SignedContent | None:
    """Core validation of ``signature`` (already located and policy-checked) over ``root`` with ``leaf``'s key.

    Returns the signed content, ``None`` when the signature is outside the shape handled here (module
    docstring), or raises :class:`Refused`. ``root`` is left exactly as it was — except with ``spooled`` (intake,
    a spooled package): when the signed content is the input (no comment), the big text nodes the reader read from
    the spool are taken out of the tree and their text streamed from the spool into the digest
    (:func:`_streamed_digest`), so the canonical form is never whole in memory; the caller's tree is then SPENT
    (those elements hold a marker) and the content is not kept (``c14n=None``).
    """
    if not _fast_shape(root, signature):
        return None
    _validate_schema(signature)
    signed_info = signature.find(f"{_DS}SignedInfo")
    c14n_method = signed_info.find(f"{_DS}CanonicalizationMethod")
    signed_info_c14n = _c14n(signed_info, c14n_method.get("Algorithm"), _prefixes(c14n_method))
    _check_signature_value(signature, signed_info, signed_info_c14n, leaf)
    # From here on only the SignedInfo that was verified, as signxml reads it: its canonical form re-parsed.
    verified = etree.fromstring(signed_info_c14n, make_parser())
    references = verified.findall(f"{_DS}Reference")
    if [r.get("URI") for r in references] != [""]:
        raise Refused("wrapping", 'the verified signature does not carry exactly one Reference URI=""')
    reference = references[0]
    algorithm, prefixes = _reference_c14n(reference)
    is_input = next(root.iter(etree.Comment), None) is None
    if spooled is not None and spooled.elements and is_input:
        _compare(*_streamed_digest(root, signature, reference, algorithm, prefixes, spooled))
        return SignedContent(c14n=None, is_input=True)
    content = _c14n_without(root, signature, algorithm, prefixes)
    expected, hasher = _digest_of(reference)
    hasher.update(content)
    _compare(expected, hasher)
    return SignedContent(c14n=content, is_input=is_input)


def _fast_shape(root: etree._Element, signature: etree._Element) -> bool:
    if root.getprevious() is not None or root.getnext() is not None:
        # A comment or PI beside the root: lxml canonicalises such a root through a copy of it that loses the
        # default namespace of its children under inclusive C14N (``xmlns=""`` appears). signxml's re-parsed copy
        # has no siblings; it decides.
        return False
    if any(not isinstance(node.tag, str) for node in signature.iter()):
        return False  # a comment or PI inside: signxml's reading of the re-parsed SignedInfo decides
    if signature.find(f"{_DS}KeyInfo/{_DS}KeyValue") is not None:
        return False
    if signature.find(f"{_DS}KeyInfo/{{{_DSIG11}}}DEREncodedKeyValue") is not None:
        return False
    transforms = signature.iterfind(f"{_DS}SignedInfo/{_DS}Reference/{_DS}Transforms/{_DS}Transform")
    return sum(1 for t in transforms if t.get("Algorithm") in _C14N_URIS) <= 1


def _validate_schema(signature: etree._Element) -> None:
    """The XML-DSig schema signxml validates every signature against (lxml validates the element as a root)."""
    for schema in XMLVerifier.schemas():
        if not schema.validate(signature):
            raise Refused("malformed", f"the signature is malformed: {schema.error_log.last_error}")


def _prefixes(node: etree._Element) -> list[str] | None:
    """``InclusiveNamespaces/@PrefixList`` of an exclusive C14N method or transform, as signxml reads it."""
    inclusive = node.find(f"{{{_EC_NS}}}InclusiveNamespaces[@PrefixList]")
    return None if inclusive is None else inclusive.get("PrefixList").split(" ")


def _c14n(node: etree._Element, algorithm: str, prefixes: list[str] | None) -> bytes:
    try:
        return etree.tostring(
            node,
            method="c14n",
            exclusive=algorithm.startswith(_EC_NS),
            with_comments=False,
            inclusive_ns_prefixes=prefixes,
        )
    except etree.C14NError as exc:  # relative namespace URIs (xmlns="rel"): XML allows them, C14N does not
        raise Refused("malformed", f"the signature is malformed: {exc}") from None


def _check_signature_value(
    signature: etree._Element, signed_info: etree._Element, signed_info_c14n: bytes, leaf: x509.Certificate
) -> None:
    method = SignatureMethod(signed_info.find(f"{_DS}SignatureMethod").get("Algorithm"))
    text = signature.find(f"{_DS}SignatureValue").text
    if text is None:
        raise Refused("malformed", "the signature is malformed: SignatureValue is empty")
    try:
        raw = base64.b64decode(text)  # not validating: what signxml reads
    except binascii.Error as exc:
        raise Refused("malformed", f"the signature is malformed: SignatureValue: {exc}") from None
    digest = _HASHES[method]()
    key = leaf.public_key()
    try:
        if method.name.startswith("ECDSA_"):
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise Refused("malformed", "the signature is malformed: the certificate holds no EC key")
            size = (key.key_size + 7) // 8
            if len(raw) != 2 * size:
                raise Refused("bad-signature", f"the SignatureValue does not verify: not {2 * size} bytes")
            der = encode_dss_signature(int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big"))
            key.verify(der, signed_info_c14n, ec.ECDSA(digest))
        elif method.name.startswith(("RSA_", "SHA")):
            if not isinstance(key, rsa.RSAPublicKey):
                raise Refused("malformed", "the signature is malformed: the certificate holds no RSA key")
            pad: AsymmetricPadding = (
                PKCS1v15()
                if method.name.startswith("RSA_")
                else PSS(mgf=MGF1(algorithm=digest), salt_length=digest.digest_size)
            )
            key.verify(raw, signed_info_c14n, pad, digest)
        else:  # pragma: no cover - the algorithm policy admits RSA and ECDSA only
            raise Refused("malformed", f"unsupported signature method {method.value}")
    except InvalidSignature:
        raise Refused("bad-signature", "the SignatureValue does not verify") from None


def _reference_c14n(reference: etree._Element) -> tuple[str, list[str] | None]:
    """The Reference's C14N transform (algorithm, inclusive prefixes); Canonical XML 1.0 when it has none."""
    for transform in reference.iterfind(f"{_DS}Transforms/{_DS}Transform"):
        algorithm = transform.get("Algorithm")
        if algorithm in _C14N_URIS:
            return algorithm, _prefixes(transform)
    return _DEFAULT_C14N, None


def _c14n_without(root: etree._Element, signature: etree._Element, algorithm: str, prefixes: list[str] | None) -> bytes:
    """The canonical form of ``root`` without ``signature`` (the enveloped-signature transform), then ``root``
    exactly as it was. The Signature's tail text stays in the document, as XPath node-set exclusion keeps it."""
    parent = signature.getparent()
    index = parent.index(signature)
    tail, signature.tail = signature.tail, None
    previous = signature.getprevious()
    saved = previous.tail if previous is not None else parent.text
    if tail:
        if previous is not None:
            previous.tail = (saved or "") + tail
        else:
            parent.text = (saved or "") + tail
    parent.remove(signature)
    try:
        return _c14n(root, algorithm, prefixes)
    finally:
        if previous is not None:
            previous.tail = saved
        else:
            parent.text = saved
        parent.insert(index, signature)
        signature.tail = tail


def _digest_of(reference: etree._Element) -> tuple[bytes, Hash]:
    """The DigestValue the Reference carries, and a hash of its DigestMethod to compute ours with."""
    algorithm = DigestAlgorithm(reference.find(f"{_DS}DigestMethod").get("Algorithm"))
    text = reference.find(f"{_DS}DigestValue").text
    if text is None:
        raise Refused("malformed", "the signature is malformed: DigestValue is empty")
    try:
        expected = base64.b64decode(text)
    except binascii.Error as exc:
        raise Refused("malformed", f"the signature is malformed: DigestValue: {exc}") from None
    return expected, Hash(_HASHES[algorithm]())


def _compare(expected: bytes, hasher: Hash) -> None:
    if not hmac.compare_digest(expected, hasher.finalize()):
        raise Refused("bad-digest", "the signed content was modified (digest mismatch)")


def _streamed_digest(
    root: etree._Element,
    signature: etree._Element,
    reference: etree._Element,
    algorithm: str,
    prefixes: list[str] | None,
    spooled: SpooledTexts,
) -> tuple[bytes, Hash]:
    """Hash the canonical form of ``root`` without ``signature`` with the spooled elements' text streamed in.

    libxml2 canonicalises a text node into a new buffer and then into the output (2× the text; measured, see
    :mod:`gateway.xmlcheck.bulk`). So each spooled element's text is replaced by a unique marker, the (now small)
    document canonicalised as always, and the output hashed with each marker replaced by the element's text,
    escaped as Canonical XML escapes text (``&`` ``<`` ``>`` and carriage return; the same in every C14N version)
    and read from the spool in pieces. The same bytes are hashed as for the whole canonical form."""
    token = secrets.token_hex(16)
    markers: dict[IndexPath, bytes] = {}
    for i, (el, path) in enumerate(spooled.elements):
        marker = f"{token}{i:06d}"
        el.text = marker  # the tree's copy of the text goes: the caller's tree is spent (docstring above)
        markers[path] = marker.encode("ascii")
    skeleton = _c14n_without(root, signature, algorithm, prefixes)
    expected, hasher = _digest_of(reference)  # after the C14N, as on the whole form: the same first refusal
    order = list(markers)
    cuts: list[int] = []
    for path in order:
        at = skeleton.find(markers[path])
        if (
            at < 0 or skeleton.count(markers[path]) != 1 or (cuts and at < cuts[-1])
        ):  # pragma: no cover - 128 random bits
            raise Refused("malformed", "the signed content could not be canonicalised in pieces")
        cuts.append(at)
    state = {"next": 0, "pos": 0}

    def advance(upto: int) -> None:
        while state["next"] <= upto:
            k = state["next"]
            hasher.update(skeleton[state["pos"] : cuts[k]])
            state["pos"] = cuts[k] + len(markers[order[k]])
            state["next"] = k + 1

    def sink(k: int):
        def write(text: str) -> None:
            advance(k)
            hasher.update(_escape_text(text).encode("utf-8"))

        return write

    spooled.feed({path: sink(k) for k, path in enumerate(order)})
    advance(len(order) - 1)
    hasher.update(skeleton[state["pos"] :])
    return expected, hasher


def _escape_text(text: str) -> str:
    """Canonical XML's escaping of a text node (C14N 1.0 §2.3, the same in 1.1 and exclusive C14N)."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#xD;")
    return text


__all__ = ["Refused", "SignedContent", "verify_enveloped"]
