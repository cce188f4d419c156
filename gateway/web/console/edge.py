"""The operator console's edge (``/console``): sessions, CSRF, roles and scopes, languages and security headers for
every page; the pages themselves are in the ``pages_*`` modules, each installing its routes with :meth:`Console.page`.

Every route declares the weakest role that may use it (:class:`Route`): the wrapper checks, before the view runs,
that a live session exists (else the login page, with the path to come back to), that its operator's role reaches
the route's, and — for every POST — that the form carries the session's CSRF token. Scope (an agency subtree) is
not checked here but by the services every view calls with ``user.principal.scope``, exactly as the admin API does,
so a URL guessed outside the scope meets the same NOT_FOUND.

Headers on every answer: a strict Content-Security-Policy (no inline script or style, nothing from another
origin: the console works on an intranet without internet access), ``X-Frame-Options: DENY``, ``nosniff``,
``Referrer-Policy: no-referrer``, and ``Cache-Control: no-store`` on pages (they show package data); static
assets are cached, their URLs carrying the release's version.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from flask import Blueprint, Response, g, redirect, render_template, request, send_from_directory
from werkzeug.exceptions import HTTPException

from gateway import __version__
from gateway.config import Settings
from gateway.errors import GatewayError, RateLimitedError
from gateway.services.admin_roles import Role
from gateway.services.console import ConsoleServices
from gateway.services.operators import ConsoleUser, csrf_ok
from gateway.web.console import i18n
from gateway.web.jsonapi import http_status

log = logging.getLogger("gateway.web.console")

PREFIX: Final = "/console"
SESSION_COOKIE: Final = "edoc_console"
LOGIN_COOKIE: Final = "edoc_console_login"
LANG_COOKIE: Final = "edoc_lang"
HERE: Final = Path(__file__).parent
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
View = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    """One console route: its rule, methods and the weakest role allowed (the route × role table test reads these)."""

    rule: str
    endpoint: str
    methods: tuple[str, ...]
    role: Role


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str
    role: Role


class Console:
    """The console blueprint: pages install their routes on it (:meth:`page`), then :meth:`blueprint` builds it."""

    def __init__(self, services: ConsoleServices, settings: Settings) -> None:
        self.services = services
        self.settings = settings
        self.routes: list[Route] = []
        self.nav: list[NavItem] = []
        self._bp = Blueprint("console", __name__, url_prefix=PREFIX, template_folder="templates")

    # ------------------------------------------------------------------------------------------ pages

    def page(
        self, rule: str, *, role: Role = Role.VIEWER, methods: Iterable[str] = ("GET",), endpoint: str | None = None
    ) -> Callable[[View], View]:
        """Register a view at ``rule`` for ``role`` and above; the view gets the :class:`ConsoleUser` first."""
        allowed = tuple(methods)

        def decorate(view: View) -> View:
            name = endpoint or view.__name__
            self.routes.append(Route(PREFIX + rule, f"console.{name}", allowed, role))

            @functools.wraps(view)
            def guarded(**kwargs: Any) -> Any:
                user: ConsoleUser | None = g.get("console_user")
                if user is None:
                    return _to_login()
                if not user.principal.allows(role):
                    return self.error_page(403, i18n_key="You may not do this")
                if request.method == "POST" and not csrf_ok(user, request.form.get("csrf", "")):
                    self.services.operators.audit(user, "csrf", outcome="refused", path=request.path[:200])
                    return self.error_page(403, i18n_key="The form has expired. Please try again.")
                return view(user, **kwargs)

            self._bp.add_url_rule(rule, name, guarded, methods=list(allowed))
            return view

        return decorate

    def menu(self, endpoint: str, label: str, role: Role = Role.VIEWER) -> None:
        """A top-menu entry (shown to ``role`` and above)."""
        self.nav.append(NavItem(f"console.{endpoint}", label, role))

    def render(self, template: str, *, code: int = 200, **context: Any) -> Response:
        """``templates/console/<template>`` with ``context``, answered with HTTP ``code``."""
        return Response(render_template(f"console/{template}", **context), code, mimetype="text/html")

    def error_page(self, status: int, *, i18n_key: str, detail: str = "") -> Response:
        return self.render("error.html", code=status, status=status, title=i18n_key, detail=detail)

    # ------------------------------------------------------------------------------------------ blueprint

    def blueprint(self) -> Blueprint:
        bp = self._bp
        bp.before_request(self._before)
        bp.after_request(_headers)
        bp.context_processor(self._context)
        bp.add_url_rule("/static/<path:filename>", "static", _static, methods=["GET"])
        bp.add_url_rule("/login", "login", self._login, methods=["GET", "POST"])
        bp.add_url_rule("/logout", "logout", self._logout, methods=["POST"])
        bp.add_url_rule("/<path:rest>", "no_page", self._no_page, methods=["GET", "POST"])
        bp.register_error_handler(GatewayError, self._gateway_error)
        bp.register_error_handler(HTTPException, self._http_error)
        for name, convert in _FILTERS.items():
            bp.add_app_template_filter(convert, f"console_{name}")
        return bp

    def _before(self) -> Response | None:
        lang = request.args.get("lang")
        if lang is not None and request.method == "GET" and lang in i18n.LANGUAGES:
            rest = urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "lang"])
            response = redirect(request.path + (f"?{rest}" if rest else ""), 303)
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path=PREFIX, samesite="Strict",
                                secure=self.settings.console_cookie_secure, httponly=True)  # fmt: skip
            return response
        g.console_lang = lang if lang in i18n.LANGUAGES else request.cookies.get(LANG_COOKIE, i18n.DEFAULT)
        if g.console_lang not in i18n.LANGUAGES:
            g.console_lang = i18n.DEFAULT
        if request.endpoint == "console.static":
            return None
        g.console_user = self.services.operators.resume(request.cookies.get(SESSION_COOKIE, ""))
        return None

    def _context(self) -> dict[str, Any]:
        lang: str = g.get("console_lang", i18n.DEFAULT)
        user: ConsoleUser | None = g.get("console_user")
        nav = [n for n in self.nav if user is not None and user.principal.allows(n.role)]
        return {
            "_": lambda msgid, **kw: i18n.translate(msgid, lang).format(**kw) if kw else i18n.translate(msgid, lang),
            "lang": lang,
            "user": user,
            "csrf": user.csrf if user is not None else "",
            "nav": nav,
            "version": __version__,
            "Role": Role,
        }

    # ------------------------------------------------------------------------------------------ login

    def _login(self) -> Response:
        g.console_user = None  # a login page never shows a session (and logging in replaces any)
        target = _safe_next(request.values.get("next", ""))
        if request.method == "GET":
            return self._login_form(target)
        token = request.cookies.get(LOGIN_COOKIE, "")
        if not token or not secrets.compare_digest(token, request.form.get("csrf", "")):
            return self._login_form(target, "The form has expired. Please try again.", 403)
        username = request.form.get("username", "").strip()
        try:
            session_id, _user = self.services.operators.login(username, request.form.get("password", ""))
        except RateLimitedError as exc:
            seconds = int(exc.detail.get("retry_after", 60))
            response = self._login_form(
                target, "Too many failed logins. Try again in {seconds} s.", 429, seconds, username=username
            )
            response.headers["Retry-After"] = str(seconds)
            return response
        except GatewayError as exc:
            if exc.retryable:
                raise
            return self._login_form(target, "Wrong user name or password.", 401, username=username)
        response = redirect(target, 303)
        response.set_cookie(SESSION_COOKIE, session_id, path=PREFIX, httponly=True, samesite="Strict",
                            secure=self.settings.console_cookie_secure)  # fmt: skip
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    def _login_form(
        self, target: str, error: str = "", status: int = 200, seconds: int = 0, username: str = ""
    ) -> Response:
        token = secrets.token_urlsafe(32)
        response = self.render(
            "login.html", code=status, login_csrf=token, next=target, error=error, seconds=seconds, username=username
        )
        response.set_cookie(LOGIN_COOKIE, token, path=PREFIX, httponly=True, samesite="Strict",
                            secure=self.settings.console_cookie_secure, max_age=3600)  # fmt: skip
        return response

    def _logout(self) -> Response:
        user: ConsoleUser | None = g.get("console_user")
        if user is not None:
            if not csrf_ok(user, request.form.get("csrf", "")):  # a forged logout changes nothing
                return self.error_page(403, i18n_key="The form has expired. Please try again.")
            self.services.operators.logout(user)
        response = redirect(f"{PREFIX}/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    # ------------------------------------------------------------------------------------------ errors

    def _no_page(self, rest: str) -> Response:
        if g.get("console_user") is None:
            return _to_login()
        return self.error_page(404, i18n_key="Page not found")

    def _gateway_error(self, exc: GatewayError) -> Response:
        status = http_status(exc)
        if status >= 500:
            log.warning("console %s %s: %s", request.method, request.path[:120], exc.code)
        titles = {403: "You may not do this", 404: "Page not found"}
        response = self.error_page(status, i18n_key=titles.get(status, "Something went wrong"), detail=exc.message)
        retry_after = exc.detail.get("retry_after")
        if isinstance(retry_after, int) and status == 429:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def _http_error(self, exc: HTTPException) -> Response:
        status = exc.code or 500
        return self.error_page(status, i18n_key="Page not found" if status == 404 else "Something went wrong")


def _to_login() -> Response:
    target = request.full_path.rstrip("?") if request.method == "GET" else f"{PREFIX}/"
    return redirect(f"{PREFIX}/login?{urlencode({'next': target})}", 303)


def _safe_next(target: str) -> str:
    """Only a path of the console itself (never another site: no open redirect)."""
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


def _static(filename: str) -> Response:
    response = send_from_directory(HERE / "static", filename, max_age=3600)
    if request.args.get("v") == __version__:
        response.cache_control.max_age = 86400 * 30  # a versioned URL: the content changes only with a release
        response.cache_control.public = True
    return response


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


#: Template filters ``console_<name>``: local Vietnam times and local numbers.
_FILTERS: Final[dict[str, Callable[..., str]]] = {
    "day": i18n.day,
    "when": i18n.when,
    "exact": i18n.when_exact,
    "number": lambda value, digits=0: i18n.number(value, g.get("console_lang", i18n.DEFAULT), digits),
}

__all__ = ["CSP", "PREFIX", "SESSION_COOKIE", "Console", "Route"]
