"""The tracking reads of the admin API: document lists and stories, the Decision-28 report, the agency table.

Registered on the admin blueprint (:mod:`gateway.web.admin`), which has authenticated and will audit the call;
every read passes the caller's scope to the service, which limits what it returns (a department's token sees
only its units). Periods are LOCAL dates (Vietnam time, as people read them): ``from=2026-03-01&to=2026-03-31``
is [1 March 00:00, 1 April 00:00) +07; ``as_of`` is an ISO 8601 time (a time without offset is Vietnam time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from flask import Blueprint, Response, request

from gateway.errors import RequestError, UnavailableError
from gateway.services.admin_roles import Principal
from gateway.services.paging import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from gateway.services.tracking_api import DocumentsApi
from gateway.tracking.calendar import LOCAL_TZ, local_date, local_start
from gateway.web.document_filters import MAX_OFFSET, date_value, document_query, int_value
from gateway.web.jsonapi import json_response

#: The agency table's period when none is given: the last 30 local days, today included.
DEFAULT_DAYS = 30


class JsonValue(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class TrackingApi(Protocol):
    """Met by :class:`gateway.services.admin.AdminTracking`."""

    def report(
        self,
        since: datetime,
        until: datetime,
        *,
        agency: str | None = None,
        depth: int | None = None,
        as_of: datetime | None = None,
        scope: str | None = None,
    ) -> JsonValue: ...

    def agencies(
        self, since: datetime, until: datetime, *, as_of: datetime | None = None, scope: str | None = None
    ) -> JsonValue: ...


def int_arg(name: str, default: int | None, *, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high]; REQUEST.INVALID otherwise."""
    return int_value(request.args, name, default, low=low, high=high)


def page_args() -> PageRequest:
    """``limit``, ``offset`` and ``cursor`` of a list (issue 11 item 7), each checked: REQUEST.INVALID for a bad
    number; a bad cursor is REQUEST.CURSOR when the service reads it."""
    return PageRequest(
        limit=int_arg("limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT) or DEFAULT_LIMIT,
        offset=int_arg("offset", 0, low=0, high=MAX_OFFSET) or 0,
        cursor=request.args.get("cursor") or None,
    )


def date_arg(name: str) -> date | None:
    return date_value(request.args, name)


def as_of_arg() -> datetime | None:
    raw = request.args.get("as_of")
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise RequestError("as_of must be an ISO 8601 time", parameter="as_of") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=LOCAL_TZ)


def period(first: date | None, last: date | None) -> tuple[datetime, datetime]:
    """[first 00:00, last+1 00:00) local, as UTC; REQUEST.INVALID when it ends before it starts."""
    if first is None or last is None:
        raise RequestError("from and to (YYYY-MM-DD) are required", parameter="period")
    if last < first:
        raise RequestError(f"the period ends ({last}) before it starts ({first})", parameter="period")
    return local_start(first), local_start(last + timedelta(days=1))


@dataclass(frozen=True)
class ReportQuery:
    """The parameters of a Decision-28 report as ``GET /admin/v1/report`` and the console's Report page read them
    (``from``, ``to``, ``agency``, ``depth``, ``as_of``): one parser, so both edges ask the service the same thing."""

    first: date
    last: date
    agency: str | None = None
    depth: int | None = None
    as_of: datetime | None = None

    @property
    def since(self) -> datetime:
        return local_start(self.first)

    @property
    def until(self) -> datetime:
        return local_start(self.last + timedelta(days=1))

    def run(self, tracking: TrackingApi, scope: str | None) -> JsonValue:
        """The report for the caller's ``scope`` (the service limits it; see :meth:`TrackingApi.report`)."""
        return tracking.report(
            self.since, self.until, agency=self.agency, depth=self.depth, as_of=self.as_of, scope=scope
        )


def report_query(default: tuple[date, date] | None = None) -> ReportQuery:
    """The request's report parameters; ``default`` is the period when neither ``from`` nor ``to`` is given (the
    admin API has none: both are required). REQUEST.INVALID with ``detail.parameter`` naming the bad one
    (``from``/``to`` unreadable, ``period`` ending before it starts, ``depth``, ``as_of``)."""
    first, last = date_arg("from"), date_arg("to")
    if first is None and last is None and default is not None:
        first, last = default
    period(first, last)
    assert first is not None and last is not None  # period() refused a missing end
    return ReportQuery(
        first,
        last,
        agency=request.args.get("agency") or None,
        depth=int_arg("depth", None, low=0, high=10),
        as_of=as_of_arg(),
    )


class TrackingRoutes:
    """``/documents``, ``/documents/<doc_id>``, ``/report`` and ``/agencies``."""

    def __init__(self, tracking: TrackingApi, documents: DocumentsApi | None, caller: Callable[[], Principal]) -> None:
        self._tracking = tracking
        self._documents = documents
        self._caller = caller

    def register(self, bp: Blueprint) -> None:
        bp.add_url_rule("/documents", "documents_list", self._list, methods=["GET"])
        bp.add_url_rule("/documents/<doc_id>", "documents_show", self._story, methods=["GET"])
        bp.add_url_rule("/report", "report", self._report, methods=["GET"])
        bp.add_url_rule("/agencies", "agencies", self._agencies, methods=["GET"])

    def _docs(self) -> DocumentsApi:
        if self._documents is None:
            raise UnavailableError("document lists are not available in this build")
        return self._documents

    def _list(self) -> Response:
        query = document_query(request.args)
        return json_response(self._docs().list_documents(query, scope=self._caller().scope).to_dict())

    def _story(self, doc_id: str) -> Response:
        return json_response(self._docs().document_story(doc_id, scope=self._caller().scope).to_dict())

    def _report(self) -> Response:
        return json_response(report_query().run(self._tracking, self._caller().scope).to_dict())

    def _agencies(self) -> Response:
        first, last = date_arg("from"), date_arg("to")
        as_of = as_of_arg()
        if first is None and last is None:
            last = local_date(as_of or datetime.now(LOCAL_TZ))
            first = last - timedelta(days=DEFAULT_DAYS - 1)
        since, until = period(first, last)
        table = self._tracking.agencies(since, until, as_of=as_of, scope=self._caller().scope)
        return json_response(table.to_dict())


__all__ = [
    "DEFAULT_DAYS",
    "ReportQuery",
    "TrackingApi",
    "TrackingRoutes",
    "as_of_arg",
    "date_arg",
    "int_arg",
    "page_args",
    "period",
    "report_query",
]
