"""The audit run's KPI chart, an image artifact, shows as a picture in the Prefect UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support import flow_state, start_deployment, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.server]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_the_kpi_chart_artifact_is_an_image_in_the_prefect_ui(sopflow_up, page):
    flow_run_id = start_deployment(sopflow_up, "sopflow-audit/weekly")
    wait_for(lambda: flow_state(sopflow_up, flow_run_id) == "COMPLETED", "the audit run to complete")
    with sopflow_up.api() as api:
        artifact = api.post("/artifacts/filter", json={"artifacts": {
            "flow_run_id": {"any_": [flow_run_id]}, "key": {"any_": ["kpi-lead-qualification"]}}}).json()[0]
    page.goto(f"{sopflow_up.ui_url}/artifacts/artifact/{artifact['id']}")  # where the run's Artifacts tab leads
    chart = page.get_by_role("img", name="qualified leads per quarter, last 12 periods")
    expect(chart).to_be_visible()
    size = chart.evaluate("img => img.complete ? [img.naturalWidth, img.naturalHeight] : null")
    assert size == [720, 320]  # decoded and drawn: a broken image has no natural size
    expect(page.get_by_role("heading", name="KPI: qualified leads per quarter (lead-qualification)")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "kpi-chart.png"))
