"""The VNPT SDK wire capture (../shared/vectors/vnpt-sdk/requests.json) as test data, shared by the VDXP tests.

The capture describes the sendEdoc body in words ("bytes of shared/samples/<file> followed by CRLF"): this module
turns that into the bytes, and checks the result against the captured Content-Length.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from _samples import REPO, SAMPLES

VECTORS = REPO.parent / "shared" / "vectors" / "vnpt-sdk" / "requests.json"
_BODY_FROM_SAMPLE = re.compile(r"^bytes of shared/samples/(?P<name>\S+) followed by CRLF")


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


@cache
def capture() -> dict[str, Any]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))


def requests() -> list[CapturedRequest]:
    out = []
    for r in capture()["requests"]:
        match = _BODY_FROM_SAMPLE.match(r["body"])
        body = (SAMPLES / match["name"]).read_bytes() + b"\r\n" if match else r["body"].encode("utf-8")
        assert len(body) == int(r["headers"].get("Content-Length", len(body))), r["operation"]
        out.append(CapturedRequest(r["operation"], r["path"], dict(r["headers"]), body))
    return out


def request(operation: str) -> CapturedRequest:
    return next(r for r in requests() if r.operation == operation)


def sent_file() -> bytes:
    """The file the captured sendEdoc carried (without the SDK's CRLF)."""
    return request("sendEdoc").body[:-2]


SYSTEM_ID: str = capture()["systemid"]
SECRET: str = capture()["secret"]
