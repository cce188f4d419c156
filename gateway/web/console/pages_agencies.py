"""The console's agency pages (issue 12 item 1, "Agencies"): the registry as a tree with each agency's channel,
systems, last activity, signature adoption, certificate expiry and late / not-taken rates; one agency's page; and
the add / edit form of an agency and its channel settings.

Who may do what: every role reads (in its scope); only an **admin** adds or edits. The registry is routing and
trust configuration — a channel's endpoint decides where a state agency's documents are sent, the signature
policy what the gateway accepts in its name — so changing it is not part of running the queues (the operator
role's work: re-driving dead letters), and a mistaken or malicious endpoint would silently divert documents. A
scoped admin adds and edits only inside its subtree and cannot move an agency out of it
(:meth:`gateway.services.console_agencies.ConsoleAgencies.scope_problems`).

Validation is the import's (:meth:`gateway.services.registry.Registry.save_agency`): the console accepts and
refuses exactly what ``edoc-gateway agencies import`` does. A refused form comes back with every problem listed
(HTTP 400) and nothing stored; each save and each refusal is audited (``console.agencies.add`` / ``.edit``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Final

from flask import Response, redirect, request, url_for

from gateway.errors import RequestError
from gateway.services.admin_roles import Role
from gateway.services.console_agencies import CHANNELS, SIGNATURE_POLICIES, AgencyTreeView
from gateway.services.operators import ConsoleUser
from gateway.services.registry import RegistryImportError
from gateway.tracking.calendar import LOCAL_TZ, local_date
from gateway.web.admin_tracking import DEFAULT_DAYS, period
from gateway.web.console import i18n
from gateway.web.console.agencies_text import TEXTS
from gateway.web.console.edge import Console

#: The form's fields, in the import format's column names (gateway.services.registry_rows.COLUMNS).
TEXT_FIELDS: Final = ("name", "parent", "channel", "endpoint", "signature_policy", "contact_email", "system")
FLAGS: Final = ("allow_sha1", "emit_arrived_on_ack", "active")
#: The agency fields an audit row names when they changed (values are configuration, not secrets).
AUDITED: Final = (
    "name", "parent", "channel", "endpoint", "signature_policy", "allow_sha1", "emit_arrived_on_ack", "active",
    "contact_email", "system_id", "cert_fingerprints",
)  # fmt: skip

i18n.register(TEXTS)


def install(console: Console) -> None:
    console.menu("agencies", "Agencies")
    services = console.services

    @console.page("/agencies", endpoint="agencies")
    def agencies(user: ConsoleUser) -> Response:
        first, last, error = _period_args()
        since, until = period(first, last)
        view = services.agencies.tree(since, until, scope=user.principal.scope)
        return console.render(
            "agencies.html", code=400 if error else 200, title="Agencies", view=view, first=first, last=last,
            error=error, can_edit=user.principal.allows(Role.ADMIN),
        )  # fmt: skip

    @console.page("/agencies/<organ_id>", endpoint="agency")
    def agency(user: ConsoleUser, organ_id: str) -> Response:
        first, last, error = _period_args()
        since, until = period(first, last)
        view = services.agencies.tree(since, until, scope=user.principal.scope, root=organ_id)
        node = view.nodes[organ_id]
        parent = view.nodes.get(node.record.parent or "")
        parent_name = parent.record.name if parent is not None else None
        return console.render(
            "agency.html", code=400 if error else 200, title="Agency", view=view, node=node, first=first,
            last=last, error=error, parent_name=parent_name, certificates=services.agencies.certificates(organ_id),
            can_edit=user.principal.allows(Role.ADMIN), saved=request.args.get("saved"),
        )  # fmt: skip

    @console.page("/new-agency", role=Role.ADMIN, methods=("GET", "POST"), endpoint="agency_new")
    def agency_new(user: ConsoleUser) -> Response:
        scope = user.principal.scope
        if request.method == "GET":
            values = {"parent": request.args.get("parent", scope or ""), "active": "true", "channel": "mailbox"}
            return _form(console, user, values=values, new=True)
        row = _row(new=True)
        try:
            saved = services.agencies.add(row, scope=scope)
        except RegistryImportError as exc:
            return _refused(console, user, "agencies.add", row, exc, new=True)
        services.operators.audit(
            user, "agencies.add", organ_id=saved.organ_id, parent=saved.parent, channel=saved.channel
        )
        return _saved(saved.organ_id)

    @console.page("/agencies/<organ_id>/edit", role=Role.ADMIN, methods=("GET", "POST"), endpoint="agency_edit")
    def agency_edit(user: ConsoleUser, organ_id: str) -> Response:
        scope = user.principal.scope
        if request.method == "GET":
            return _form(console, user, values=_values_of(services.agencies.visible(organ_id, scope)), new=False)
        row = _row(new=False)
        try:
            after, before = services.agencies.edit(organ_id, row, scope=scope)
        except RegistryImportError as exc:
            return _refused(console, user, "agencies.edit", {**row, "organ_id": organ_id}, exc, new=False)
        changed = [f for f in AUDITED if getattr(before, f) != getattr(after, f)]
        services.operators.audit(user, "agencies.edit", organ_id=organ_id, changed=changed)
        return _saved(organ_id)


def _period_args() -> tuple[date, date, str]:
    """``from`` / ``to`` (local dates) of the query; the last :data:`DEFAULT_DAYS` days when absent or wrong."""
    last = local_date(datetime.now(LOCAL_TZ))
    default = (last - timedelta(days=DEFAULT_DAYS - 1), last)
    raw = (request.args.get("from") or "", request.args.get("to") or "")
    if not any(raw):
        return *default, ""
    try:
        first, end = (date.fromisoformat(v) for v in raw)
        period(first, end)
    except (ValueError, RequestError):
        return *default, "The period is not valid: give two dates, the first not after the second."
    if (end - first).days > 366:
        return *default, "A period covers at most one year."
    return first, end, ""


def _row(*, new: bool) -> dict[str, str]:
    """The form as one row of the import format; flags are always given (a checkbox left empty is false)."""
    form = request.form
    row = {k: form.get(k, "").strip() for k in TEXT_FIELDS}
    row.update({k: "true" if form.get(k) else "false" for k in FLAGS})
    row["cert_fingerprints"] = ";".join(form.get("cert_fingerprints", "").split())
    if new:
        row["organ_id"] = form.get("organ_id", "").strip()
    return row


def _values_of(record: Any) -> dict[str, str]:
    """An agency as the form's values."""
    return {
        "organ_id": record.organ_id,
        "name": record.name,
        "parent": record.parent or "",
        "channel": record.channel,
        "endpoint": record.endpoint or "",
        "signature_policy": record.signature_policy,
        "contact_email": record.contact_email or "",
        "system": record.system_id or "",
        "cert_fingerprints": "\n".join(record.cert_fingerprints),
        **{k: "true" if getattr(record, k) else "" for k in FLAGS},
    }


def _form(
    console: Console, user: ConsoleUser, *, values: dict[str, str], new: bool,
    problems: list[dict[str, Any]] | None = None, code: int = 200,
) -> Response:  # fmt: skip
    return console.render(
        "agency_form.html", code=code, title="Add an agency" if new else "Edit the agency", new=new,
        values=values, problems=problems or [], bad={p.get("field") for p in problems or []},
        channels=CHANNELS, policies=SIGNATURE_POLICIES,
        known=console.services.agencies.choices(user.principal.scope),
    )  # fmt: skip


def _refused(
    console: Console, user: ConsoleUser, action: str, row: dict[str, str], exc: RegistryImportError, *, new: bool
) -> Response:
    """The form again with every problem (HTTP 400); the refusal is audited by field, without the values."""
    problems = list(exc.detail.get("problems") or []) or [{"field": "", "message": exc.message}]
    fields = sorted({str(p.get("field") or "") for p in problems})
    console.services.operators.audit(user, action, outcome="refused", organ_id=row.get("organ_id", "")[:40],
                                     fields=fields)  # fmt: skip
    values = {**row, "cert_fingerprints": "\n".join(row.get("cert_fingerprints", "").split(";"))}
    values.update({k: "true" if row.get(k) == "true" else "" for k in FLAGS})
    return _form(console, user, values=values, new=new, problems=problems, code=400)


def _saved(organ_id: str) -> Response:
    return redirect(url_for("console.agency", organ_id=organ_id, saved="1"), 303)  # type: ignore[return-value]


__all__ = ["AgencyTreeView", "install"]
