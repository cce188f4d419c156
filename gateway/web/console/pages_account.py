"""The operator's own account page: who am I, and a new password (issue 12 item 2).

Accounts are created and reset by the CLI (an administrator's act on the server); changing one's own password is
the operator's act in the console. It needs the current password (a session left open on a shared screen must
not let someone else lock the owner out), and it ends every session of the account, this one included.
"""

from __future__ import annotations

from flask import Response, redirect, request

from gateway.errors import AuthError, GatewayError, RateLimitedError
from gateway.services.operators import MIN_PASSWORD, ConsoleUser
from gateway.web.console import i18n
from gateway.web.console.edge import PREFIX, Console

i18n.register(
    {
        "My account": "Tài khoản của tôi",
        "Change my password": "Đổi mật khẩu",
        "Current password": "Mật khẩu hiện tại",
        "New password": "Mật khẩu mới",
        "New password again": "Nhập lại mật khẩu mới",
        "At least {n} characters.": "Ít nhất {n} ký tự.",
        "The two new passwords differ.": "Hai mật khẩu mới không giống nhau.",
        "The current password is wrong.": "Mật khẩu hiện tại không đúng.",
        "The new password must have at least {n} characters and differ from the current one.": (
            "Mật khẩu mới phải có ít nhất {n} ký tự và khác mật khẩu hiện tại."
        ),
        "Password changed. Please log in with the new password.": (
            "Đã đổi mật khẩu. Vui lòng đăng nhập bằng mật khẩu mới."
        ),
        "Account": "Tài khoản",
        "Name": "Tên",
    }
)


def install(console: Console) -> None:
    @console.page("/account", endpoint="account")
    def account(user: ConsoleUser) -> Response:
        return _form(console, user)

    @console.page("/account/password", methods=("POST",), endpoint="account_password")
    def change_password(user: ConsoleUser) -> Response:
        current, new = request.form.get("current", ""), request.form.get("new", "")
        if new != request.form.get("again", ""):
            return _form(console, user, "The two new passwords differ.", 400)
        try:
            console.services.operators.change_own_password(user, current, new)
        except RateLimitedError:
            raise  # the error page, 429 with its Retry-After (not the form: the count is the point)
        except AuthError:
            return _form(console, user, "The current password is wrong.", 400)
        except GatewayError as exc:
            if exc.retryable:
                raise
            return _form(
                console,
                user,
                "The new password must have at least {n} characters and differ from the current one.",
                400,
            )
        return redirect(f"{PREFIX}/login?changed=1", 303)  # type: ignore[return-value]


def _form(console: Console, user: ConsoleUser, error: str = "", code: int = 200) -> Response:
    return console.render("account.html", code=code, title="My account", error=error, min_password=MIN_PASSWORD)
