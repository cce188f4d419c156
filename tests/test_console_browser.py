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
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser import SHOTS, Browser, blocking, chromium, readable, require_axe, require_browser
from consolerig import DEPT, PASSWORD, ROOT, ConsoleGateway, console_gateway
from consoleroutes import needs, outside
from consoletraffic import dead_letter, deliver, send_package
from soap_receiver import running_receiver

from gateway.demo.history_model import PlannedDocument

#: A short throttle so the throttle flow needs three failures, not ten (the per-address limit stays far above).
FAILURES = 3
DOCUMENTS = "/console/documents"
DEAD_LETTERS = "/console/dead-letters"
REPORT = "/console/report"
REDRIVE = "/console/deliveries/<delivery_id>/redrive"
PUSHED = "000.00.09.H53"  # an agency pushed to by SOAP, added by the re-drive flow


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
    browser.click("header a[hreflang=en]")
    assert browser.path() == "/console/" and browser.lang() == "en"
    text = browser.text()
    assert "Dashboard" in text and "Log out" in text and "Tổng quan" not in text
    browser.open("/console/")  # remembered by its cookie, not by the URL
    assert browser.lang() == "en"
    browser.click("header a[hreflang=vi]")
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


def _could_be_late(doc: PlannedDocument) -> bool:
    """A necessary condition of a late receipt, from the plan alone: for some recipient, no status 01 at all, or the
    first one more than ~an hour (the rule's deadline, counted in working time, which never exceeds wall time)
    after the document was there to take."""
    for r in doc.deliveries:
        first = min((s.at for s in r.statuses if s.code == "01"), default=None)
        if first is None or first - r.created_at > timedelta(minutes=55):
            return True
    return False


@needs(DOCUMENTS)
@needs(DOCUMENTS + "/<doc_id>")
def test_find_a_late_document_and_open_its_timeline(browser: Browser, gw: ConsoleGateway) -> None:
    browser.login("vera", PASSWORD)
    browser.click(f"header nav a[href='{DOCUMENTS}']")
    assert browser.path() == DOCUMENTS and browser.lang() == "vi"
    browser.driver.find_element("css selector", "input[name=flag][value=late_receipt]").click()
    browser.submit("flag")
    assert "flag=late_receipt" in browser.path()
    first = browser.driver.find_element("css selector", f"main table a[href^='{DOCUMENTS}/']")
    doc_id = urlsplit(first.get_attribute("href")).path.rsplit("/", 1)[-1]
    doc = next(d for d in gw.plan.documents if d.doc_id == doc_id)
    assert _could_be_late(doc), f"{doc_id} is listed as a late receipt, but every recipient sent 01 in time"
    browser.follow(first)
    assert browser.path().startswith(f"{DOCUMENTS}/{doc_id}")
    text = browser.text()
    assert doc.document_id in text
    for delivery in doc.deliveries:  # the per-recipient timeline names every recipient
        assert delivery.recipient in text


@needs(DEAD_LETTERS)
@needs(REDRIVE, "POST")
def test_re_drive_a_dead_letter_and_see_it_delivered(browser: Browser, gw: ConsoleGateway, pki: Any) -> None:
    """A real package to a SOAP agency whose receiver answers 503 until the budget runs out (a dead letter); the
    receiver is mended, an operator re-drives the letter from the console (in English: the msgids are the labels),
    the next worker pass delivers it."""
    with running_receiver(gw.tmp / "receiver") as receiver:
        receiver.fault("status 503")
        added = gw.cli("agencies", "add", PUSHED, "--name", "Sở Thử nghiệm", "--parent", ROOT,
                       "--channel", "soap", "--endpoint", receiver.url)  # fmt: skip
        assert added.returncode == 0, added.stderr
        sent = send_package(gw, pki, (PUSHED,), "88")
        dead_letter(gw)
        (delivery,) = _deliveries(gw, sent.doc_id)
        assert delivery.state == "dead"
        receiver.fault(None)
        browser.login("oscar", PASSWORD)
        browser.open(f"{DEAD_LETTERS}?lang=en")
        browser.fill(recipient=PUSHED)
        browser.submit("recipient")
        browser.click_link(sent.document_id.rsplit(",", 1)[-1])
        browser.click_link("Re-drive")
        assert delivery.delivery_id in browser.text()
        browser.submit("confirm")
        assert delivery.delivery_id in browser.text()
        assert _deliveries(gw, sent.doc_id)[0].state != "dead", "the re-drive did not reach the store"
        deliver(gw)
        assert _deliveries(gw, sent.doc_id)[0].state == "delivered"
        assert len(receiver.store().written()) == 1  # the receiver has it now, once
        browser.open(f"/console/deliveries/{delivery.delivery_id}")
        assert "delivered" in browser.text().lower()


def _deliveries(gw: ConsoleGateway, doc_id: str) -> list[Any]:
    store = gw.store()
    try:
        return store.deliveries.for_document(doc_id)
    finally:
        store.engine.dispose()


@needs(REPORT)
def test_download_the_report_as_xlsx(browser: Browser) -> None:
    import openpyxl

    browser.login("vera", PASSWORD)
    browser.open(REPORT)
    browser.clear_downloads()
    browser.driver.find_element("css selector", "main a[href*='xlsx']").click()  # a download: the page stays
    workbook = openpyxl.load_workbook(browser.download(".xlsx"), read_only=True)
    rows = [r for sheet in workbook.worksheets for r in sheet.iter_rows(values_only=True)]
    assert len(rows) > 1 and any(isinstance(v, int | float) for r in rows for v in r)


@needs(DOCUMENTS + "/<doc_id>")
def test_a_scoped_viewer_cannot_reach_another_subtrees_document(browser: Browser, gw: ConsoleGateway) -> None:
    other = outside(gw.plan, DEPT)[0]
    browser.login("sam", PASSWORD)
    browser.open(f"{DOCUMENTS}/{other.doc_id}")
    text = browser.text()
    assert "Không tìm thấy trang" in text and other.document_id not in text
    # (the 404 page may repeat the id that was typed: the URL's own, not the store's)
    browser.open(f"{DOCUMENTS}?text={other.document_id.rsplit(',', 1)[-1]}&limit=200")
    assert other.doc_id not in browser.driver.page_source
    browser.open(f"{DOCUMENTS}/{other.doc_id}/raw")
    assert "Không tìm thấy trang" in browser.text() or "403" in browser.text()


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
        violations = browser.axe(source)
        found = blocking(violations)
        assert found == [], readable(f"{path} ({lang})", found)
        if violations:  # moderate and minor ones are reported, not failed (pytest -s or -rA shows them)
            print(readable(f"{path} ({lang}), not blocking", violations))


def test_the_accessibility_check_can_fail(browser: Browser) -> None:
    """axe-core really runs in the page: an unlabelled field and an image without a text alternative are found."""
    browser.open("/console/login")
    browser.driver.execute_script(
        "const main = document.querySelector('main');"
        "main.insertAdjacentHTML('beforeend', '<input name=x><img src=/console/static/none.png>');"
    )
    found = {v["id"] for v in blocking(browser.axe(require_axe()))}
    assert {"label", "image-alt"} <= found, found
