"""The doors a browser sees: the Prefect UI asks for the login `sopflow up` keeps; the intake's API docs work offline."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.ui import TIMEOUT_MS, VIEWPORT, log_in

pytestmark = [pytest.mark.browser, pytest.mark.server]


@pytest.fixture
def stranger(chromium_browser):
    """A page of someone who has not logged in."""
    context = chromium_browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def test_the_prefect_ui_asks_for_the_login_and_refuses_a_wrong_one(sopflow_up, stranger):
    runs_seen = []
    stranger.on("response", lambda r: runs_seen.append(r.status) if "/api/flow_runs/filter" in r.url else None)
    log_in(stranger, f"{sopflow_up.ui_url}/runs", "sopflow:not-the-password")
    expect(stranger.get_by_text("Authentication failed.").first).to_be_visible()
    expect(stranger.get_by_placeholder("admin:pass")).to_be_visible()
    assert set(runs_seen) <= {401}  # nothing about any run reached the page

    stranger.get_by_placeholder("admin:pass").fill(sopflow_up.login)
    stranger.get_by_role("button", name="Login").click()
    expect(stranger.get_by_placeholder("admin:pass")).to_be_hidden()
    expect(stranger).not_to_have_url(re.compile(r"/login"))


def test_the_intake_api_docs_render_with_nothing_from_the_internet(sopflow_up, stranger):
    outside = []
    stranger.on("request", lambda r: outside.append(r.url) if not r.url.startswith(sopflow_up.intake_url) else None)
    stranger.goto(f"{sopflow_up.intake_url}/docs")
    expect(stranger.locator(".swagger-ui .title").first).to_contain_text("sopflow intake")
    operation = stranger.locator(".opblock-summary-path", has_text=re.compile(r"^/leads$"))
    expect(operation).to_be_visible()
    operation.click()
    expect(stranger.get_by_text("Store a lead once per email address").first).to_be_visible()
    assert outside == [], outside
