"""The primitive floor of intake: what accepting one signed package cannot avoid, done directly with the libraries.

Per package, in this order, in one process, one package at a time:

1. parse the bytes with lxml (the project's safe parser settings, ``huge_tree`` only above 9 MB, as intake does);
2. exclusive C14N of ``SignedInfo``, and of the document with the enveloped ``Signature`` taken out (its tail
   text kept) — the two canonical forms an enveloped, whole-document XML-DSig signature is computed over;
3. SHA-256 of the document's canonical form, compared with the ``DigestValue`` (a mismatch stops the bench: the
   floor really verifies, it is not a stopwatch around unrelated calls);
4. one RSA-2048 PKCS#1 v1.5 / SHA-256 verification of the ``SignatureValue`` over the canonical ``SignedInfo``,
   with the signer's public key loaded once beforehand (no certificate path, CRL or policy work);
5. one durable insert of the package's bytes: SQLite in WAL mode with ``synchronous=FULL`` (as the gateway opens
   it, gateway/db/engine.py), one row, one commit — or, with ``--database-url``, one INSERT and COMMIT on a
   PostgreSQL database of that server.

Not in the floor: XSD validation, reading the edXML model, business checks, certificate path and CRL checks, the
idempotency lookup, deliveries/outbox/status rows, the receipt signature — everything intake adds on top.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from gateway.xmlcheck.safe import make_parser

DS = "{http://www.w3.org/2000/09/xmldsig#}"
EDXML = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"
SIGNATURE_PATH = f"{EDXML}edXMLEnvelope/{EDXML}edXMLHeader/{DS}Signature"
#: libxml2 caps text nodes at 10,000,000 bytes unless huge_tree is on; gateway/xmlcheck/safe.py switches it on
#: from the same size.
HUGE_TREE_FROM = 9_000_000

DESCRIPTION = (
    "floor = lxml parse + exclusive C14N (SignedInfo, and the document minus its enveloped Signature) + SHA-256 "
    "checked against DigestValue + one RSA-2048 verify of SignatureValue + one durable insert of the bytes "
    "({store}), one process, one package at a time"
)


class PrimitiveFloor:
    """Runs the floor over packages signed by one key, storing into ``sqlite_path`` or a PostgreSQL ``pg_url``."""

    def __init__(self, signer_cert: Path, sqlite_path: Path, pg_url: str | None = None) -> None:
        key = x509.load_pem_x509_certificate(signer_cert.read_bytes()).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise TypeError("the floor measures an RSA verification; sign the bench packages with an RSA key")
        self.public_key = key
        self.conn: Any
        if pg_url:
            import psycopg

            self.store = "PostgreSQL INSERT + COMMIT"
            self.conn = psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"))
            self.conn.execute("CREATE TABLE floor_packages (id bigserial PRIMARY KEY, body bytea NOT NULL)")
            self.insert = "INSERT INTO floor_packages (body) VALUES (%s)"
        else:
            self.store = "SQLite WAL, synchronous=FULL, INSERT + COMMIT"
            self.conn = sqlite3.connect(sqlite_path)  # INSERT opens a transaction, commit() ends it
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("CREATE TABLE floor_packages (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            self.insert = "INSERT INTO floor_packages (body) VALUES (?)"
        self.conn.commit()

    @property
    def description(self) -> str:
        return DESCRIPTION.format(store=self.store)

    def accept(self, data: bytes) -> None:
        """The unavoidable work of accepting ``data``; raises if its signature does not verify."""
        root = etree.fromstring(data, make_parser(huge_tree=len(data) > HUGE_TREE_FROM))
        signature = root.find(SIGNATURE_PATH)
        if signature is None:
            raise ValueError("floor: no enveloped Signature under edXMLHeader")
        signed_info = signature.find(f"{DS}SignedInfo")
        digest_value = base64.b64decode(signed_info.findtext(f"{DS}Reference/{DS}DigestValue") or "")
        signature_value = base64.b64decode(signature.findtext(f"{DS}SignatureValue") or "")
        signed_info_c14n = etree.tostring(signed_info, method="c14n", exclusive=True)
        # the enveloped-signature transform removes the element node only: its tail text stays in the document
        parent, previous = signature.getparent(), signature.getprevious()
        if signature.tail:
            if previous is not None:
                previous.tail = (previous.tail or "") + signature.tail
            else:
                parent.text = (parent.text or "") + signature.tail
        parent.remove(signature)
        if hashlib.sha256(etree.tostring(root, method="c14n", exclusive=True)).digest() != digest_value:
            raise ValueError("floor: the document's digest does not match its DigestValue")
        self.public_key.verify(signature_value, signed_info_c14n, padding.PKCS1v15(), hashes.SHA256())
        self.conn.execute(self.insert, (data,))
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()
