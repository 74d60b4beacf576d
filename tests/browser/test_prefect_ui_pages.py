"""The Prefect UI's own pages open without an error on the server `sopflow up` starts."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.server]


@pytest.mark.parametrize("path, heading", [
    ("/artifacts", "Artifacts"), ("/blocks", "Blocks"), ("/automations", "Automations"),
    ("/deployments", "Deployments"), ("/runs", "Runs"),
])
def test_prefect_ui_pages_open_without_an_error(sopflow_up, page, path, heading):
    refused = []
    page.on("response", lambda r: refused.append(f"{r.status} {r.url}")
            if "/api/" in r.url and r.status >= 400 else None)
    page.goto(f"{sopflow_up.ui_url}{path}")
    expect(page.get_by_role("banner").get_by_role("navigation")).to_contain_text(heading)
    page.wait_for_load_state("networkidle")
    assert refused == []
    expect(page.get_by_text("An error occurred")).to_have_count(0)
