"""Verification on the tree we already parsed (issue 14) against signxml on its copy: the same verdicts.

:mod:`gateway.xmlcheck.enveloped` replaced signxml on the hot path. These tests hold it to signxml's verdicts on
the same inputs: every variant below is verified both ways — :func:`_signxml_verdict` is the path intake ran
before (the same structure, algorithm and trust checks, then ``dsig.signxml_verify`` on the bytes and
``dsig.check_signed_result``) — and both must accept with the SAME signed bytes, or refuse with the same reason.
The variants are real signatures (our signer, signxml with each C14N, ECDSA, RSA-PSS, SHA-512, a KeyValue) and
edits of them: comments and processing instructions around and inside, the Signature moved to the first place,
namespace declarations added after signing, and tampering (xmldsig-core §3.2 core validation: reference digest,
then SignatureValue). The wrapping vectors of tests/test_signature.py run through the new path unchanged.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace

import pytest
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from gateway.demo.pki import DemoPki
from gateway.edxml import EdocPackage, read_tree
from gateway.errors import SignatureError
from gateway.ns import DSIG, EDXML
from gateway.xmlcheck import dsig, enveloped
from gateway.xmlcheck.safe import parse_bytes
from gateway.xmlcheck.signature import SignatureState, VerifyPolicy, verify_package
from gateway.xmlcheck.signing import SigningKey, place_signature_placeholder, sign_package
from gateway.xmlcheck.trust import TrustStore, validated_path

SMALL = "edoc_three_to"
E = f"{{{EDXML}}}"
DS = f"{{{DSIG}}}"
C14N = CanonicalizationMethod


@pytest.fixture(scope="module")
def trust(pki: DemoPki) -> TrustStore:
    return TrustStore.from_files(pki.trust, pki.crls)


@pytest.fixture(scope="module")
def key(pki: DemoPki) -> SigningKey:
    cred = pki.agencies["000.00.01.H53"]
    return SigningKey.from_files(cred.key, cred.cert, pki.chain)


@pytest.fixture(scope="module")
def ecdsa_key(pki: DemoPki) -> SigningKey:
    return SigningKey.from_files(pki.ecdsa.key, pki.ecdsa.cert, pki.chain)


# ------------------------------------------------------------------------------------------ the two paths


def _signxml_verdict(data: bytes, trust: TrustStore) -> tuple[str, bytes | str]:
    """The path before issue 14: our checks, then signxml on the bytes.

    Returns ("valid", the signed bytes) or ("refused", the reason)."""
    policy = VerifyPolicy()
    root = parse_bytes(data).getroot()
    try:
        ns, signature = dsig.locate_signature(root)
        dsig.check_signed_info(signature, allow_sha1=False)
        certs = dsig.keyinfo_certificates(signature)
        leaf = dsig.end_entity(certs)
        at = policy.validation_time()
        validated_path(leaf, certs, trust, at, policy.trust)
        result = dsig.signxml_verify(data, ns, leaf, at, allow_sha1=False)
        dsig.check_signed_result(result, root)
    except SignatureError as exc:
        return "refused", exc.detail["reason"]
    return "valid", result.signed_data


def _tree_verdict(data: bytes, trust: TrustStore) -> tuple[str, bytes | str]:
    """verify_package on a parsed tree, as intake calls it."""
    tree = parse_bytes(data)
    try:
        check = verify_package(tree, trust)
    except SignatureError as exc:
        return "refused", exc.detail["reason"]
    assert check.state is SignatureState.VALID
    return "valid", check.signed_xml


def _fast_path_takes(data: bytes) -> bool:
    """The shape check of the fast path (False: verify_package hands the signature to signxml)."""
    root = parse_bytes(data).getroot()
    _ns, signature = dsig.locate_signature(root)
    return enveloped._fast_shape(root, signature)


# ------------------------------------------------------------------------------------------ variants


def _signxml_signed(data: bytes, key: SigningKey, prepare: Callable | None = None, **kwargs: object) -> bytes:
    sign_kwargs = {k: kwargs.pop(k) for k in ("always_add_key_value", "inclusive_ns_prefixes") if k in kwargs}
    kwargs.setdefault("c14n_algorithm", C14N.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    root = parse_bytes(data).getroot()
    if prepare is not None:
        prepare(root)
    place_signature_placeholder(root)
    signed = XMLSigner(**kwargs).sign(root, key=key.private_key, cert=[key.certificate, *key.chain], **sign_kwargs)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def _edit(data: bytes, fn: Callable[[etree._Element], None]) -> bytes:
    root = parse_bytes(data).getroot()
    fn(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _sig(root: etree._Element) -> etree._Element:
    return root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{DS}Signature")


def _first_place(root: etree._Element) -> None:
    """A dummy Signature as the header's first child: the placeholder takes its place (no previous sibling)."""
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    dummy = etree.Element(f"{E}Signature")
    dummy.tail = "\n  "
    header.insert(0, dummy)


def _flip_signature_value(root: etree._Element) -> None:
    node = _sig(root).find(f"{DS}SignatureValue")
    raw = bytearray(base64.b64decode(node.text))
    raw[-1] ^= 1
    node.text = base64.b64encode(bytes(raw)).decode()


def _set(path: str, text: str | None) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        _sig(root).find(path).text = text

    return edit


GOOD: dict[str, Callable[[bytes, SigningKey, SigningKey], bytes]] = {
    "ours (exclusive C14N)": lambda d, k, _e: sign_package(d, k),
    "signxml C14N 1.0": lambda d, k, _e: _signxml_signed(d, k, c14n_algorithm=C14N.CANONICAL_XML_1_0),
    "signxml C14N 1.1": lambda d, k, _e: _signxml_signed(d, k, c14n_algorithm=C14N.CANONICAL_XML_1_1),
    "ECDSA P-256": lambda d, _k, e: sign_package(d, e),
    "RSA-PSS SHA-256": lambda d, k, _e: _signxml_signed(d, k, signature_algorithm=SignatureMethod.SHA256_RSA_MGF1),
    "SHA-512": lambda d, k, _e: _signxml_signed(
        d, k, signature_algorithm=SignatureMethod.RSA_SHA512, digest_algorithm=DigestAlgorithm.SHA512
    ),
    "Signature first in the header": lambda d, k, _e: _signxml_signed(d, k, prepare=_first_place),
    "inclusive, first in the header": lambda d, k, _e: _signxml_signed(
        d, k, prepare=_first_place, c14n_algorithm=C14N.CANONICAL_XML_1_0
    ),
}

#: Edits of a good signature: (name, edit). Some keep it valid, most must be refused — by both paths alike.
EDITS: dict[str, Callable[[bytes], bytes]] = {
    "as signed": lambda d: d,
    "comment and PI before the root": lambda d: d.replace(b"?>", b"?><!-- before --><?pi x?>", 1),
    "comment in the body": lambda d: d.replace(b"<edXML:Subject>", b"<!-- remark --><edXML:Subject>", 1),
    "PI in the body": lambda d: d.replace(b"<edXML:Subject>", b"<?note x?><edXML:Subject>", 1),
    "unused namespace added to the root": lambda d: _edit(d, lambda r: r.set("{urn:x-extra}a", "1")),
    "xmlns added to the root": lambda d: d.replace(b"<edXML:edXML ", b'<edXML:edXML xmlns:zz="urn:zz" ', 1),
    "content tampered": lambda d: d.replace(b"<edXML:Subject>", b"<edXML:Subject>X", 1),
    "text after the Signature changed": lambda d: _edit(d, lambda r: setattr(_sig(r), "tail", "\n\n  ")),
    "SignatureValue flipped": lambda d: _edit(d, _flip_signature_value),
    "SignatureValue truncated": lambda d: _edit(d, _set(f"{DS}SignatureValue", "AAAA")),
    "DigestValue empty": lambda d: _edit(d, _set(f"{DS}SignedInfo/{DS}Reference/{DS}DigestValue", None)),
    "DigestValue not base64": lambda d: _edit(d, _set(f"{DS}SignedInfo/{DS}Reference/{DS}DigestValue", "!!")),
}


@pytest.fixture(scope="module")
def small(corpus) -> bytes:
    return corpus.read(SMALL)


@pytest.mark.parametrize("variant", sorted(GOOD))
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_same_verdict_and_signed_bytes_as_signxml(small, key, ecdsa_key, trust, variant, edit):
    data = EDITS[edit](GOOD[variant](small, key, ecdsa_key))
    expected = _signxml_verdict(data, trust)
    assert _tree_verdict(data, trust) == expected
    assert verify_package(data, trust).signed_xml == expected[1] if expected[0] == "valid" else True
    if edit in ("as signed", "comment in the body"):
        assert expected[0] == "valid"
        assert _fast_path_takes(data)  # the shapes that matter never fall back to signxml


def test_the_rare_shapes_go_to_signxml_with_the_same_verdicts(small, key, trust):
    with_key_value = _signxml_signed(small, key, always_add_key_value=True)
    comment_in_signature = sign_package(small, key).replace(b"</ds:SignedInfo>", b"<!-- c --></ds:SignedInfo>", 1)
    pi_before_root = EDITS["comment and PI before the root"](
        _signxml_signed(small, key, c14n_algorithm=C14N.CANONICAL_XML_1_0)
    )
    for data in (with_key_value, comment_in_signature, pi_before_root):
        assert not _fast_path_takes(data)
        assert _tree_verdict(data, trust) == _signxml_verdict(data, trust)
        assert _tree_verdict(data, trust)[0] == "valid"


def test_inclusive_namespaces_are_refused_by_both(small, key, trust):
    """signxml's XML-DSig schema has no declaration for ec:InclusiveNamespaces (a strict wildcard): refused."""
    data = _signxml_signed(small, key, inclusive_ns_prefixes=["edXML"])
    assert _fast_path_takes(data)
    assert _tree_verdict(data, trust) == _signxml_verdict(data, trust) == ("refused", "malformed")


def test_a_key_value_of_another_key_is_still_refused(small, key, pki, trust):
    cred = pki.agencies["000.00.00.G22"]
    other = _signxml_signed(small, SigningKey.from_files(cred.key, cred.cert, pki.chain), always_add_key_value=True)
    other_key_value = etree.fromstring(other).find(f".//{DS}KeyValue")

    def swap(root: etree._Element) -> None:
        ki = _sig(root).find(f"{DS}KeyInfo")
        ki.replace(ki.find(f"{DS}KeyValue"), other_key_value)

    data = _edit(_signxml_signed(small, key, always_add_key_value=True), swap)
    assert _tree_verdict(data, trust) == _signxml_verdict(data, trust) == ("refused", "malformed")


# ------------------------------------------------------------------------------------------ the tree and the model


@pytest.mark.parametrize("variant", ["ours (exclusive C14N)", "Signature first in the header"])
def test_the_input_tree_is_left_exactly_as_it_was(small, key, ecdsa_key, trust, variant):
    tree = parse_bytes(GOOD[variant](small, key, ecdsa_key))
    before = etree.tostring(tree)
    for _ in range(2):  # and it verifies again: the Signature is back in its place
        assert verify_package(tree, trust).state is SignatureState.VALID
        assert etree.tostring(tree) == before


def test_a_refusal_also_leaves_the_tree_as_it_was(small, key, trust):
    tree = parse_bytes(EDITS["content tampered"](sign_package(small, key)))
    before = etree.tostring(tree)
    with pytest.raises(SignatureError):
        verify_package(tree, trust)
    assert etree.tostring(tree) == before


def test_what_was_read_before_verification_is_the_signed_package(corpus, key, trust):
    """Intake reads the package once: where the verifier says the input IS the signed content, the model read
    from the input (without its Signature block) equals the one read from the signed content — every sample."""
    for path in corpus.well_formed:
        tree = parse_bytes(sign_package(path.read_bytes(), key))
        check = verify_package(tree, trust)
        assert check.signed_is_input, path.name
        read = read_tree(tree)
        unsigned = replace(read, signature=None) if isinstance(read, EdocPackage) else read
        assert read_tree(check.signed_root) == unsigned, path.name


def test_a_comment_makes_the_caller_read_the_signed_content(small, key, trust):
    data = EDITS["comment in the body"](sign_package(small, key))
    check = verify_package(parse_bytes(data), trust)
    assert check.state is SignatureState.VALID
    assert not check.signed_is_input
    assert not list(check.signed_root.iter(etree.Comment))
    assert check.signed_root.find(f".//{DS}Signature") is None
