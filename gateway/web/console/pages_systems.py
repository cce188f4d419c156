"""Systems (issue 12 item 1): the agency software that may connect, with the agencies each acts for — listed for
everyone, created, re-keyed, disabled and enabled by admins; the console's way to do ``edoc-gateway systems …``.

Who sees what: every role sees the list and a system's facts (id, name, agencies, active, VDXP replay mode,
created), because "why is this agency's software refused?" is a viewer's question too, and none of it is secret —
the service hands out no secret at all except the one it has just generated. The VDXP source bindings (allowed
networks, client certificate fingerprints) describe the province's network, so only operators and admins see
them. Every change needs the admin role, a POST with the session's CSRF token (checked by the edge), and — for
what breaks a running system (a new secret, disabling) — a confirmation step whose form carries ``confirm=yes``.

A new or rotated secret is shown ONCE, on the answer to the POST that made it (never stored in clear by the
console, never in a URL, never in a log line or an audit row; the edge sends every page ``no-store``). Scope is
:class:`~gateway.services.console_systems.ScopedSystems`'s: a scoped operator sees and manages only systems whose
agencies all lie in its subtree; others are NOT_FOUND.
"""

from __future__ import annotations

import re
from typing import Final

from flask import Response, request

from gateway.errors import GatewayError, NotFoundError, RequestError
from gateway.services.admin_roles import Role
from gateway.services.operators import ConsoleUser
from gateway.services.paging import DEFAULT_LIMIT, PageRequest
from gateway.services.registry_rows import SYSTEM_ID
from gateway.services.registry_systems import SystemInfo
from gateway.web.console import i18n
from gateway.web.console.edge import Console

#: Most agencies one form names (a system acting for a whole province names its root: children are implied).
MAX_AGENCIES: Final = 200
_SEPARATORS = re.compile(r"[\s,;]+")


def install(console: Console) -> None:
    console.menu("systems", "Systems")
    systems = console.services.systems

    @console.page("/systems", endpoint="systems")
    def listing(user: ConsoleUser) -> Response:
        offset = _number(request.args.get("offset", ""), 0)
        limit = _number(request.args.get("limit", ""), DEFAULT_LIMIT)
        cursor = request.args.get("cursor") or None
        page = systems.page(PageRequest(limit=limit, offset=offset, cursor=cursor), scope=user.principal.scope)
        # A scoped list pages by offset (ScopedSystems.page), the whole registry by its keyset cursor.
        more = cursor is None and page.next_cursor is None and offset + len(page.items) < page.total
        return console.render(
            "systems.html",
            title="Systems",
            page=page,
            next_offset=offset + len(page.items) if more else None,
            limit=limit if limit != DEFAULT_LIMIT else None,
            first_page=offset == 0 and cursor is None,
            can_change=user.principal.allows(Role.ADMIN),
        )

    @console.page("/systems/<system_id>", endpoint="system")
    def system(user: ConsoleUser, system_id: str) -> Response:
        found = systems.system(_system_id(system_id), scope=user.principal.scope)
        return console.render(
            "system.html",
            title="System",
            s=found,
            show_bindings=user.principal.allows(Role.OPERATOR),
            can_change=user.principal.allows(Role.ADMIN),
        )

    _install_changes(console)


def _install_changes(console: Console) -> None:
    """The admin's changes: create a system, rotate its secret, disable / enable it."""
    systems = console.services.systems

    @console.page("/new-system", role=Role.ADMIN, methods=("GET", "POST"), endpoint="system_new")
    def create(user: ConsoleUser) -> Response:
        if request.method == "GET":
            return console.render("system_form.html", title="New system", form={}, error="")
        form = {k: request.form.get(k, "").strip() for k in ("system_id", "name", "agencies")}
        agencies = [a for a in _SEPARATORS.split(form["agencies"]) if a]
        try:
            if len(agencies) > MAX_AGENCIES:
                raise RequestError(f"at most {MAX_AGENCIES} agencies per system")
            secret = systems.add(form["system_id"], agencies, name=form["name"], scope=user.principal.scope)
        except RequestError as exc:
            console.services.operators.audit(
                user, "systems.add", outcome=exc.code, system_id=form["system_id"][:64], agencies=agencies[:20]
            )
            return console.render("system_form.html", code=400, title="New system", form=form, error=exc.message)
        console.services.operators.audit(user, "systems.add", system_id=form["system_id"], agencies=agencies)
        found = systems.system(form["system_id"], scope=user.principal.scope)
        return console.render("system_secret.html", title="System created", s=found, secret=secret, created=True)

    @console.page("/systems/<system_id>/rotate", role=Role.ADMIN, methods=("GET", "POST"), endpoint="system_rotate")
    def rotate(user: ConsoleUser, system_id: str) -> Response:
        found = systems.system(_system_id(system_id), scope=user.principal.scope)
        if request.method == "GET" or request.form.get("confirm") != "yes":
            return _confirm(console, found, "rotate", request.method == "POST")
        try:
            secret = systems.rotate_secret(found.id, scope=user.principal.scope)
        except GatewayError as exc:
            console.services.operators.audit(user, "systems.rotate", outcome=exc.code, system_id=found.id)
            raise
        console.services.operators.audit(user, "systems.rotate", system_id=found.id)
        return console.render("system_secret.html", title="New secret", s=found, secret=secret, created=False)

    for action, active in (("disable", False), ("enable", True)):
        _install_switch(console, action, active)


def _install_switch(console: Console, action: str, active: bool) -> None:
    """``/systems/<id>/disable`` and ``/enable``: a confirmation page, then the change (admin)."""
    systems = console.services.systems

    rule, endpoint = f"/systems/<system_id>/{action}", f"system_{action}"

    @console.page(rule, role=Role.ADMIN, methods=("GET", "POST"), endpoint=endpoint)
    def switch(user: ConsoleUser, system_id: str) -> Response:
        found = systems.system(_system_id(system_id), scope=user.principal.scope)
        if request.method == "GET" or request.form.get("confirm") != "yes":
            return _confirm(console, found, action, request.method == "POST")
        try:
            changed = systems.set_active(found.id, active, scope=user.principal.scope)
        except GatewayError as exc:
            console.services.operators.audit(user, f"systems.{action}", outcome=exc.code, system_id=found.id)
            raise
        console.services.operators.audit(user, f"systems.{action}", system_id=found.id)
        done = "The system is disabled." if not active else "The system is enabled."
        return console.render(
            "system.html", title="System", s=changed, show_bindings=True, can_change=True, notice=done
        )


def _confirm(console: Console, found: SystemInfo, action: str, unconfirmed: bool) -> Response:
    """The confirmation step of a change (HTTP 400 when a POST came without ``confirm=yes``)."""
    return console.render(
        "system_confirm.html",
        code=400 if unconfirmed else 200,
        title=_TITLES[action],
        s=found,
        action=action,
        unconfirmed=unconfirmed,
    )


_TITLES: Final = {"rotate": "Rotate the secret", "disable": "Disable the system", "enable": "Enable the system"}


def _system_id(raw: str) -> str:
    if not SYSTEM_ID.match(raw):
        raise NotFoundError("no such system")
    return raw


def _number(raw: str, default: int) -> int:
    """``offset`` / ``limit`` from the query (bounds checked by :class:`PageRequest`); ``default`` when absent."""
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 7:
        raise RequestError("offset and limit must be numbers")
    return int(raw)


i18n.register(
    {
        "System": "Hệ thống",
        "New system": "Hệ thống mới",
        "System created": "Đã tạo hệ thống",
        "New secret": "Khóa bí mật mới",
        "Rotate the secret": "Đổi khóa bí mật",
        "Disable the system": "Tạm dừng hệ thống",
        "Enable the system": "Cho phép hệ thống hoạt động lại",
        "The system is disabled.": "Hệ thống đã bị tạm dừng.",
        "The system is enabled.": "Hệ thống đã hoạt động lại.",
        "The agency software that may connect to the gateway, and the agencies (with their children) each may send "
        "and fetch for.": "Các phần mềm của cơ quan được phép kết nối tới cổng, và các cơ quan (cùng đơn vị trực "
        "thuộc) mà mỗi phần mềm được gửi và nhận thay.",
        "New system…": "Thêm hệ thống…",
        "{shown} of {total} systems": "{shown} trên {total} hệ thống",
        "Name": "Tên",
        "Acts for": "Đại diện cho",
        "Legacy e-doc.vn login (OrganId)": "Đăng nhập chuẩn e-doc.vn cũ (OrganId)",
        "Legacy sender scope": "Phạm vi đơn vị gửi (chuẩn cũ)",
        "legacy": "chuẩn cũ",
        "Active": "Đang hoạt động",
        "VDXP replay protection": "Chống phát lại VDXP",
        "Created": "Tạo lúc",
        "active": "đang hoạt động",
        "disabled": "đã tạm dừng",
        "No system is registered in your scope.": "Không có hệ thống nào trong phạm vi của bạn.",
        "Pages": "Trang",
        "First page": "Trang đầu",
        "Authentication": "Xác thực",
        "With its secret: WS-Security user name token (SOAP), HTTP Basic, VDXP signed requests": "Bằng khóa bí mật: "
        "WS-Security UsernameToken (SOAP), HTTP Basic, yêu cầu ký VDXP",
        "Allowed networks (VDXP)": "Mạng được phép (VDXP)",
        "Client certificates (VDXP)": "Chứng thư máy khách (VDXP)",
        "Rotate the secret…": "Đổi khóa bí mật…",
        "Disable…": "Tạm dừng…",
        "Enable…": "Cho hoạt động lại…",
        "Back to the systems": "Về danh sách hệ thống",
        "The system was not created:": "Chưa tạo được hệ thống:",
        "System id": "Mã hệ thống",
        "Letters, digits and . _ : - (at most 64); the user name the software logs in with.": "Chữ, số và . _ : - "
        "(tối đa 64 ký tự); là tên đăng nhập của phần mềm.",
        "Acts for (OrganIds)": "Đại diện cho (mã định danh cơ quan)",
        "One or more registered OrganIds, separated by spaces, commas or new lines; the system may also act for "
        "their children.": "Một hoặc nhiều mã định danh đã đăng ký, cách nhau bởi dấu cách, dấu phẩy hoặc xuống "
        "dòng; hệ thống cũng được đại diện cho các đơn vị trực thuộc.",
        "The gateway generates the secret and shows it once, on the next page.": "Cổng tự sinh khóa bí mật và chỉ "
        "hiển thị một lần, ở trang tiếp theo.",
        "Create the system": "Tạo hệ thống",
        "Cancel": "Hủy",
        "The system is registered.": "Hệ thống đã được đăng ký.",
        "The old secret no longer works.": "Khóa bí mật cũ không còn dùng được.",
        "Secret": "Khóa bí mật",
        "Copy it now: it is shown only on this page, never again.": "Hãy sao chép ngay: khóa chỉ hiển thị trên "
        "trang này, không bao giờ hiển thị lại.",
        "Give it to the system's administrator over a safe channel.": "Hãy chuyển cho người quản trị hệ thống qua "
        "một kênh an toàn.",
        "Done": "Xong",
        "Nothing was changed: confirm with the button below.": "Chưa có thay đổi nào: hãy xác nhận bằng nút bên dưới.",
        "A new secret is generated; the old one stops working at once, so the system cannot connect until its "
        "administrator enters the new one.": "Cổng sinh khóa bí mật mới; khóa cũ hết hiệu lực ngay, nên hệ thống "
        "không kết nối được cho tới khi người quản trị nhập khóa mới.",
        "The system is refused from now on (its secret is kept); its agencies' documents wait in their mailboxes.": (
            "Từ bây giờ hệ thống bị từ chối (khóa bí mật vẫn được giữ); văn bản gửi các cơ quan của nó chờ trong "
            "hộp thư."
        ),
        "The system may connect again with its current secret.": "Hệ thống có thể kết nối lại bằng khóa bí mật "
        "hiện tại.",
    }
)
