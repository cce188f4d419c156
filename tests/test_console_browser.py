"""The operator console in a real headless Chromium (issue 12 "Show"): log in through the form, the dashboard, the
language switch, log out; the Content-Security-Policy enforced by the browser itself; the login throttle's message;
the flows of the documents, dead-letter and report pages; axe-core on every main page.

One gunicorn gateway over the seeded history (tests/consolerig.py, SQLite: the browser adds nothing a second
database would test — the HTTP tests run both) and one Chromium for the whole module (tests/browser.py). Flows of
pages written in parallel are skipped until their route exists (:func:`consoleroutes.needs`). Screenshots of every
step: ``test-artifacts/console/browser--<test>--<step>-<page>.png``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from browser import SHOTS, Browser, blocking, chromium, readable, require_axe, require_browser
from consolerig import DEPT, PASSWORD, ConsoleGateway, console_gateway
from consoleroutes import needs

from gateway.demo.history_model import HistoryPlan, PlannedDocument

#: A short throttle so the throttle flow needs three failures, not ten (the per-address limit stays far above).
FAILURES = 3
DOCUMENTS = "/console/documents"
DEAD_LETTERS = "/console/dead-letters"
REPORT = "/console/report"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, pki: Any) -> Iterator[ConsoleGateway]:
    require_browser()  # before seeding a month of history for nothing
    tmp = tmp_path_factory.mktemp("console-browser")
    url = f"sqlite:///{tmp / 'gateway.db'}"
    with console_gateway(tmp, url, pki, CONSOLE_LOGIN_FAILURES=str(FAILURES)) as gw:
        yield gw


@pytest.fixture(scope="module")
def browser(gw: ConsoleGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    tmp = tmp_path_factory.mktemp("chromium")
    started = time.monotonic()
    with chromium(tmp) as driver:
        b = Browser(driver, gw.base, tmp / "downloads", "browser")
        print(f"\nconsole screenshots: {SHOTS}/browser--*.png")
        yield b
    print(f"\nconsole browser tests: {time.monotonic() - started:.1f} s in Chromium; screenshots in {SHOTS}")


@pytest.fixture(autouse=True)
def visitor(browser: Browser, request: pytest.FixtureRequest) -> Browser:
    """Each test starts as a new visitor (no cookie) and names its screenshots."""
    browser.test = request.node.name.removeprefix("test_")[:50]
    browser.step = 0
    browser.forget()
    browser.console_log()  # drop what earlier tests left in the console log
    return browser


def test_log_in_see_the_dashboard_switch_language_and_log_out(browser: Browser) -> None:
    browser.open("/console/")
    assert browser.path() == "/console/login?next=%2Fconsole%2F"
    assert browser.lang() == "vi" and "Đăng nhập" in browser.text()
    browser.fill(username="vera", password=PASSWORD)
    browser.submit("username")
    assert browser.path() == "/console/"
    text = browser.text()
    assert "Tổng quan" in text and "vera" in text and "Đăng xuất" in text
    browser.click_link("EN")
    assert browser.path() == "/console/" and browser.lang() == "en"
    text = browser.text()
    assert "Dashboard" in text and "Log out" in text and "Tổng quan" not in text
    browser.open("/console/")  # remembered by its cookie, not by the URL
    assert browser.lang() == "en"
    browser.click_link("VI")
    assert browser.lang() == "vi" and "Tổng quan" in browser.text()
    browser.logout()
    assert browser.path().startswith("/console/login")
    browser.open("/console/")
    assert browser.path().startswith("/console/login"), "the session outlived its logout"
    assert browser.csp_refusals() == []


def test_the_browser_enforces_the_content_security_policy(browser: Browser) -> None:
    browser.login("vera", PASSWORD)
    assert browser.path() == "/console/"
    assert browser.csp_refusals() == [], "a console page broke its own policy"
    assert browser.driver.execute_script("return document.scripts.length") >= 1  # console.js, from 'self'
    # The check can fail: an inline script put into the page is refused by the browser, and the refusal is logged.
    browser.driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.inlineRan = true;';"
        "document.body.appendChild(s);"
    )
    assert browser.driver.execute_script("return window.inlineRan === true") is False
    refused = browser.csp_refusals()
    assert refused and "script-src 'self'" in refused[0], refused


def test_the_login_throttle_shows_its_message(browser: Browser) -> None:
    for n in range(FAILURES):
        browser.login("khach-la", f"not a password {n}")
        assert "Sai tên đăng nhập hoặc mật khẩu" in browser.text()
        assert browser.driver.find_element("name", "username").get_attribute("value") == "khach-la"
    browser.login("khach-la", PASSWORD)
    alert = browser.driver.find_element("css selector", "[role=alert]").text
    assert "Đăng nhập sai quá nhiều lần" in alert and "giây" in alert
    assert browser.path().startswith("/console/login")


# ---------------------------------------------------------------------------------------------- pages in parallel


def _late(plan: HistoryPlan) -> set[str]:
    return {d.doc_id for d in plan.documents if any("late_ack" in r.intent for r in d.deliveries)}


def _subtree(plan: HistoryPlan, top: str) -> set[str]:
    parent = {a.organ_id: a.parent for a in plan.agencies}

    def under(organ: str | None) -> bool:
        while organ is not None:
            if organ == top:
                return True
            organ = parent.get(organ)
        return False

    return {a for a in parent if under(a)}


def _outside(plan: HistoryPlan, top: str) -> PlannedDocument:
    """A document neither sent by nor addressed to anyone in ``top``'s subtree."""
    inside = _subtree(plan, top)
    return next(
        d for d in plan.documents if d.sender not in inside and not inside & {r.recipient for r in d.deliveries}
    )


@needs(DOCUMENTS)
@needs(DOCUMENTS + "/<doc_id>")
def test_find_a_late_document_and_open_its_timeline(browser: Browser, gw: ConsoleGateway) -> None:
    browser.login("vera", PASSWORD)
    browser.click_link("Văn bản")
    assert browser.path().startswith(DOCUMENTS)
    from selenium.webdriver.support.select import Select

    Select(browser.driver.find_element("name", "flag")).select_by_value("late")
    browser.submit("flag")
    first = browser.driver.find_element("css selector", f"main table a[href^='{DOCUMENTS}/']")
    doc_id = first.get_attribute("href").rsplit("/", 1)[-1]
    assert doc_id in _late(gw.plan), f"{doc_id} is listed as late but the history planned no late receipt for it"
    first.click()
    browser.shot()
    doc = next(d for d in gw.plan.documents if d.doc_id == doc_id)
    text = browser.text()
    assert doc.document_id in text
    for delivery in doc.deliveries:  # the per-recipient timeline names every recipient
        assert delivery.recipient in text


@needs(DEAD_LETTERS)
def test_re_drive_a_dead_letter(browser: Browser, gw: ConsoleGateway) -> None:
    dead = {r.delivery_id for d in gw.plan.documents for r in d.deliveries if r.state == "dead"}
    browser.login("oscar", PASSWORD)
    browser.open(DEAD_LETTERS)
    forms = browser.driver.find_elements("css selector", "main form[method=post]")
    form = next(f for f in forms if any(i in f.get_attribute("outerHTML") for i in dead))
    delivery_id = next(i for i in dead if i in form.get_attribute("outerHTML"))
    form.find_element("css selector", "button[type=submit]").click()
    if form.get_attribute("data-confirm") is not None:  # console.js asks first
        browser.driver.switch_to.alert.accept()
    browser.shot("after-redrive")
    store = gw.store()
    try:
        record, _doc = store.deliveries.delivery(delivery_id)
        audit = [e for e in store.audit.entries(limit=20) if "redrive" in e.action.replace("-", "")]
    finally:
        store.engine.dispose()
    assert record.state != "dead", "the re-drive did not reach the store"
    assert audit and audit[0].system_id == "operator:oscar"
    browser.open(DEAD_LETTERS)
    assert delivery_id not in browser.driver.page_source


@needs(REPORT)
def test_download_the_report_as_xlsx(browser: Browser) -> None:
    import openpyxl

    browser.login("vera", PASSWORD)
    browser.open(REPORT)
    browser.clear_downloads()
    browser.driver.find_element("css selector", "main a[href*='xlsx']").click()
    workbook = openpyxl.load_workbook(browser.download(".xlsx"), read_only=True)
    rows = [r for sheet in workbook.worksheets for r in sheet.iter_rows(values_only=True)]
    assert len(rows) > 1 and any(isinstance(v, int | float) for r in rows for v in r)


@needs(DOCUMENTS + "/<doc_id>")
def test_a_scoped_viewer_cannot_reach_another_subtrees_document(browser: Browser, gw: ConsoleGateway) -> None:
    other = _outside(gw.plan, DEPT)
    browser.login("sam", PASSWORD)
    browser.open(f"{DOCUMENTS}/{other.doc_id}")
    text = browser.text()
    assert "Không tìm thấy" in text and other.document_id not in text
    browser.open(DOCUMENTS)
    assert other.doc_id not in browser.driver.page_source


# ---------------------------------------------------------------------------------------------- accessibility

PAGES = [
    pytest.param(None, "/console/login", id="login"),
    pytest.param("vera", "/console/", id="dashboard"),
    pytest.param("vera", DOCUMENTS, id="documents", marks=needs(DOCUMENTS)),
    pytest.param("oscar", DEAD_LETTERS, id="dead-letters", marks=needs(DEAD_LETTERS)),
    pytest.param("vera", REPORT, id="report", marks=needs(REPORT)),
    pytest.param("ada", "/console/agencies", id="agencies", marks=needs("/console/agencies")),
    pytest.param("ada", "/console/systems", id="systems", marks=needs("/console/systems")),
    pytest.param("vera", "/console/no/such/page", id="not-found"),
]


@pytest.mark.parametrize(("who", "path"), PAGES)
def test_no_serious_accessibility_violation(browser: Browser, who: str | None, path: str) -> None:
    source = require_axe()
    if who is not None:
        browser.login(who, PASSWORD)
    for lang in ("vi", "en"):
        browser.open(f"{path}?lang={lang}")
        assert browser.lang() == lang
        found = blocking(browser.axe(source))
        assert found == [], readable(f"{path} ({lang})", found)


def test_the_accessibility_check_can_fail(browser: Browser) -> None:
    """axe-core really runs in the page: an unlabelled field and an image without a text alternative are found."""
    browser.open("/console/login")
    browser.driver.execute_script(
        "const main = document.querySelector('main');"
        "main.insertAdjacentHTML('beforeend', '<input name=x><img src=/console/static/none.png>');"
    )
    found = {v["id"] for v in blocking(browser.axe(require_axe()))}
    assert {"label", "image-alt"} <= found, found
