"""Agencies and systems administration (gateway.md "Registry, routing, access"): the CLI's use cases.

``edoc-gateway agencies import FILE.csv|FILE.json`` → :meth:`Registry.import_file`
``edoc-gateway agencies add ORGID --name …`` → :meth:`Registry.add_agency` (a one-row import)
``edoc-gateway agencies update ORGID --contact-email …`` → :meth:`Registry.set_agency_policy`
``edoc-gateway agencies list`` → :meth:`Registry.list_agencies`
``edoc-gateway agencies export [--json]`` → :meth:`Registry.export`
``edoc-gateway systems add ID --agency ORGID…`` → :meth:`Registry.add_system` (returns the secret, shown once)
``edoc-gateway systems update ID --vdxp-replay … --allow-from … --client-cert …`` → :meth:`Registry.set_system_vdxp`
``edoc-gateway systems list`` → :meth:`Registry.list_systems` (never shows secrets)

A system's VDXP replay protection (issue 10 finding 7, :mod:`gateway.services.vdxp_guard`) is set when it is
added and changed with ``systems update``: ``strict`` by default; ``legacy-sdk`` (the stock VNPT SDK) only with a
source binding — allowed networks and/or a TLS client certificate — which both modes also enforce when given.

Import format (:mod:`gateway.services.registry_rows`): CSV with a header row, or JSON (a list of objects), with
the keys of ``COLUMNS``; only ``organ_id`` and ``name`` are required. ``cert_fingerprints`` are SHA-256
fingerprints (hex, ``:`` allowed) separated by ``;`` in CSV (a list or a ``;`` string in JSON). Upsert: new
agencies are created with defaults for what the row leaves out; for existing agencies only the columns the row
fills in change (an empty CSV cell means "not given"). The level is derived from the OrganId (edxml.md §6.1);
the parent defaults to the OrganId's parent when that agency exists (in the database or the same file); a
given parent must exist there too and be exactly one level up (``registry_rows.parent_problem``). An invalid
row rejects the whole file — one transaction, nothing imported — with every problem listed by row
number (the first data row is row 1).
"""

from __future__ import annotations

import csv
import io
import json
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.db import AgencyRecord, Store, SystemRecord, create_engine
from gateway.db.tables import CHANNELS, SIGNATURE_POLICIES
from gateway.edxml.organ import OrganId
from gateway.errors import GatewayError, NotFoundError, RequestError
from gateway.services.auth import SecretBox, generate_secret, hash_secret
from gateway.services.registry_rows import (
    COLUMNS,
    SYSTEM_ID,
    export_row,
    parent_problem,
    parse_contact_email,
    parse_fingerprint,
    parse_rows,
)
from gateway.services.vdxp_guard import (
    ReplayMode,
    check_binding,
    parse_allow_from,
    parse_client_certs,
    replay_mode,
)

#: Largest import file read (a national registry has a few tens of thousands of agencies).
MAX_IMPORT_BYTES = 20 * 1024 * 1024
#: Bounds of an operator-given system secret (VDXP secrets seen in the wild are 24–44 base64 characters).
MIN_SECRET_LENGTH, MAX_SECRET_LENGTH = 16, 200
_PUSH_NEEDS_ENDPOINT = ("soap", "rest")


class RegistryImportError(GatewayError):
    """An import file with invalid rows; ``detail["problems"]`` lists ``{row, field, message}``."""

    code = "REGISTRY.INVALID"
    message_vi = "Tệp danh mục đơn vị không hợp lệ"


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int

    @property
    def total(self) -> int:
        return self.created + self.updated


@dataclass(frozen=True)
class SystemInfo:
    """A system as ``systems list`` shows it: never its secret."""

    id: str
    name: str
    active: bool
    created_at: datetime
    agencies: tuple[str, ...]
    vdxp_replay: str = "strict"
    vdxp_allow_from: tuple[str, ...] = ()
    vdxp_client_certs: tuple[str, ...] = ()


class Registry:
    """Registry administration over a :class:`~gateway.db.Store`."""

    def __init__(self, store: Store, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock or (lambda: datetime.now(UTC))
        self._owns_engine = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """For the CLI: its own engine on the configured database (no keys or trust store needed).

        Call :meth:`close` (or use ``with``) to release its connections.
        """
        registry = cls(Store(create_engine(settings)), settings)
        registry._owns_engine = True
        # Forgetting close() must not leak connections (psycopg warns when one is garbage-collected open).
        weakref.finalize(registry, registry._store.engine.dispose)
        return registry

    def close(self) -> None:
        """Release the connection pool if this registry created it (a shared store is left alone)."""
        if self._owns_engine:
            self._store.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------- agencies

    def import_file(self, path: str | Path) -> ImportReport:
        """Import ``.csv`` or ``.json`` (by extension)."""
        p = Path(path)
        if p.stat().st_size > MAX_IMPORT_BYTES:
            raise RequestError(f"{p} is larger than {MAX_IMPORT_BYTES} bytes")
        suffix = p.suffix.lower()
        if suffix == ".csv":
            return self.import_csv(p.read_text(encoding="utf-8-sig"))
        if suffix == ".json":
            return self.import_json(p.read_text(encoding="utf-8"))
        raise RequestError(f"{p}: unknown import format (use .csv or .json)")

    def import_csv(self, text: str) -> ImportReport:
        reader = csv.DictReader(io.StringIO(text))
        rows: list[dict[str, Any]] = []
        for row in reader:
            if None in row:  # more cells than header columns
                raise RegistryImportError(
                    f"row {len(rows) + 1} has more cells than the header", problems=[{"row": len(rows) + 1}]
                )
            rows.append({k.strip(): v for k, v in row.items() if k is not None})
        return self.import_records(rows)

    def import_json(self, text: str) -> ImportReport:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RegistryImportError(f"not valid JSON: {exc}") from None
        if not isinstance(doc, list) or not all(isinstance(x, dict) for x in doc):
            raise RegistryImportError("a JSON import is a list of objects")
        return self.import_records(doc)

    def import_records(self, rows: Sequence[Mapping[str, Any]]) -> ImportReport:
        """Validate every row, then upsert all of them in one transaction (or none)."""
        problems: list[dict[str, Any]] = []
        parsed = parse_rows(rows, problems)
        records, certs_for = self._records(parsed, problems)
        if problems:
            problems.sort(key=lambda p: p.get("row", 0))
            rows_text = ", ".join(sorted({str(p["row"]) for p in problems if "row" in p}, key=int))
            first = problems[0]
            raise RegistryImportError(
                f"{len(problems)} problem(s) in row(s) {rows_text} (first: row {first['row']}, {first['field']}: "
                f"{first['message']}); nothing was imported",
                problems=problems,
            )
        if not records:
            return ImportReport(0, 0)
        created, updated = self._store.registry.upsert_agencies(records, now=self._clock(), certs_for=certs_for)
        return ImportReport(created, updated)

    def _records(
        self, parsed: Sequence[tuple[int, dict[str, Any]]], problems: list[dict[str, Any]]
    ) -> tuple[list[AgencyRecord], list[str]]:
        """The records to upsert; problems of the registry as a whole (parents, endpoints) are recorded.

        A parent must be registered — in the database or in the same file — and exactly one level above the
        agency by OrganId level (edxml.md §6.1): ``000.01.01.H53`` (level 3) sits under a level-2 unit, never
        directly under the level-1 body. Identifiers outside the four-group form have no level, so only their
        parent's existence is checked.
        """
        organs = [values["organ_id"] for _number, values in parsed]
        existing = self._store.registry.agencies(organs)
        known = set(organs) | {a.organ_id for a in self._store.registry.list_agencies()} if parsed else set()
        records: list[AgencyRecord] = []
        certs_for: list[str] = []
        for number, values in parsed:
            organ = values["organ_id"]
            base = existing.get(organ) or AgencyRecord(organ_id=organ, name=values["name"])
            if "parent" in values:
                problem = parent_problem(organ, values["parent"], known)
                if problem:
                    problems.append({"row": number, "field": "parent", "message": problem})
            elif base.parent is None or organ not in existing:
                derived = OrganId(organ).parent
                if derived is not None and str(derived) in known:
                    values["parent"] = str(derived)
            fingerprints = values.pop("cert_fingerprints", None)
            if fingerprints is not None:
                certs_for.append(organ)
                values["cert_fingerprints"] = fingerprints
            rec = replace(base, **values, level=OrganId(organ).level)
            if rec.channel in _PUSH_NEEDS_ENDPOINT and not rec.endpoint:
                problems.append(
                    {"row": number, "field": "endpoint", "message": f"channel {rec.channel} needs an endpoint"}
                )
            records.append(rec)
        return records, certs_for

    def add_agency(
        self,
        organ_id: str,
        *,
        name: str,
        parent: str | None = None,
        channel: str | None = None,
        endpoint: str | None = None,
        signature_policy: str | None = None,
        contact_email: str | None = None,
    ) -> AgencyRecord:
        """``agencies add``: one new agency, validated exactly as an import row is (it IS a one-row import).

        Refuses an agency that is already registered: ``add`` with a mistyped OrganId must not silently change
        another agency (``agencies import`` updates on purpose).
        """
        if OrganId.is_valid(organ_id) and self._store.registry.agencies([organ_id]):
            raise RegistryImportError(
                f"agency {organ_id} is already registered (change it with `agencies import`); nothing was added",
                organ_id=organ_id,
            )
        given = {
            "organ_id": organ_id,
            "name": name,
            "parent": parent,
            "channel": channel,
            "endpoint": endpoint,
            "signature_policy": signature_policy,
            "contact_email": contact_email,
        }
        try:
            self.import_records([{k: v for k, v in given.items() if v is not None}])
        except RegistryImportError as exc:
            found = exc.detail.get("problems") or []
            text = "; ".join(f"{p['field']}: {p['message']}" for p in found if "field" in p) or exc.message
            raise RegistryImportError(f"{organ_id}: {text}; nothing was added", invalid=found) from None
        return self.agency(organ_id)

    def export(self, fmt: str = "csv") -> str:
        """Every agency as CSV (import columns) or JSON; re-importing the output changes nothing."""
        agencies = self._store.registry.list_agencies()
        if fmt == "json":
            return json.dumps([export_row(a, as_json=True) for a in agencies], ensure_ascii=False, indent=2) + "\n"
        if fmt != "csv":
            raise RequestError(f"unknown export format {fmt!r} (csv or json)")
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for a in agencies:
            writer.writerow(export_row(a, as_json=False))
        return out.getvalue()

    def list_agencies(self, parent: str | None = None) -> list[AgencyRecord]:
        return self._store.registry.list_agencies(parent)

    def agency(self, organ_id: str) -> AgencyRecord:
        found = self._store.registry.agencies([organ_id]).get(organ_id)
        if found is None:
            raise NotFoundError(f"agency {organ_id} is not registered", organ_id=organ_id)
        return found

    def set_agency_policy(
        self,
        organ_id: str,
        *,
        signature_policy: str | None = None,
        allow_sha1: bool | None = None,
        emit_arrived_on_ack: bool | None = None,
        cert_fingerprints: Sequence[str] | None = None,
        active: bool | None = None,
        channel: str | None = None,
        endpoint: str | None = None,
        contact_email: str | None = None,
    ) -> AgencyRecord:
        """Change an agency's policy settings; ``cert_fingerprints`` replaces the bound set; an empty
        ``contact_email`` clears it."""
        changes: dict[str, Any] = {}
        if contact_email is not None:
            changes["contact_email"], problem = parse_contact_email(contact_email)
            if problem:
                raise RequestError(problem)
        if signature_policy is not None:
            if signature_policy not in SIGNATURE_POLICIES:
                raise RequestError(f"signature_policy must be one of {', '.join(SIGNATURE_POLICIES)}")
            changes["signature_policy"] = signature_policy
        if channel is not None:
            if channel not in CHANNELS:
                raise RequestError(f"channel must be one of {', '.join(CHANNELS)}")
            changes["channel"] = channel
        for name, value in (
            ("allow_sha1", allow_sha1),
            ("emit_arrived_on_ack", emit_arrived_on_ack),
            ("active", active),
            ("endpoint", endpoint),
        ):
            if value is not None:
                changes[name] = value
        fps = None
        if cert_fingerprints is not None:
            fps = [parse_fingerprint(f) for f in cert_fingerprints]
            bad = [f for f, n in zip(cert_fingerprints, fps, strict=True) if n is None]
            if bad:
                raise RequestError(f"not SHA-256 fingerprints: {', '.join(bad)}")
        if not self._store.registry.update_agency(
            organ_id,
            now=self._clock(),
            cert_fingerprints=[f for f in fps or () if f] if fps is not None else None,
            **changes,
        ):
            raise NotFoundError(f"agency {organ_id} is not registered", organ_id=organ_id)
        return self.agency(organ_id)

    # ------------------------------------------------------------------------------------- systems

    def add_system(
        self,
        system_id: str,
        agencies: Iterable[str],
        *,
        name: str | None = None,
        secret: str | None = None,
        vdxp_replay: str = ReplayMode.STRICT,
        allow_from: Iterable[str] = (),
        client_certs: Iterable[str] = (),
    ) -> str:
        """Register a system acting for ``agencies`` (and their children); returns the secret — shown ONCE.

        ``secret`` keeps a secret the system already has instead of generating one: operators migrating from
        VDXP keep their systemId + secret (edxml.md §6.2), because the VNPT SDK clients of their agencies are
        configured with that pair and should connect by changing only the endpoint URL (gateway.md) — with
        ``vdxp_replay="legacy-sdk"`` and the networks they call from (``allow_from``) or their TLS client
        certificates (``client_certs``), since the SDK signs a fixed timestamp.
        """
        organs = list(dict.fromkeys(agencies))
        if not SYSTEM_ID.match(system_id):
            raise RequestError(f"{system_id!r} is not a valid system id (letters, digits, . _ : -; ≤ 64)")
        if not organs:
            raise RequestError("a system must act for at least one agency (--agency)")
        mode, networks, certs = replay_mode(vdxp_replay), parse_allow_from(allow_from), parse_client_certs(client_certs)
        check_binding(mode, networks, certs)
        secret = generate_secret() if secret is None else _given_secret(secret)
        box = SecretBox(self._settings.secret_key)
        self._store.registry.add_system(
            SystemRecord(
                id=system_id,
                name=name or system_id,
                secret_enc=box.seal(system_id, secret),
                secret_hash=hash_secret(secret),
                active=True,
                created_at=self._clock(),
                agencies=tuple(organs),
                vdxp_replay=mode.value,
                vdxp_allow_from=networks,
                vdxp_client_certs=certs,
            )
        )
        return secret

    def set_system_vdxp(
        self,
        system_id: str,
        *,
        vdxp_replay: str | None = None,
        allow_from: Iterable[str] | None = None,
        client_certs: Iterable[str] | None = None,
    ) -> SystemInfo:
        """``systems update``: change a system's VDXP replay protection; what is not given is kept, a given list
        REPLACES the stored one (an empty list clears it). The result must still bind a ``legacy-sdk`` system
        (:func:`~gateway.services.vdxp_guard.check_binding`): clearing the last binding of one is refused."""
        current = self._store.registry.system(system_id)
        if current is None:
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        mode = replay_mode(vdxp_replay if vdxp_replay is not None else current.vdxp_replay)
        networks = parse_allow_from(allow_from) if allow_from is not None else current.vdxp_allow_from
        certs = parse_client_certs(client_certs) if client_certs is not None else current.vdxp_client_certs
        check_binding(mode, networks, certs)
        if not self._store.registry.set_system_vdxp(
            system_id, replay=mode.value, allow_from=networks, client_certs=certs
        ):
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        return self.system_info(system_id)

    def system_info(self, system_id: str) -> SystemInfo:
        found = self._store.registry.system(system_id)
        if found is None:
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        return _info(found)

    def rotate_secret(self, system_id: str, *, secret: str | None = None) -> str:
        """A new secret for an existing system (the old one stops working at once); shown once.

        ``secret`` sets a given secret (e.g. the system's VDXP secret when it migrates) instead of a random one.
        """
        secret = generate_secret() if secret is None else _given_secret(secret)
        box = SecretBox(self._settings.secret_key)
        if not self._store.registry.set_system_secret(system_id, box.seal(system_id, secret), hash_secret(secret)):
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)
        return secret

    def set_system_active(self, system_id: str, active: bool) -> None:
        if not self._store.registry.set_system_active(system_id, active):
            raise NotFoundError(f"system {system_id} does not exist", system_id=system_id)

    def list_systems(self) -> list[SystemInfo]:
        return [_info(s) for s in self._store.registry.list_systems()]


def _info(s: SystemRecord) -> SystemInfo:
    return SystemInfo(
        id=s.id,
        name=s.name,
        active=s.active,
        created_at=s.created_at,
        agencies=s.agencies,
        vdxp_replay=s.vdxp_replay,
        vdxp_allow_from=s.vdxp_allow_from,
        vdxp_client_certs=s.vdxp_client_certs,
    )


def _given_secret(secret: str) -> str:
    """An operator-given secret: long enough to be a key, printable (it travels in configuration files)."""
    bounded = MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH
    if not bounded or not secret.isprintable() or secret != secret.strip():
        raise RequestError(
            f"a given secret must be {MIN_SECRET_LENGTH}–{MAX_SECRET_LENGTH} printable characters without "
            "surrounding spaces"
        )
    return secret
