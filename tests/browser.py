"""A real headless Chromium for the console's browser tests (issue 12 "Show"), driven by Selenium through Debian's
own ``chromedriver`` — the browser an IT centre's intranet machine runs, not a download of a pinned build.

:func:`chromium` starts one browser (a fresh profile, downloads into a folder of the test's own, the browser's
console log kept so a test can read Content-Security-Policy refusals); :class:`Browser` wraps it with what the tests
need: open a console page and screenshot it, log in through the real form, read the visible text and ``<html
lang>``, run axe-core on the page.

Locally, a machine without ``chromium``/``chromedriver`` skips these tests with the reason; under CI (``CI`` set, as
every CI service sets it) a missing browser FAILS them instead: `.ci/run` installs both, so a skip there would hide
a broken install behind a green run.

Screenshots of every page visited are written to ``test-artifacts/console/`` at the repository root (ignored by git),
one PNG per step, named after the test and the step, so a person can look at what the tests saw.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE = REPO / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
#: axe-core impacts that fail a page (issue 12 "Show": an accessibility check of the main pages).
BLOCKING = ("serious", "critical")
WIDTH, HEIGHT = 1366, 900


def _missing(what: str, hint: str) -> None:
    """Skip locally; fail under CI, where `.ci/run` installs the browser and a skip would hide a broken install."""
    message = f"{what} is missing ({hint})"
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{message}: CI must run the console's browser tests", pytrace=False)
    pytest.skip(message)


def require_browser() -> None:
    """Chromium and its driver present (else skip / fail, see the module docstring)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            _missing(path, f"apt-get install -y {package}")


def require_axe() -> str:
    """axe-core's source, installed by `npm ci --prefix tests/node` (pinned in tests/node/package-lock.json)."""
    if not AXE.is_file():
        _missing(str(AXE), "npm ci --prefix tests/node")
    return AXE.read_text(encoding="utf-8")


@contextmanager
def chromium(tmp: Path) -> Iterator[Any]:
    """One headless Chromium with the system chromedriver, a fresh profile under ``tmp`` and downloads into
    ``tmp/downloads``; quit at the end."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},{HEIGHT}", "--lang=vi")
    for arg in (*flags, "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp / 'profile'}"):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP refusals are console messages
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(tmp / "chromedriver.log")), options=options)
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


class Browser:
    """The driver, the console's base URL and the screenshot folder of one test module."""

    def __init__(self, driver: Any, base: str, downloads: Path, module: str) -> None:
        self.driver = driver
        self.base = base
        self.downloads = downloads
        self.module = module
        self.test = "setup"
        self.step = 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        for old in SHOTS.glob(f"{module}--*.png"):
            old.unlink()  # only this run's pictures (the folder is never committed)

    # ------------------------------------------------------------------------------------------ pages

    def open(self, path: str) -> None:
        """Load a console path (``/console/...``) and screenshot it."""
        self.driver.get(self.base + path)
        self.shot()

    def shot(self, label: str = "") -> Path:
        """A PNG of the whole page now, named ``<module>--<test>--<step>-<path or label>.png``."""
        self.step += 1
        where = label or re.sub(r"^https?://[^/]+/", "", self.driver.current_url)
        name = f"{self.module}--{self.test}--{self.step:02d}-{_slug(where)}.png"
        path = SHOTS / name
        # The whole page, not only the window: the window is stretched to the page's height for the picture and
        # put back (DevTools' captureBeyondViewport leaves the viewport disturbed, and the next click misses).
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        self.driver.set_window_size(WIDTH, min(max(height + 140, HEIGHT), 8000))
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(WIDTH, HEIGHT)
        return path

    def path(self) -> str:
        """The current URL's path and query (``/console/...``)."""
        return re.sub(r"^https?://[^/]+", "", self.driver.current_url)

    def text(self) -> str:
        """What a person reads on the page (``innerText``: hidden elements left out, whitespace folded)."""
        return re.sub(r"\s+", " ", self.driver.find_element("tag name", "body").text).strip()

    def lang(self) -> str:
        return str(self.driver.find_element("tag name", "html").get_attribute("lang"))

    def fill(self, **fields: str) -> None:
        """Type into the form fields named ``fields`` (cleared first)."""
        for name, value in fields.items():
            element = self.driver.find_element("name", name)
            element.clear()
            element.send_keys(value)

    def submit(self, name: str = "") -> None:
        """Submit the form holding field ``name`` (else the page's main form) by its submit button, like a person;
        then screenshot the answer."""
        form = self.driver.find_element("name", name).find_element("xpath", "./ancestor::form") if name else (
            self.driver.find_element("css selector", "main form")
        )  # fmt: skip
        self.follow(form.find_element("css selector", "button[type=submit], input[type=submit]"))

    def click(self, css: str) -> None:
        """Click the element ``css`` selects (a link or a button that leads to another page)."""
        self.follow(self.driver.find_element("css selector", css))

    def click_link(self, text: str) -> None:
        """Follow the first link whose visible text contains ``text``."""
        self.follow(self.driver.find_element("partial link text", text))

    def follow(self, element: Any, timeout: float = 30) -> None:
        """Click ``element`` and wait until the next page has loaded (a click returns once the navigation has
        started, and a slow page would still show the old one); then screenshot it."""
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        old = self.driver.find_element("tag name", "html")
        element.click()
        WebDriverWait(self.driver, timeout).until(expected_conditions.staleness_of(old))
        WebDriverWait(self.driver, timeout).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        self.shot()

    # ------------------------------------------------------------------------------------------ sessions

    def login(self, who: str, password: str) -> None:
        """Log in through the real form (the login page, typed fields, the submit button)."""
        self.open("/console/login")
        self.fill(username=who, password=password)
        self.submit("username")

    def logout(self) -> None:
        self.follow(self.driver.find_element("css selector", "header form button[type=submit]"))

    def forget(self) -> None:
        """A new visitor: every cookie of the console dropped (the next page asks for a login)."""
        self.driver.delete_all_cookies()

    # ------------------------------------------------------------------------------------------ checks

    def console_log(self) -> list[dict[str, Any]]:
        """The browser console's messages since the last call (CSP refusals are reported there)."""
        return list(self.driver.get_log("browser"))

    def csp_refusals(self) -> list[str]:
        return [e["message"] for e in self.console_log() if "Content Security Policy" in e.get("message", "")]

    def axe(self, source: str) -> list[dict[str, Any]]:
        """axe-core's violations on the page now (WCAG 2.x A/AA and best practices), injected through WebDriver:
        ``execute_script`` is a DevTools evaluation, which the page's CSP does not govern (the page's own scripts
        stay under it)."""
        self.driver.set_script_timeout(60)
        self.driver.execute_script(source)
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(JSON.stringify(r.violations)), e => done(JSON.stringify({error: String(e)})));"
        )
        found = json.loads(result)
        assert not isinstance(found, dict), found
        return list(found)

    def download(self, suffix: str, timeout: float = 30) -> Path:
        """The file with ``suffix`` that appears in the downloads folder (Chromium writes ``.crdownload`` first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [p for p in self.downloads.iterdir() if p.name.endswith(suffix)]
            if done and not any(p.name.endswith(".crdownload") for p in self.downloads.iterdir()):
                return done[0]
            time.sleep(0.2)
        raise AssertionError(f"no {suffix} download in {self.downloads}: {sorted(os.listdir(self.downloads))}")

    def clear_downloads(self) -> None:
        shutil.rmtree(self.downloads, ignore_errors=True)
        self.downloads.mkdir(parents=True)


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v.get("impact") in BLOCKING]


def readable(page: str, violations: list[dict[str, Any]]) -> str:
    """axe-core's violations as lines a person can act on: rule, impact, help, and each offending element."""
    lines = [f"{page}: {len(violations)} accessibility violation(s)"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v.get('helpUrl', '')}>")
        for node in v.get("nodes", [])[:8]:
            lines.append(f"    {' '.join(node.get('target', []))}: {node.get('failureSummary', '').splitlines()[-1:]}")
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "page"


__all__ = ["SHOTS", "Browser", "blocking", "chromium", "readable", "require_axe", "require_browser"]
