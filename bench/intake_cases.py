"""The five intakes whose statements issue 14 counts, on a real gateway service and database.

Shared by ``bench/bench_statements.py`` (prints them, and intakes/s) and ``tests/test_intake_statements.py``
(bounds them). Only public service APIs that exist since issue 7 are used, so the bench can run this module
against an older checkout of the gateway (its ``--compare`` mode) and count that code the same way.

The cast (the demo PKI's agencies): A (000.00.01.H53, signature policy ``require``) sends; B (000.00.00.G22) and
C (000.01.01.H53) fetch from their mailboxes; P1 and P2 are reached by push (``soap`` and ``rest``). Every package
is a signed ~10 KB edoc built from the demo document (:func:`gateway.demo.documents.demo_package`).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.db import create_engine
from gateway.demo.documents import demo_package, status_for
from gateway.demo.pki import DemoPki
from gateway.edxml import EdocPackage, Organization, StatusCode, add_files, render
from gateway.errors import GatewayError
from gateway.services.gateway import GatewayService
from gateway.xmlcheck.signing import SigningKey, sign_package
from gateway.xmlcheck.trust import TrustStore

A, B, C, H = "000.00.01.H53", "000.00.00.G22", "000.01.01.H53", "000.00.00.H53"
P1, P2 = "000.00.02.G22", "000.00.03.G22"
UNKNOWN = "000.00.09.G22"
SYSTEM = "sys-a"
#: The intakes counted, in the order they run (each on the state the previous ones left).
CASES = ("edoc, 1 recipient", "edoc, 5 recipients", "status 01", "duplicate retry", "refusal")


@dataclass
class Rig:
    """A gateway service on a fresh database with the cast registered, and A's and B's signing keys."""

    svc: GatewayService
    keys: dict[str, SigningKey]
    _numbers: Any = dataclasses.field(default_factory=lambda: iter(range(1, 10**9)))
    _base: EdocPackage | None = None

    @classmethod
    def create(
        cls, database_url: str, data_dir: Path, pki: DemoPki, clock: Callable[[], datetime] | None = None
    ) -> Rig:
        """``clock``: the service's (tests that let time pass); only passed when given, so that ``--compare``
        still runs older checkouts."""
        settings = Settings(data_dir=data_dir, database_url=database_url, secret_key=secrets.token_urlsafe(24))
        svc = GatewayService(
            create_engine(settings),
            SigningKey.from_files(pki.gateway_key, pki.gateway_cert, pki.chain),
            TrustStore.from_files(pki.trust, pki.crls),
            settings,
            **({"clock": clock} if clock is not None else {}),
        )
        svc.store.create_schema()
        svc.registry.import_records(
            [
                {"organ_id": H, "name": "UBND tỉnh Tây Ninh"},
                {"organ_id": A, "name": "Văn phòng UBND tỉnh Tây Ninh", "signature_policy": "require"},
                {"organ_id": B, "name": "Văn phòng Chính phủ", "signature_policy": "require"},
                {"organ_id": C, "name": "Ban Tiếp Công dân"},
                {"organ_id": P1, "name": "Bộ A (SOAP)", "channel": "soap", "endpoint": "https://p1.example/soap"},
                {"organ_id": P2, "name": "Bộ B (REST)", "channel": "rest", "endpoint": "https://p2.example/edoc"},
            ]
        )
        svc.registry.add_system(SYSTEM, [A])
        svc.registry.add_system("sys-b", [B])
        keys = {o: SigningKey.from_files(pki.agencies[o].key, pki.agencies[o].cert, pki.chain) for o in (A, B)}
        return cls(svc=svc, keys=keys)

    def close(self) -> None:
        self.svc.close()

    def edoc(self, recipients: tuple[str, ...] = (B,), size: int = 10_000) -> bytes:
        """A signed edoc of about ``size`` bytes from A, a new DocumentId each time."""
        if self._base is None:
            base = dataclasses.replace(demo_package(), references=(), attachments=())
            filler = max(0, int((size - len(sign_package(render(base), self.keys[A]))) * 3 / 4) - 300)
            self._base = add_files(base, [("scan.pdf", os.urandom(filler))])
        n = next(self._numbers)
        header = dataclasses.replace(
            self._base.message_header,
            to=tuple(Organization(organ_id=r, organ_name=f"Đơn vị {r}") for r in recipients),
            document_id=f"{A},2026/12/10,{n}/VP-HCTC",
        )
        return sign_package(render(dataclasses.replace(self._base, message_header=header)), self.keys[A])

    def status(self, about: bytes) -> bytes:
        """Status 01 from B about the edoc ``about``, signed by B."""
        from gateway.edxml import read_bytes

        doc = read_bytes(about)
        assert isinstance(doc, EdocPackage)
        return sign_package(render(status_for(doc, B, StatusCode.ARRIVED)), self.keys[B])

    def cases(self) -> list[tuple[str, str, Callable[[], object]]]:
        """``(case, system, intake)`` for :data:`CASES`, after one warm-up intake (the signer is then known, the
        statements compiled, the pool holds connections: the steady state of a running gateway)."""
        self.svc.submit(SYSTEM, self.edoc())
        first = self.edoc()
        five = self.edoc((B, C, H, P1, P2))
        refused = self.edoc((B, UNKNOWN))
        status = self.status(first)
        return [
            (CASES[0], SYSTEM, lambda: self.svc.submit(SYSTEM, first)),
            (CASES[1], SYSTEM, lambda: self.svc.submit(SYSTEM, five)),
            (CASES[2], "sys-b", lambda: self.svc.submit("sys-b", status)),
            (CASES[3], SYSTEM, lambda: self.svc.submit(SYSTEM, first)),
            (CASES[4], SYSTEM, lambda: _refused(lambda: self.svc.submit(SYSTEM, refused))),
        ]


def _refused(call: Callable[[], object]) -> str:
    try:
        call()
    except GatewayError as exc:
        return exc.code
    raise AssertionError("the refusal case was accepted")


__all__ = ["CASES", "Rig"]
