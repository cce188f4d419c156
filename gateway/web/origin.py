"""Where a request came from (:class:`~gateway.services.api.ClientOrigin`), from what a client cannot forge.

The TCP peer (``REMOTE_ADDR``) is the client — unless it is one of ``Settings.trusted_proxies`` (none by
default), the TLS-terminating proxy of deploy/nginx-edoc-gateway.conf. Only then are the proxy's headers read:

* ``X-Forwarded-For``: its LAST entry, the address the proxy itself saw (nginx sets it to ``$remote_addr``,
  replacing whatever the client sent; a proxy that appends leaves the client's claims to the left). A trusted
  proxy that sends none, or garbage, gives an unknown address — which no allow-list contains;
* ``X-SSL-Client-Verify: SUCCESS`` with ``X-SSL-Client-Cert`` (nginx ``$ssl_client_escaped_cert``, the
  URL-encoded PEM): the SHA-256 of the certificate's DER is the fingerprint a system may be bound to.

From any other peer these headers are ignored, whatever they say (issue 10 finding 6's rule, applied here for
finding 7's per-system bindings).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import unquote

from gateway.errors import ConfigError
from gateway.services.api import ClientOrigin
from gateway.services.vdxp_guard import IpNetwork, parse_address
from gateway.web.wsgibridge import ENV_PEER_ADDR

#: The PEM body of exactly one certificate (what nginx forwards), captured for base64 decoding.
_PEM: Final = re.compile(r"^-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----\s*$")
#: A forwarded certificate above this size is not one (a certificate chain is not forwarded either).
_MAX_CERT_HEADER: Final = 16 * 1024


def trusted_networks(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    """``Settings.trusted_proxies`` as networks (a bare address is its /32 or /128); ConfigError when invalid."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"trusted_proxies: {value!r} is not an address or a CIDR network") from None
    return tuple(networks)


def client_origin(environ: Mapping[str, Any], trusted: tuple[IpNetwork, ...]) -> ClientOrigin:
    """The origin of the request in ``environ`` (PEP 3333), believing proxy headers only from ``trusted``."""
    # The ASGI front (gateway.web.front) has already put a trusted proxy's forwarded address in REMOTE_ADDR and
    # kept the socket's peer here: the proxy's other headers (the client certificate) are believed from that peer.
    peer = str(environ.get(ENV_PEER_ADDR) or environ.get("REMOTE_ADDR") or "")
    peer_ip = parse_address(peer)
    if peer_ip is None or not any(peer_ip in network for network in trusted):
        return ClientOrigin(address=str(peer_ip) if peer_ip is not None else None)
    forwarded = str(environ.get("HTTP_X_FORWARDED_FOR") or "").rsplit(",", 1)[-1]
    client_ip = parse_address(forwarded)
    fingerprint = None
    if str(environ.get("HTTP_X_SSL_CLIENT_VERIFY") or "").strip() == "SUCCESS":
        fingerprint = _certificate_fingerprint(str(environ.get("HTTP_X_SSL_CLIENT_CERT") or ""))
    return ClientOrigin(address=str(client_ip) if client_ip is not None else None, cert_fingerprint=fingerprint)


def _certificate_fingerprint(escaped: str) -> str | None:
    """SHA-256 (hex) of the DER of the URL-encoded PEM certificate a proxy forwarded, or None if it is not one.

    The DER is decoded from the PEM's base64 and hashed as it is, never parsed: the proxy verified the
    certificate, and the fingerprint compares the exact bytes (a certificate parser is an attack surface)."""
    if not escaped or len(escaped) > _MAX_CERT_HEADER:
        return None
    match = _PEM.match(unquote(escaped).strip())
    if match is None:
        return None
    try:
        der = base64.b64decode("".join(match[1].split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(der).hexdigest() if der else None


__all__ = ["client_origin", "trusted_networks"]
