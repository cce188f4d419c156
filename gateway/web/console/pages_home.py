"""The console's home: the dashboard (issue 12 item 1, "Dashboard")."""

from __future__ import annotations

from flask import Response, redirect

from gateway.services.operators import ConsoleUser
from gateway.web.console.edge import PREFIX, Console


def install(console: Console) -> None:
    console.menu("dashboard", "Dashboard")

    @console.page("/", endpoint="dashboard")
    def dashboard(user: ConsoleUser) -> Response:
        return console.render("dashboard.html", title="Dashboard")

    @console.page("", endpoint="root")
    def root(user: ConsoleUser) -> Response:
        return redirect(f"{PREFIX}/", 308)  # type: ignore[return-value]
