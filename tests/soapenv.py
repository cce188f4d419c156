"""Raw SOAP 1.1 requests to a served gateway, for the tests that need bytes no SOAP toolkit would send (hostile
envelopes, fuzzed ones): a WS-Security UsernameToken with PasswordDigest (a fresh Nonce each time), the envelope
around a Body fragment, the POST, and the Fault's code read back.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from lxml import etree

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:edoc-gateway:soap:1"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
XML = "text/xml; charset=utf-8"


def security_header(system: str, secret: str) -> str:
    """A ``wsse:Security`` header with a PasswordDigest UsernameToken (WSS UsernameToken Profile 1.0 §4.1)."""
    nonce = os.urandom(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest()).decode()
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{system}</wsse:Username>"
        f'<wsse:Password Type="{DIGEST}">{digest}</wsse:Password>'
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security>"
    )


def envelope(body: str | bytes, header: str = "") -> bytes:
    """``body`` (the operation element, prefix ``t`` bound to the service namespace) in a SOAP 1.1 envelope."""
    text = body.decode() if isinstance(body, bytes) else body
    return (
        f'<soap:Envelope xmlns:soap="{SOAP11}" xmlns:t="{TNS}">'
        f"{f'<soap:Header>{header}</soap:Header>' if header else ''}"
        f"<soap:Body>{text}</soap:Body></soap:Envelope>"
    ).encode()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    code: str | None  # detail/GatewayError/code of a Fault; None for a normal answer

    @property
    def fault(self) -> bool:
        return self.code is not None


def post(url: str, data: bytes, timeout: float = 60) -> Answer:
    """POST ``data`` to ``url`` (the ``/soap`` endpoint); the answer must be SOAP, Fault or not — never HTML."""
    resp = requests.post(url, data=data, headers={"Content-Type": XML}, timeout=timeout)
    assert resp.headers.get("Content-Type") == XML, (resp.status_code, resp.text[:300])
    root = etree.fromstring(resp.content)
    assert root.tag == f"{{{SOAP11}}}Envelope", resp.text[:300]
    code = root.findtext(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/detail/{{{TNS}}}GatewayError/{{{TNS}}}code")
    assert (resp.status_code == 200) == (code is None), (resp.status_code, resp.text[:300])
    return Answer(resp.status_code, resp.content, code)


def fault_message(answer: Answer) -> str:
    return etree.fromstring(answer.body).findtext(f".//{{{TNS}}}GatewayError/{{{TNS}}}message") or ""
