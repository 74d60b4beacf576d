"""The HTML job aid opened from disk in chromium: its SVG diagram draws one node per step and nothing is fetched.

Needs no Prefect server: a context of its own from the package's `chromium_browser` (not the `page` fixture).
"""

from __future__ import annotations

import pytest

from sopflow.jobaid import job_aid_html
from sopflow.loader import load_sop
from sopflow.settings import PROJECT_ROOT

pytestmark = pytest.mark.browser


def test_job_aid_diagram_renders_offline(chromium_browser, tmp_path):
    loaded = load_sop(PROJECT_ROOT / "sop_definitions" / "lead-qualification.yaml")
    page_file = tmp_path / "lead-qualification.html"
    page_file.write_text(job_aid_html(loaded), encoding="utf-8")
    context = chromium_browser.new_context(viewport={"width": 1200, "height": 900})
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        nodes = page.locator("svg [data-step]")
        assert nodes.count() == len(loaded.sop.steps)
        steps = [nodes.nth(index).get_attribute("data-step") for index in range(nodes.count())]
        assert steps == [step.id for step in loaded.sop.steps]
        for index in range(nodes.count()):
            box = nodes.nth(index).bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0, steps[index]
        assert page.locator("svg path").count() > len(loaded.sop.steps)  # the edges are drawn too
    finally:
        context.close()
    assert requested == [page_file.as_uri()], "the job aid must load nothing but itself"
