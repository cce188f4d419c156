"""A minimal DER (ASN.1) editor for building malformed certificates at test time (issue 10 finding 5).

``cryptography`` refuses to *build* a broken certificate (a duplicate extension, an unknown version, garbage in a
name), and parses lazily what it loads: such certificates only exist by editing the bytes of a good one. This
module decodes DER into a tree of :class:`Tlv`, lets a test change a node, and encodes it back with correct
lengths. The signature no longer matches after an edit; that is the point — the parser must be reached first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Tlv:
    """One DER element: its tag byte, and either raw contents (primitive) or children (constructed)."""

    tag: int
    value: bytes = b""
    children: list[Tlv] = field(default_factory=list)

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def encode(self) -> bytes:
        body = b"".join(c.encode() for c in self.children) if self.constructed else self.value
        return bytes([self.tag]) + _length(len(body)) + body


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _parse_one(data: bytes, pos: int) -> tuple[Tlv, int]:
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    body = data[pos : pos + length]
    node = Tlv(tag, body)
    if node.constructed:
        node.children = decode_all(body)
        node.value = b""
    return node, pos + length


def decode_all(data: bytes) -> list[Tlv]:
    out, pos = [], 0
    while pos < len(data):
        node, pos = _parse_one(data, pos)
        out.append(node)
    return out


def decode(data: bytes) -> Tlv:
    node, end = _parse_one(data, 0)
    assert end == len(data)
    return node


def oid(dotted: str) -> Tlv:
    """An OBJECT IDENTIFIER element."""
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body.extend(reversed(chunk))
    return Tlv(0x06, bytes(body))


# Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
# TBSCertificate ::= SEQUENCE { [0] version, serialNumber, signature, issuer, validity, subject, spki, ..., [3] exts }


def tbs(cert: Tlv) -> Tlv:
    return cert.children[0]


def extensions(cert: Tlv) -> Tlv:
    """The SEQUENCE OF Extension inside ``[3]``."""
    outer = next(c for c in tbs(cert).children if c.tag == 0xA3)
    return outer.children[0]


def mutations(der: bytes) -> dict[str, bytes]:
    """Named malformed variants of a good v3 certificate with extensions, each one a distinct lazy-parse failure."""
    out: dict[str, bytes] = {}

    cert = decode(der)
    exts = extensions(cert)
    exts.children.append(exts.children[0])
    out["duplicate-extension"] = cert.encode()

    cert = decode(der)
    tbs(cert).children[0].children[0].value = b"\x07"  # version v8
    out["invalid-version"] = cert.encode()

    cert = decode(der)
    cert.children[1].children[0] = oid("1.2.3.4.5.6")  # outer signatureAlgorithm
    tbs(cert).children[2].children[0] = oid("1.2.3.4.5.6")  # inner signature
    out["unknown-signature-oid"] = cert.encode()

    cert = decode(der)
    subject = tbs(cert).children[5]
    atv = subject.children[-1].children[0]  # last RDN, its AttributeTypeAndValue
    atv.children[1] = Tlv(0x0C, b"\xff\xfe\xfa bad utf-8")  # UTF8String with invalid UTF-8
    out["garbage-subject"] = cert.encode()

    cert = decode(der)
    issuer = tbs(cert).children[3]
    issuer.children[-1].children[0].children[1] = Tlv(0x13, b"bad*printable@")  # PrintableString with '*' '@'
    out["bad-printable-issuer"] = cert.encode()

    cert = decode(der)
    for ext in extensions(cert).children:
        ext.children[-1].value = b"\x30\x03\x01\x01"  # truncated inner DER in every extnValue
    out["garbage-extension-values"] = cert.encode()

    cert = decode(der)
    spki = tbs(cert).children[6]
    spki.children[0].children[0] = oid("1.2.3.4.99")  # unknown public-key algorithm
    out["unknown-key-algorithm"] = cert.encode()

    cert = decode(der)
    validity = tbs(cert).children[4]
    validity.children[0] = Tlv(0x17, b"991399999999Z")  # month 13, hour 99
    out["bad-validity-time"] = cert.encode()
    return out


def sample_certificate() -> bytes:
    """A small self-signed v3 certificate (EC P-256, fast to make) with extensions and an OrganId subject."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Văn phòng UBND tỉnh Tây Ninh"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "000.00.01.H53"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2034, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)
