"""VNPT VDXP SDK requests as test data, from two sources that the VDXP tests run on alike:

* ``own`` (always): the requests the SDK makes, built with our protocol module (:mod:`gateway.protocols.vdxp`)
  by :class:`SdkSession`, which reproduces every quirk the capture shows — a header map never cleared (stale,
  signed entries of earlier calls), a timestamp fixed when the client is created, ``hash-file`` without each
  byte's leading zero, the file followed by CRLF, ``{}`` bodies with ``Expect: 100-continue``, a status package
  sent as ``messagetype=edoc`` — around the project's own corpus (a VPCP letter and Nghệ An's status 01);
* ``real`` (when the external corpus has it): the wire capture ``vectors/vnpt-sdk/requests.json`` of the real
  SDK. It describes the sendEdoc body in words ("bytes of shared/samples/<file> followed by CRLF"): this module
  turns that into the bytes and checks them against the captured Content-Length. Absent: skipped with
  :data:`CAPTURE_ABSENT`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from _samples import OWN, REAL, absent, own

from gateway.demo.corpus import external_dir
from gateway.edxml.dates import VN_TZ
from gateway.protocols import vdxp
from gateway.protocols.vdxp import Operation

_BODY_FROM_SAMPLE = re.compile(r"^bytes of shared/samples/(?P<name>\S+) followed by CRLF")
CAPTURE_ABSENT = absent("external VNPT SDK capture vectors/vnpt-sdk/requests.json", "real SDK wire replay not run")


@dataclass(frozen=True)
class CapturedRequest:
    operation: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def entries(self) -> list[tuple[str, str]]:
        """The signed entries in the order the SDK sent them (names without the XroadVnpt- prefix)."""
        pairs = json.loads(self.headers["XroadVnpt-sign-header"], object_pairs_hook=list)
        return [(name.removeprefix("XroadVnpt-"), value) for name, value in pairs]


@dataclass(frozen=True)
class SdkRequests:
    """One SDK client's calls, one per operation, in the order the SDK's own example makes them."""

    name: str
    system_id: str
    secret: str
    requests: tuple[CapturedRequest, ...]
    #: The document the status sent by ``sendEdoc`` is about (VPCP → Nghệ An and others).
    document: bytes
    #: ``docId`` of getEdoc/updateStatus: another axis's message id, not one of ours.
    foreign_doc_id: str

    def request(self, operation: str) -> CapturedRequest:
        return next(r for r in self.requests if r.operation == operation)

    def sent_file(self) -> bytes:
        """The file the sendEdoc carried (without the SDK's CRLF)."""
        return self.request("sendEdoc").body[:-2]


# ================================================================================================ own


class SdkSession:
    """The SDK's client object, rebuilt on our protocol module: what it signs and sends, quirks included."""

    FILE_PATH = "/tmp/vxp/store"

    def __init__(self, system_id: str, secret: str, created: datetime) -> None:
        self.secret = secret
        #: Never cleared: every later call sends (and signs) the entries of the earlier ones.
        self.entries: dict[str, str] = {vdxp.SYSTEMID: system_id}
        self.timestamp = vdxp.format_timestamp(created)  # fixed when the client is created

    def _call(self, op: Operation, params: dict[str, str], body: bytes) -> CapturedRequest:
        self.entries.update(params)
        self.entries.setdefault(vdxp.TIMESTAMP, self.timestamp)
        self.entries[vdxp.CONTENT_TYPE] = vdxp.CONTENT_TYPES[op]
        headers = vdxp.signed_headers(self.secret, list(self.entries.items()))
        headers["Content-Length"] = str(len(body))
        if body == b"{}":
            headers["Expect"] = "100-continue"
        return CapturedRequest(op.value, f"/{op.value}", headers, body)

    def get_agencies_list(self) -> CapturedRequest:
        return self._call(Operation.GET_AGENCIES_LIST, {}, b"")

    def send_edoc(self, data: bytes, sender: str, messagetype: str) -> CapturedRequest:
        params = {
            vdxp.SERVICETYPE: vdxp.SERVICE_TYPE_EDOC,
            vdxp.MESSAGETYPE: messagetype,
            vdxp.HASH_FILE: vdxp.file_hash(data),
            vdxp.FROM: sender,
        }
        return self._call(Operation.SEND_EDOC, params, data + vdxp.CRLF)

    def get_received_edoc_list(self, messagetype: str) -> CapturedRequest:
        params = {vdxp.SERVICETYPE: vdxp.SERVICE_TYPE_EDOC, vdxp.MESSAGETYPE: messagetype}
        return self._call(Operation.GET_RECEIVED_EDOC_LIST, params, b"")

    def get_edoc(self, doc_id: str) -> CapturedRequest:
        return self._call(Operation.GET_EDOC, {vdxp.DOC_ID: doc_id, "filePath": self.FILE_PATH}, b"{}")

    def update_status(self, doc_id: str, status: str) -> CapturedRequest:
        return self._call(Operation.UPDATE_STATUS, {vdxp.DOC_ID: doc_id, vdxp.STATUS: status}, b"{}")

    def get_sent_edoc_list(self, doc_id: str | None = None) -> CapturedRequest:
        return self._call(Operation.GET_SENT_EDOC_LIST, {vdxp.DOC_ID: doc_id} if doc_id else {}, b"")


#: Our stand-in for the capture's system: a VDXP-style id and a secret as an operator migrating from VDXP keeps.
OWN_SYSTEM_ID, OWN_SECRET = "00.41.W01", "b3duLXNkay1zZWNyZXQtZm9yLXRlc3Rz"
OWN_FOREIGN_DOC_ID = "3f1c2b7e-5d4a-4c1e-9b0a-6e2d8f7a1c35"


@cache
def own_sdk() -> SdkRequests:
    corpus = own()
    status = corpus.read("status_01")  # Nghệ An → VPCP, 01, about the VPCP letter
    session = SdkSession(OWN_SYSTEM_ID, OWN_SECRET, datetime(2025, 10, 1, 9, 41, 7, 52_000, tzinfo=VN_TZ))
    requests = (
        session.get_agencies_list(),
        session.send_edoc(status, "000.00.00.H41", "edoc"),  # a status, sent as the SDK's example sends it
        session.get_received_edoc_list("edoc"),
        session.get_edoc(OWN_FOREIGN_DOC_ID),
        session.update_status(OWN_FOREIGN_DOC_ID, "done"),
        session.get_sent_edoc_list(),
    )
    return SdkRequests(OWN, OWN_SYSTEM_ID, OWN_SECRET, requests, corpus.read("edoc_three_to"), OWN_FOREIGN_DOC_ID)


# ================================================================================================ real


def _capture_path() -> Path | None:
    root = external_dir()
    path = root / "vectors" / "vnpt-sdk" / "requests.json" if root is not None else None
    return path if path is not None and path.is_file() else None


def capture_present() -> bool:
    return _capture_path() is not None


@cache
def capture() -> dict[str, Any]:
    path = _capture_path()
    if path is None:
        pytest.skip(CAPTURE_ABSENT)
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def real_sdk() -> SdkRequests:
    """The real capture; skips the calling test with :data:`CAPTURE_ABSENT` when absent."""
    data = capture()
    samples = _capture_path().parents[2] / "samples"  # type: ignore[union-attr]
    out = []
    for r in data["requests"]:
        match = _BODY_FROM_SAMPLE.match(r["body"])
        body = (samples / match["name"]).read_bytes() + b"\r\n" if match else r["body"].encode("utf-8")
        assert len(body) == int(r["headers"].get("Content-Length", len(body))), r["operation"]
        out.append(CapturedRequest(r["operation"], r["path"], dict(r["headers"]), body))
    official = (samples / "truclienthong-example__dc0bdef0-c7a3-4aaf-b717-777303442973.edxml").read_bytes()
    foreign = next(r for r in out if r.operation == "getEdoc").headers["XroadVnpt-docId"]
    return SdkRequests(REAL, data["systemid"], data["secret"], tuple(out), official, foreign)


def sdk(name: str) -> SdkRequests:
    return own_sdk() if name == OWN else real_sdk()


def sdk_params() -> list:
    """The two request sources as parameters (ids ``own`` and ``real``), the real one skipped when absent."""
    marks = [] if capture_present() else [pytest.mark.skip(reason=CAPTURE_ABSENT)]
    return [pytest.param(OWN, id=OWN), pytest.param(REAL, id=REAL, marks=marks)]
