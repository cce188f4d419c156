"""``GET /gateway/certificate.pem``: the gateway's certificate and its chain, exactly as its receipts carry them.

A sender keeps the gateway's signed receipts as evidence (gateway.md Intake 7). To check one it needs either the
gateway certificate (to pin it) or the root CA the chain in the receipt's KeyInfo leads to. Publishing the same
certificates at a fixed URL lets an integrator fetch them once, compare the fingerprint with what the operator
announced, and pin or configure them — without asking for a file.

Served as ``application/pem-certificate-chain`` (RFC 8555 §9.1): the gateway certificate first, then the
intermediate CA certificates, from the ``gateway_cert`` file through
:func:`gateway.xmlcheck.signing.load_certificate_chain` — the function the signing key is loaded with, so the
two cannot differ. Public data: no authentication. Read once when the app is built (a new certificate arrives
with a reload, as the signing key does); an ETag lets a client revalidate cheaply.
"""

from __future__ import annotations

import hashlib
import os
from typing import Final

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, Response, request

from gateway.xmlcheck.signing import load_certificate_chain

PATH: Final = "/gateway/certificate.pem"
MEDIA_TYPE: Final = "application/pem-certificate-chain"


def certificate_blueprint(gateway_cert: str | os.PathLike[str]) -> Blueprint:
    """The route serving the certificates of ``gateway_cert`` (``CONFIG.INVALID`` now if the file is unreadable)."""
    body = b"".join(cert.public_bytes(Encoding.PEM) for cert in load_certificate_chain(gateway_cert))
    etag = hashlib.sha256(body).hexdigest()[:32]
    bp = Blueprint("gateway_certificate", __name__)

    @bp.get(PATH)
    def certificate() -> Response:
        response = Response(body, content_type=MEDIA_TYPE)
        response.set_etag(etag)
        response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["Content-Disposition"] = 'inline; filename="edoc-gateway.pem"'
        return response.make_conditional(request)

    return bp


__all__ = ["MEDIA_TYPE", "PATH", "certificate_blueprint"]
