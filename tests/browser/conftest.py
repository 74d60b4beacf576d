"""Browser fixtures: Debian's chromium driven by Playwright (sync API) against the real `sopflow up`.

One chromium for the browser tests (`chromium_browser`); a fresh context and page per test (`page`), with a
1400x1000 viewport so screenshots are readable. `sopflow up` protects the Prefect UI with a login:
the browser tests log in once through the UI's login page (`logged_in`) and every page starts from there.
Playwright never downloads a browser here: the browser is `/usr/bin/chromium` from Debian (`make test` installs it); without it these tests fail
saying so. When a test fails, its page's screenshot and HTML are kept in the test's tmp_path and
named in the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.ui import TIMEOUT_MS, VIEWPORT, log_in

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(scope="package")
def chromium_browser():
    """Debian's chromium, launched once for the browser tests and closed after them: while Playwright's sync API
    runs, this thread has an event loop running, so later tests' asyncio.run() and Prefect calls would fail."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; `make test` does). "
                    "These tests never download a browser.")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="package")
def logged_in(chromium_browser, sopflow_up, tmp_path_factory) -> Path:
    """The browser storage of someone logged in to the Prefect UI that `sopflow up` serves (taken once)."""
    from playwright.sync_api import expect

    context = chromium_browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    log_in(page, sopflow_up.ui_url, sopflow_up.login)
    expect(page.get_by_placeholder("admin:pass")).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"/login"))
    state = tmp_path_factory.mktemp("browser") / "logged-in.json"
    context.storage_state(path=str(state))
    context.close()
    return state


@pytest.fixture
def page(chromium_browser, logged_in, request, tmp_path) -> Iterator:
    """A fresh browser context and page for one test, logged in; on failure its screenshot and HTML are kept."""
    context = chromium_browser.new_context(viewport=VIEWPORT, storage_state=str(logged_in))
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        if request.node.stash.get(_FAILED, False):
            try:
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                (tmp_path / "failure.html").write_text(page.content())
                request.node.add_report_section("teardown", "browser", f"page at failure: {tmp_path}/failure.png, "
                                                f"failure.html (url {page.url})")
            except Exception as error:  # the page may be gone; the test's own failure is what matters
                request.node.add_report_section("teardown", "browser", f"no failure screenshot: {error}")
        context.close()
