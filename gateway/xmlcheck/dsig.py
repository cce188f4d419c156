"""XML-DSig mechanics of edXML packages: where the Signature may be, what it may say, and the signxml call.

:func:`gateway.xmlcheck.signature.verify_package` runs these in order: :func:`locate_signature` (one
``ds:Signature``, in its one place: anything else is ``wrapping``), :func:`check_signed_info` (one whole-document
Reference, known transforms, the algorithm policy with SHA-1 only as a named opt-in),
:func:`keyinfo_certificates` / :func:`end_entity` (what the signer sent), then — after the trust side has
accepted the signer — :func:`signxml_verify` for the cryptography and :func:`check_signed_result` on what
signxml says was signed. The signer (:mod:`gateway.xmlcheck.signing`) uses the same element name and
emits only algorithms accepted here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Final, NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from lxml import etree
from signxml import SignatureConfiguration, VerifyResult, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, SignXMLException
from signxml.exceptions import InvalidSignature as SignxmlInvalidSignature

from gateway.errors import SignatureError
from gateway.ns import DSIG, EDXML_READ
from gateway.xmlcheck.certs import is_ca, load_der_certificate
from gateway.xmlcheck.paths import SIGNATURE_PATH, element_path
from gateway.xmlcheck.safe import make_parser

DS_SIGNATURE: Final = f"{{{DSIG}}}Signature"

_ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#: C14N variants accepted as SignedInfo canonicalization or Reference transform. The #WithComments variants
#: are refused: for URI="" the spec drops comments before the transforms, signxml would keep them, and the
#: two readings produce different digests.
_C14N_OK: Final = frozenset(
    {
        CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value,
        CanonicalizationMethod.CANONICAL_XML_1_0.value,
        CanonicalizationMethod.CANONICAL_XML_1_1.value,
    }
)

#: "RSA/ECDSA with SHA-256 or better" (gateway.md Intake 5).
_STRONG_SIGNATURE_METHODS: Final = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.SHA256_RSA_MGF1,
        SignatureMethod.SHA384_RSA_MGF1,
        SignatureMethod.SHA512_RSA_MGF1,
        SignatureMethod.SHA3_256_RSA_MGF1,
        SignatureMethod.SHA3_384_RSA_MGF1,
        SignatureMethod.SHA3_512_RSA_MGF1,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
        SignatureMethod.ECDSA_SHA3_256,
        SignatureMethod.ECDSA_SHA3_384,
        SignatureMethod.ECDSA_SHA3_512,
    }
)
_SHA1_SIGNATURE_METHODS: Final = frozenset(
    {SignatureMethod.RSA_SHA1, SignatureMethod.ECDSA_SHA1, SignatureMethod.SHA1_RSA_MGF1}
)
_STRONG_DIGESTS: Final = frozenset(
    {
        DigestAlgorithm.SHA256,
        DigestAlgorithm.SHA384,
        DigestAlgorithm.SHA512,
        DigestAlgorithm.SHA3_256,
        DigestAlgorithm.SHA3_384,
        DigestAlgorithm.SHA3_512,
    }
)
_STRONG_SIGNATURE_URIS: Final = frozenset(m.value for m in _STRONG_SIGNATURE_METHODS)
_SHA1_SIGNATURE_URIS: Final = frozenset(m.value for m in _SHA1_SIGNATURE_METHODS)
_STRONG_DIGEST_URIS: Final = frozenset(d.value for d in _STRONG_DIGESTS)
_SHA1_DIGEST_URIS: Final = frozenset({DigestAlgorithm.SHA1.value})
#: Known but refused whatever the policy (no named opt-in exists for these).
_WEAK_URIS: Final = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#md5",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
        "http://www.w3.org/2001/04/xmldsig-more#sha224",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha224",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha224",
        "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
    }
)
_MAX_KEYINFO_CERTS: Final = 10


def local_name(el: etree._Element) -> str | None:
    """The element's local name; ``None`` for comments and processing instructions."""
    return etree.QName(el).localname if isinstance(el.tag, str) else None


def fail(reason: str, message: str, **detail: object) -> NoReturn:
    """Refuse the signature: ``EDXML.SIGNATURE`` at the signature's path, with a ``reason`` code."""
    raise SignatureError(message, path=SIGNATURE_PATH, reason=reason, **detail)


# ------------------------------------------------------------------------------------------ structure


def locate_signature(root: etree._Element) -> tuple[str, etree._Element]:
    """The one ds:Signature, proven to sit at edXML/edXMLEnvelope/edXMLHeader; returns (edXML ns, element).

    Anything that could let the signed and the processed content differ is ``wrapping``: duplicate
    envelopes/headers/MessageHeaders (a forged copy next to the signed one), a second Signature, or a
    Signature elsewhere (moved into a wrapper).
    """
    ns = etree.QName(root).namespace
    if ns not in EDXML_READ or etree.QName(root).localname != "edXML":
        fail("malformed", f"the document root {root.tag} is not an edXML package")
    envelopes = root.findall(f"{{{ns}}}edXMLEnvelope")
    if len(envelopes) != 1:
        fail(
            "wrapping" if envelopes else "malformed",
            f"expected one edXMLEnvelope under the root, found {len(envelopes)}",
        )
    headers = envelopes[0].findall(f"{{{ns}}}edXMLHeader")
    if len(headers) != 1:
        fail(
            "wrapping" if headers else "malformed",
            f"expected one edXMLHeader in the envelope, found {len(headers)}",
        )
    header = headers[0]
    if len(header.findall(f"{{{ns}}}MessageHeader")) > 1:
        fail("wrapping", "more than one MessageHeader in edXMLHeader")
    signatures = list(root.iter(DS_SIGNATURE))
    if len(signatures) != 1:
        fail("wrapping", f"expected exactly one xmldsig Signature, found {len(signatures)}")
    signature = signatures[0]
    if signature.getparent() is not header:
        fail(
            "wrapping",
            f"the Signature is at {element_path(signature)}, not at {SIGNATURE_PATH}",
            found=element_path(signature),
        )
    if any(local_name(child) == "Signature" and child is not signature for child in header):
        fail("wrapping", "edXMLHeader carries a second (non-xmldsig) Signature next to the xmldsig one")
    return ns, signature


def check_signed_info(signature: etree._Element, *, allow_sha1: bool) -> tuple[str, str]:
    """Reference shape and algorithm policy; returns (SignatureMethod URI, DigestMethod URI)."""
    ds = f"{{{DSIG}}}"
    signed_infos = signature.findall(f"{ds}SignedInfo")
    if len(signed_infos) != 1:
        fail("malformed", f"expected one SignedInfo, found {len(signed_infos)}")
    signed_info = signed_infos[0]
    references = signed_info.findall(f"{ds}Reference")
    if not references:
        fail("malformed", "SignedInfo has no Reference")
    if len(references) > 1:
        fail("wrapping", f"SignedInfo has {len(references)} References; only one whole-document one is allowed")
    reference = references[0]
    uri = reference.get("URI")
    if uri != "":
        fail("wrapping", f'Reference URI is {uri!r}; only URI="" (the whole document) is accepted', uri=uri)
    transforms = [t.get("Algorithm") for t in reference.iterfind(f"{ds}Transforms/{ds}Transform")]
    if _ENVELOPED not in transforms:
        fail("malformed", "the Reference lacks the enveloped-signature transform")
    unknown = [t for t in transforms if t != _ENVELOPED and t not in _C14N_OK]
    if unknown:
        fail("malformed", f"unsupported Reference transform(s): {unknown}")
    c14n = signed_info.find(f"{ds}CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") not in _C14N_OK:
        fail("malformed", f"unsupported CanonicalizationMethod {None if c14n is None else c14n.get('Algorithm')}")

    sig_method = signed_info.find(f"{ds}SignatureMethod")
    digest_method = reference.find(f"{ds}DigestMethod")
    sig_uri = sig_method.get("Algorithm") if sig_method is not None else None
    digest_uri = digest_method.get("Algorithm") if digest_method is not None else None
    if sig_uri is None or digest_uri is None:
        fail("malformed", "SignatureMethod or DigestMethod is missing its Algorithm")
    _check_algorithm(sig_uri, _STRONG_SIGNATURE_URIS, _SHA1_SIGNATURE_URIS, allow_sha1)
    _check_algorithm(digest_uri, _STRONG_DIGEST_URIS, _SHA1_DIGEST_URIS, allow_sha1)
    return sig_uri, digest_uri


def _check_algorithm(uri: str, strong: frozenset[str], sha1: frozenset[str], allow_sha1: bool) -> None:
    if uri in strong:
        return
    if uri in sha1:
        if allow_sha1:
            return
        fail("weak-algorithm", f"{uri} uses SHA-1, which this policy does not allow", algorithm=uri)
    if uri in _WEAK_URIS:
        fail("weak-algorithm", f"{uri} is too weak (RSA/ECDSA with SHA-256 or better required)", algorithm=uri)
    fail("malformed", f"unsupported algorithm {uri}", algorithm=uri)


# ------------------------------------------------------------------------------------------ KeyInfo


def keyinfo_certificates(signature: etree._Element) -> list[x509.Certificate]:
    """The certificates of ``KeyInfo/X509Data`` (at most a handful), each one readable."""
    ds = f"{{{DSIG}}}"
    nodes = signature.findall(f"{ds}KeyInfo/{ds}X509Data/{ds}X509Certificate")
    if not nodes:
        fail("malformed", "KeyInfo/X509Data carries no X509Certificate")
    if len(nodes) > _MAX_KEYINFO_CERTS:
        fail("malformed", f"KeyInfo carries {len(nodes)} certificates (limit {_MAX_KEYINFO_CERTS})")
    certs = []
    for node in nodes:
        if len(node):  # a comment or PI would cut lxml's .text short: the certificate read would not be the one sent
            fail("malformed", "an X509Certificate must hold base64 text only", certificate=len(certs) + 1)
        try:
            der = base64.b64decode("".join((node.text or "").split()), validate=True)
            certs.append(load_der_certificate(der))  # parsed in full here: nothing lazy fails later
        except (binascii.Error, ValueError) as exc:  # UnreadableCertificate is a ValueError
            fail("malformed", f"KeyInfo carries an unreadable X509Certificate: {exc}", certificate=len(certs) + 1)
    return certs


def end_entity(certs: Sequence[x509.Certificate]) -> x509.Certificate:
    """The signer certificate: the single non-CA certificate in KeyInfo (order is not significant,
    xmldsig-core §4.5.4)."""
    leaves = [c for c in certs if not is_ca(c)]
    if len(leaves) != 1:
        fail("malformed", f"KeyInfo must carry exactly one end-entity certificate, found {len(leaves)}")
    return leaves[0]


# ------------------------------------------------------------------------------------------ signxml


def signxml_verify(
    payload: bytes | etree._Element, ns: str, leaf: x509.Certificate, at: datetime, *, allow_sha1: bool
) -> VerifyResult:
    """Run signxml on the exact same input, pinned to the validated leaf and the one allowed location.

    The original bytes are passed when we have them (no extra serialisation). signxml parses with our
    parser factory: no DTD, no entities, no network; ``huge_tree`` because this input already passed
    :func:`~gateway.xmlcheck.safe.parse_bytes` (size limit, DOCTYPE refusal) — signxml additionally refuses
    DTDs and entities.
    """
    methods = set(_STRONG_SIGNATURE_METHODS)
    digests = set(_STRONG_DIGESTS)
    if allow_sha1:
        methods |= _SHA1_SIGNATURE_METHODS
        digests.add(DigestAlgorithm.SHA1)
    config = SignatureConfiguration(
        require_x509=True,
        location=f"./{{{ns}}}edXMLEnvelope/{{{ns}}}edXMLHeader/",
        expect_references=1,
        signature_methods=frozenset(methods),
        digest_algorithms=frozenset(digests),
        verification_time=at,
        # XML-DSig §4.4.3.2: a node-set left after the transforms is serialised with Canonical XML 1.0.
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    try:
        return XMLVerifier().verify(
            payload,
            x509_cert=leaf,
            parser=make_parser(huge_tree=True),
            expect_config=config,
            validate_schema=True,
        )
    except InvalidDigest as exc:
        fail("bad-digest", f"the signed content was modified (digest mismatch): {exc}")
    except InvalidCertificate as exc:
        fail("untrusted", f"signxml refused the signer certificate: {exc}")
    except (SignxmlInvalidSignature, CryptoInvalidSignature) as exc:
        fail("bad-signature", f"the SignatureValue does not verify: {exc}")
    except (SignXMLException, etree.LxmlError, ValueError, TypeError, KeyError, NotImplementedError) as exc:
        # Attacker-shaped XML reaches signxml code paths that raise these (unknown curve URI, KeyValue of
        # another key type, schema violations, bad base64); all of them mean "not a usable signature".
        fail("malformed", f"the signature is malformed: {exc}")


def check_signed_result(result: VerifyResult, root: etree._Element) -> etree._Element:
    """What signxml says was signed must be the whole document, once more without any Signature in it.

    Returns ``result.signed_xml``: the only element callers may read the package from.
    """
    signed_root = result.signed_xml
    if signed_root is None or signed_root.tag != root.tag:
        fail("wrapping", "the signature does not cover the document root")
    if next(signed_root.iter(DS_SIGNATURE), None) is not None:
        fail("wrapping", "the signed content still contains a Signature element")
    signed_refs = result.signature_xml.findall(f"{{{DSIG}}}SignedInfo/{{{DSIG}}}Reference")
    if [r.get("URI") for r in signed_refs] != [""]:
        fail("wrapping", 'the verified signature does not carry exactly one Reference URI=""')
    return signed_root
