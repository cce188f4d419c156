"""A SOAP client for the gateway, built on zeep and the committed WSDL (``wsdl/edoc-gateway.wsdl``).

Used by ``edoc-gateway demo``, the benchmarks and the end-to-end tests, and a reference for integrators:
authentication is WS-Security UsernameToken with PasswordDigest (nonce + created), which zeep ships.
The WSDL is loaded from the file, never fetched live; only the service address comes from ``url``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zeep
from zeep.wsse.username import UsernameToken

from gateway.resources import resource_path

#: The committed ``wsdl/edoc-gateway.wsdl``, shipped inside the package (:mod:`gateway.resources`).
WSDL_PATH = resource_path("wsdl", "edoc-gateway.wsdl")
SOAP_NS = "urn:edoc-gateway:soap:1"


class GatewayClient:
    """One authenticated system talking to one gateway. Faults surface as :class:`zeep.exceptions.Fault`."""

    def __init__(self, url: str, system_id: str, secret: str, *, timeout: float = 120, wsdl: Path = WSDL_PATH) -> None:
        settings = zeep.Settings(
            strict=True, xml_huge_tree=True, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        transport = zeep.Transport(timeout=timeout, operation_timeout=timeout)
        self._client = zeep.Client(
            str(wsdl), wsse=UsernameToken(system_id, secret, use_digest=True), transport=transport, settings=settings
        )
        self.service: Any = self._client.create_service(f"{{{SOAP_NS}}}EdocGateway", url)

    def send_edoc(self, package: bytes) -> Any:
        return self.service.SendEdoc(edxmlPackage=package)

    def send_status(self, package: bytes) -> Any:
        return self.service.SendStatus(edxmlPackage=package)

    def pending(self, organ_id: str, kind: str = "edoc", limit: int = 100) -> list[Any]:
        return list(self.service.GetPendingList(organId=organ_id, kind=kind, limit=limit) or [])

    def get_edoc(self, delivery_id: str) -> bytes:
        return self.service.GetEdoc(deliveryId=delivery_id)

    def acknowledge(self, delivery_id: str, status: str = "done", reason: str | None = None) -> bool:
        return self.service.Acknowledge(deliveryId=delivery_id, status=status, reason=reason)

    def status_history(self, *, document_id: str | None = None, doc_id: str | None = None) -> Any:
        return self.service.GetStatusHistory(documentId=document_id, docId=doc_id)

    def agencies(self, parent: str | None = None) -> list[Any]:
        return list(self.service.GetAgencies(parent=parent) or [])

    def close(self) -> None:
        self._client.transport.session.close()
