"""Agencies and systems administration (gateway.md "Registry, routing, access"): the CLI's use cases.

``edoc-gateway agencies import FILE.csv|FILE.json`` → :meth:`Registry.import_file`
``edoc-gateway agencies add ORGID --name …`` → :meth:`Registry.add_agency` (a one-row import)
``edoc-gateway agencies update ORGID --contact-email …`` → :meth:`Registry.set_agency_policy`
``edoc-gateway agencies list`` → :meth:`Registry.list_agencies`
``edoc-gateway agencies export [--json]`` → :meth:`Registry.export`
``edoc-gateway systems add ID --agency ORGID…`` → :meth:`Registry.add_system` (returns the secret, shown once)
``edoc-gateway systems update ID --vdxp-replay … --allow-from … --client-cert …`` → :meth:`Registry.set_system_vdxp`
``edoc-gateway systems list`` → :meth:`Registry.list_systems` (never shows secrets)
``edoc-gateway systems add ID --legacy-organ ORGID [--legacy-scope …]`` → a legacy system (issue 13; token shown once)
``edoc-gateway systems update ID --legacy-scope …`` → :meth:`Registry.set_system_legacy_scope`
``edoc-gateway systems rotate-secret|disable|enable ID`` → :meth:`Registry.rotate_secret`, ``set_system_active``

The systems' use cases (secrets, VDXP replay protection) are in :mod:`gateway.services.registry_systems`.

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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.db import AgencyRecord, Store, create_engine
from gateway.db.tables import CHANNELS, SIGNATURE_POLICIES
from gateway.edxml.organ import OrganId
from gateway.errors import GatewayError, NotFoundError, RequestError
from gateway.services.paging import Page, PageRequest, page_of
from gateway.services.registry_rows import (
    COLUMNS,
    endpoint_ok,
    export_row,
    parent_problem,
    parse_contact_email,
    parse_fingerprint,
    parse_rows,
)
from gateway.services.registry_systems import SystemsAdmin

#: Largest import file read (a national registry has a few tens of thousands of agencies).
MAX_IMPORT_BYTES = 20 * 1024 * 1024
_PUSH_NEEDS_ENDPOINT = ("soap", "rest")


#: Import columns an edit (:meth:`Registry.save_agency`) clears when left empty → the AgencyRecord field.
CLEARABLE = {
    "endpoint": "endpoint",
    "contact_email": "contact_email",
    "system": "system_id",
    "cert_fingerprints": "cert_fingerprints",
}

#: The names the cursors of the registry lists carry (gateway.services.paging).
AGENCY_LISTING = "agencies"


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


class Registry(SystemsAdmin):
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

    def import_records(self, rows: Sequence[Mapping[str, Any]], *, clear: Collection[str] = ()) -> ImportReport:
        """Validate every row, then upsert all of them in one transaction (or none).

        ``clear`` (columns of :data:`CLEARABLE`, for :meth:`save_agency` only): on an existing agency, these
        optional columns are emptied when the row leaves them out, instead of being kept.
        """
        problems: list[dict[str, Any]] = []
        parsed = parse_rows(rows, problems)
        records, certs_for = self._records(parsed, problems, clear)
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
        self, parsed: Sequence[tuple[int, dict[str, Any]]], problems: list[dict[str, Any]], clear: Collection[str] = ()
    ) -> tuple[list[AgencyRecord], list[str]]:
        """The records to upsert; problems of the registry as a whole (parents, endpoints) are recorded.

        A parent must be registered — in the database or in the same file — and exactly one level above the
        agency by OrganId level (edxml.md §6.1): ``000.01.01.H53`` (level 3) sits under a level-2 unit, never
        directly under the level-1 body. Identifiers outside the four-group form have no level, so only their
        parent's existence is checked — and, for every identifier, that the parent is not one of the agency's own
        units (a loop would hide both from every tree, scope and roll-up).
        """
        organs = [values["organ_id"] for _number, values in parsed]
        existing = self._store.registry.agencies(organs)
        parents = {a.organ_id: a.parent for a in self._store.registry.list_agencies()} if parsed else {}
        parents.update({v["organ_id"]: v["parent"] for _n, v in parsed if "parent" in v})
        known = set(organs) | set(parents)
        records: list[AgencyRecord] = []
        certs_for: list[str] = []
        for number, values in parsed:
            organ = values["organ_id"]
            base = existing.get(organ) or AgencyRecord(organ_id=organ, name=values["name"])
            if organ in existing and clear:
                base = replace(base, **{CLEARABLE[c]: () if c == "cert_fingerprints" else None for c in clear})
                if "cert_fingerprints" in clear:
                    certs_for.append(organ)
            if "parent" in values:
                problem = parent_problem(organ, values["parent"], known) or _loop(organ, parents)
                if problem:
                    problems.append({"row": number, "field": "parent", "message": problem})
            elif base.parent is None or organ not in existing:
                derived = OrganId(organ).parent
                if derived is not None and str(derived) in known:
                    values["parent"] = str(derived)
            fingerprints = values.pop("cert_fingerprints", None)
            if fingerprints is not None and organ not in certs_for:
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

    def save_agency(self, row: Mapping[str, Any], *, new: bool) -> tuple[AgencyRecord, AgencyRecord | None]:
        """The console's add and edit form (issue 12): ONE row of the import format, validated by the very code an
        import runs (:func:`parse_row`, :func:`parent_problem`, the push channel's endpoint), so the console and
        ``agencies import`` accept and refuse the same things; written in one transaction, or not at all.

        ``new``: the agency must not be registered yet (as ``agencies add``: a mistyped OrganId must not change
        another agency); otherwise it must be (an edit never creates). The edit form shows every field, so there
        an empty cell CLEARS the optional columns of :data:`CLEARABLE` where an import would keep them.
        Returns (the agency as saved, as it was before: None when new).
        """
        organ = str(row.get("organ_id") or "").strip()
        before = self._store.registry.agencies([organ]).get(organ) if OrganId.is_valid(organ) else None
        if new and before is not None:
            message = f"agency {organ} is already registered; nothing was added"
            raise RegistryImportError(message, problems=[{"row": 1, "field": "organ_id", "message": message}])
        if not new and before is None:
            raise NotFoundError(f"agency {organ} is not registered", organ_id=organ)
        given = {k: v for k, v in row.items() if v is not None and str(v).strip()}
        self.import_records([given], clear=() if new else [c for c in CLEARABLE if c not in given])
        return self.agency(organ), before

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

    def agencies_page(self, parent: str | None = None, page: PageRequest | None = None) -> Page[AgencyRecord]:
        """One page of the agencies (or of ``parent``'s direct children), by OrganId (``agencies list``)."""
        page = page or PageRequest()
        found = self._store.registry.agencies_page(
            parent, after=page.after(AGENCY_LISTING, 1), offset=page.offset, limit=page.limit
        )
        return page_of(AGENCY_LISTING, found, lambda a: a)

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
        if endpoint and not endpoint_ok(endpoint):
            raise RequestError(f"{endpoint!r} is not an http:// or https:// URL with a host")
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


def _loop(organ: str, parents: Mapping[str, str | None]) -> str | None:
    """Why ``parents[organ]`` cannot be ``organ``'s parent because it is one of its own units (None if it is not)."""
    seen = {organ}
    node = parents.get(organ)
    while node is not None and node not in seen:
        seen.add(node)
        node = parents.get(node)
    if node == organ:
        return f"parent {parents[organ]} is one of the units under {organ}: an agency cannot sit below itself"
    return None
