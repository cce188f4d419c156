"""The registry: agencies (``agencies``), the signer certificates bound to them (``agency_certificates``), and the
API client systems with the agencies they act for (``systems``, ``system_agencies``).

Intake reads the registry on its hot path through :meth:`gateway.db.documents.DocumentRepository.intake_lookup`
(one connection checkout for everything it needs); :func:`acting` and :func:`agencies_by_id` are the two reads it
shares with this repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.db import tables as t
from gateway.db.connections import Repository
from gateway.db.paging import RowPage, SortKey, keyset_page
from gateway.db.records import AgencyRecord, SystemRecord, field_names, from_row, to_values
from gateway.errors import RequestError

# Hot-path statements are built once, with bound parameters, so SQLAlchemy compiles each only once.
_Q_ACTING = (
    select(t.systems.c.legacy_organ_id, t.systems.c.legacy_scope, t.system_agencies.c.organ_id)
    .select_from(t.systems.outerjoin(t.system_agencies, t.system_agencies.c.system_id == t.systems.c.id))
    .where(t.systems.c.id == bindparam("system_id"), t.systems.c.active.is_(True))
)
_Q_AGENCIES = (
    select(t.agencies, t.agency_certificates.c.fingerprint)
    .select_from(t.agencies.outerjoin(t.agency_certificates))
    .where(t.agencies.c.organ_id.in_(bindparam("ids", expanding=True)))
    .order_by(t.agencies.c.organ_id, t.agency_certificates.c.fingerprint)
)
#: AgencyRecord fields that are not plain columns of ``agencies`` (the key, and the bound certificates).
#: The registry lists' orders (OrganIds and system ids are primary keys: a total order each).
_BY_ORGAN = (SortKey(t.agencies.c.organ_id, "organ_id"),)
_BY_SYSTEM = (SortKey(t.systems.c.id, "id"),)
_NOT_AGENCY_VALUES = ("organ_id", "cert_fingerprints")


class RegistryRepository(Repository):
    """``store.registry``."""

    # ---------------------------------------------------------------------------------- agencies

    def upsert_agencies(
        self, records: Sequence[AgencyRecord], *, now: datetime, certs_for: Iterable[str] = ()
    ) -> tuple[int, int]:
        """Insert or update agencies in one transaction; returns (created, updated).

        Bound certificate fingerprints are replaced for the OrganIds in ``certs_for`` only (an import file
        without a ``cert_fingerprints`` column must not erase bindings).
        """
        replace_certs = set(certs_for)
        created = updated = 0
        with self._db.write() as conn:
            ids = [r.organ_id for r in records]
            existing = set(conn.scalars(select(t.agencies.c.organ_id).where(t.agencies.c.organ_id.in_(ids))))
            for rec in records:
                values = to_values(rec, skip=_NOT_AGENCY_VALUES)
                if rec.organ_id in existing:
                    conn.execute(
                        update(t.agencies).where(t.agencies.c.organ_id == rec.organ_id).values(**values, updated_at=now)
                    )
                    updated += 1
                else:
                    conn.execute(
                        insert(t.agencies).values(organ_id=rec.organ_id, **values, created_at=now, updated_at=now)
                    )
                    existing.add(rec.organ_id)
                    created += 1
                if rec.organ_id in replace_certs:
                    _replace_certificates(conn, rec.organ_id, rec.cert_fingerprints, now)
        return created, updated

    def update_agency(
        self, organ_id: str, *, now: datetime, cert_fingerprints: Sequence[str] | None = None, **changes: Any
    ) -> bool:
        """Change some columns of one agency (and optionally its bound fingerprints); False if unknown."""
        unknown = set(changes) - (set(field_names(AgencyRecord)) - set(_NOT_AGENCY_VALUES))
        if unknown:
            raise ValueError(f"unknown agency fields: {sorted(unknown)}")
        with self._db.write() as conn:
            result = conn.execute(
                update(t.agencies).where(t.agencies.c.organ_id == organ_id).values(**changes, updated_at=now)
            )
            if result.rowcount == 0:
                return False
            if cert_fingerprints is not None:
                _replace_certificates(conn, organ_id, cert_fingerprints, now)
        return True

    def agencies(self, organ_ids: Iterable[str]) -> dict[str, AgencyRecord]:
        """The registered agencies among ``organ_ids`` (with their bound fingerprints)."""
        ids = sorted(set(organ_ids))
        if not ids:
            return {}
        with self._db.read() as conn:
            return agencies_by_id(conn, ids)

    def list_agencies(self, parent: str | None = None) -> list[AgencyRecord]:
        """Every agency (or the direct children of ``parent``), ordered by OrganId."""
        query = select(t.agencies).order_by(t.agencies.c.organ_id)
        if parent is not None:
            query = query.where(t.agencies.c.parent == parent)
        with self._db.read() as conn:
            rows = conn.execute(query).mappings().all()
            certs = _certificates(conn)
        return [_agency(r, certs.get(r["organ_id"], ())) for r in rows]

    def agencies_page(
        self, parent: str | None = None, *, after: Sequence[Any] | None, offset: int, limit: int
    ) -> RowPage[AgencyRecord]:
        """One page of :meth:`list_agencies` (by OrganId, :func:`gateway.db.paging.keyset_page`)."""
        query = select(t.agencies)
        if parent is not None:
            query = query.where(t.agencies.c.parent == parent)
        with self._db.read() as conn:
            found = keyset_page(conn, query, _BY_ORGAN, after=after, offset=offset, limit=limit)
            certs = _certificates(conn, [r["organ_id"] for r in found.rows])
        return found.converted(lambda r: _agency(r, certs.get(r["organ_id"], ())))

    # ---------------------------------------------------------------------------------- systems

    def add_system(self, record: SystemRecord) -> None:
        """Register a system with the agencies it acts for; RequestError if the id or an agency is wrong."""
        try:
            with self._db.write() as conn:
                if conn.execute(select(t.systems.c.id).where(t.systems.c.id == record.id)).first() is not None:
                    raise RequestError(f"system {record.id!r} already exists", system_id=record.id)
                if record.legacy_organ_id is not None:
                    _check_legacy_login_free(conn, record.legacy_organ_id)
                known = set(
                    conn.scalars(select(t.agencies.c.organ_id).where(t.agencies.c.organ_id.in_(record.agencies)))
                )
                missing = sorted(set(record.agencies) - known)
                if missing:
                    raise RequestError(f"unknown agencies: {', '.join(missing)}", agencies=missing)
                values = to_values(record, skip=("agencies",))
                values.update(
                    vdxp_allow_from=list(record.vdxp_allow_from), vdxp_client_certs=list(record.vdxp_client_certs)
                )
                conn.execute(insert(t.systems).values(**values))
                if record.agencies:
                    conn.execute(
                        insert(t.system_agencies),
                        [{"system_id": record.id, "organ_id": o} for o in dict.fromkeys(record.agencies)],
                    )
        except IntegrityError:  # a concurrent add of the same id (or of the same legacy login name)
            raise RequestError(
                f"system {record.id!r} (or one with its legacy OrganId) already exists", system_id=record.id
            ) from None

    def set_system_secret(self, system_id: str, secret_enc: bytes, secret_hash: str) -> bool:
        """Replace a system's secret (sealed, and hashed for HTTP Basic); False if the system is unknown."""
        with self._db.write() as conn:
            result = conn.execute(
                update(t.systems)
                .where(t.systems.c.id == system_id)
                .values(secret_enc=secret_enc, secret_hash=secret_hash)
            )
        return result.rowcount == 1

    def set_system_active(self, system_id: str, active: bool) -> bool:
        """Enable or disable a system; False if the system is unknown."""
        with self._db.write() as conn:
            result = conn.execute(update(t.systems).where(t.systems.c.id == system_id).values(active=active))
        return result.rowcount == 1

    def set_system_vdxp(
        self, system_id: str, *, replay: str, allow_from: Sequence[str], client_certs: Sequence[str]
    ) -> bool:
        """Replace a system's VDXP replay settings (validated by the caller); False if the system is unknown."""
        with self._db.write() as conn:
            result = conn.execute(
                update(t.systems)
                .where(t.systems.c.id == system_id)
                .values(vdxp_replay=replay, vdxp_allow_from=list(allow_from), vdxp_client_certs=list(client_certs))
            )
        return result.rowcount == 1

    def set_system_legacy_scope(self, system_id: str, scope: str) -> bool:
        """Change whom a LEGACY system may send as (validated by the caller); False if it is unknown or not a
        legacy system (the scope is meaningless without a legacy login name: CHECK ``legacy_pair``)."""
        s = t.systems.c
        with self._db.write() as conn:
            result = conn.execute(
                update(t.systems).where(s.id == system_id, s.legacy_organ_id.is_not(None)).values(legacy_scope=scope)
            )
        return result.rowcount == 1

    def system_by_legacy_organ(self, organ_id: str) -> SystemRecord | None:
        """The system whose legacy login name is ``organ_id`` (active or not; exact match), or None.

        Read on every legacy request, never cached: a rotation, a disable or a scope change applies at once."""
        with self._db.read() as conn:
            row = conn.execute(select(t.systems).where(t.systems.c.legacy_organ_id == organ_id)).mappings().first()
            if row is None:
                return None
            return _system(row, _agencies_of(conn, row["id"]))

    def system(self, system_id: str) -> SystemRecord | None:
        """One system with the agencies it acts for (active or not).

        Read on every authenticated request, never cached (a rotation or a disable applies at once): the two
        statements are built once (:data:`_SYSTEM_BY_ID`), which saves their construction and cache-key work."""
        with self._db.read() as conn:
            row = conn.execute(_SYSTEM_BY_ID, {"system_id": system_id}).mappings().first()
            if row is None:
                return None
            return _system(row, tuple(conn.scalars(_AGENCIES_OF_SYSTEM, {"system_id": system_id})))

    def vdxp_binding(self, system_id: str) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
        """``(vdxp_replay, vdxp_allow_from, vdxp_client_certs)`` of an ACTIVE system in one query, or None.

        Read on every VDXP request, never cached: a change made with ``systems update`` applies at once."""
        s = t.systems.c
        with self._db.read() as conn:
            row = conn.execute(
                select(s.vdxp_replay, s.vdxp_allow_from, s.vdxp_client_certs).where(
                    s.id == system_id, s.active.is_(True)
                )
            ).first()
        if row is None:
            return None
        return row[0], tuple(row[1] or ()), tuple(row[2] or ())

    def list_systems(self) -> list[SystemRecord]:
        """Every system, ordered by id."""
        with self._db.read() as conn:
            rows = conn.execute(select(t.systems).order_by(t.systems.c.id)).mappings().all()
            links: dict[str, list[str]] = {}
            for sid, organ in conn.execute(
                select(t.system_agencies.c.system_id, t.system_agencies.c.organ_id).order_by(
                    t.system_agencies.c.organ_id
                )
            ):
                links.setdefault(sid, []).append(organ)
        return [_system(r, tuple(links.get(r["id"], ()))) for r in rows]

    def systems_page(self, *, after: Sequence[Any] | None, offset: int, limit: int) -> RowPage[SystemRecord]:
        """One page of :meth:`list_systems` (by id, :func:`gateway.db.paging.keyset_page`)."""
        links: dict[str, list[str]] = {}
        sa = t.system_agencies
        with self._db.read() as conn:
            found = keyset_page(conn, select(t.systems), _BY_SYSTEM, after=after, offset=offset, limit=limit)
            ids = sorted(r["id"] for r in found.rows)
            if ids:
                query = select(sa.c.system_id, sa.c.organ_id).where(sa.c.system_id.in_(ids)).order_by(sa.c.organ_id)
                for sid, organ in conn.execute(query):
                    links.setdefault(sid, []).append(organ)
        return found.converted(lambda r: _system(r, tuple(links.get(r["id"], ()))))

    def active_system_agencies(self, system_id: str) -> tuple[str, ...] | None:
        """The agencies an ACTIVE system acts for (directly), or None for an unknown/inactive system."""
        with self._db.read() as conn:
            return acting(conn, system_id)


def acting(conn: Connection, system_id: str) -> tuple[str, ...] | None:
    """The agencies an ACTIVE system acts for (directly), or None for an unknown/inactive system."""
    found = acting_with_login(conn, system_id)
    return None if found is None else found[0]


def acting_with_login(conn: Connection, system_id: str) -> tuple[tuple[str, ...], tuple[str, str] | None] | None:
    """:func:`acting`, and ``(legacy OrganId, legacy scope)`` for a legacy system (None for others), in one query."""
    rows = conn.execute(_Q_ACTING, {"system_id": system_id}).all()
    if not rows:
        return None
    login, scope, _organ = rows[0]
    legacy = (login, scope) if login is not None and scope is not None else None
    return tuple(organ for _login, _scope, organ in rows if organ is not None), legacy


def agencies_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, AgencyRecord]:
    """The registered agencies among ``ids``, with their bound fingerprints, in one query."""
    found: dict[str, Mapping[str, Any]] = {}
    certs: dict[str, list[str]] = {}
    for row in conn.execute(_Q_AGENCIES, {"ids": list(ids)}).mappings():
        found.setdefault(row["organ_id"], row)
        if row["fingerprint"] is not None:
            certs.setdefault(row["organ_id"], []).append(row["fingerprint"])
    return {organ: _agency(row, tuple(certs.get(organ, ()))) for organ, row in found.items()}


_SYSTEM_BY_ID = select(t.systems).where(t.systems.c.id == bindparam("system_id"))
_AGENCIES_OF_SYSTEM = (
    select(t.system_agencies.c.organ_id)
    .where(t.system_agencies.c.system_id == bindparam("system_id"))
    .order_by(t.system_agencies.c.organ_id)
)


def _agencies_of(conn: Connection, system_id: str) -> tuple[str, ...]:
    sa = t.system_agencies.c
    return tuple(conn.scalars(select(sa.organ_id).where(sa.system_id == system_id).order_by(sa.organ_id)))


def _check_legacy_login_free(conn: Connection, organ_id: str) -> None:
    taken = conn.scalar(select(t.systems.c.id).where(t.systems.c.legacy_organ_id == organ_id))
    if taken is not None:
        raise RequestError(
            f"the legacy OrganId {organ_id} is already the login of system {taken!r}",
            organ_id=organ_id,
            system_id=taken,
        )


def _replace_certificates(conn: Connection, organ_id: str, fingerprints: Iterable[str], now: datetime) -> None:
    c = t.agency_certificates
    conn.execute(delete(c).where(c.c.organ_id == organ_id))
    unique = list(dict.fromkeys(fingerprints))
    if unique:
        conn.execute(insert(c), [{"organ_id": organ_id, "fingerprint": fp, "created_at": now} for fp in unique])


def _certificates(conn: Connection, organ_ids: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Every bound fingerprint (of ``organ_ids`` only, when given), by OrganId."""
    c = t.agency_certificates
    out: dict[str, list[str]] = {}
    query = select(c.c.organ_id, c.c.fingerprint).order_by(c.c.organ_id, c.c.fingerprint)
    if organ_ids is not None:
        query = query.where(c.c.organ_id.in_(sorted(organ_ids)))
    for organ, fp in conn.execute(query):
        out.setdefault(organ, []).append(fp)
    return {k: tuple(v) for k, v in out.items()}


def _agency(row: Mapping[str, Any], certs: tuple[str, ...]) -> AgencyRecord:
    return from_row(AgencyRecord, row, cert_fingerprints=certs)


def _system(row: Mapping[str, Any], agencies: tuple[str, ...]) -> SystemRecord:
    # LargeBinary comes back as memoryview on PostgreSQL; the record holds bytes.
    return from_row(
        SystemRecord,
        row,
        secret_enc=bytes(row["secret_enc"]),
        agencies=agencies,
        vdxp_allow_from=tuple(row["vdxp_allow_from"] or ()),
        vdxp_client_certs=tuple(row["vdxp_client_certs"] or ()),
    )


__all__ = ["RegistryRepository", "acting", "acting_with_login", "agencies_by_id"]
