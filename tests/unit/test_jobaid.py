"""Job aids (`sopflow show`): golden files of every shipped SOP, the diagram's graph, and the command.

The golden files are tests/golden/jobaid/<sop id>.md and .html. After a deliberate change to the job aid
(or to a shipped SOP or its templates), regenerate them and review the diff:

    SOPFLOW_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_jobaid.py -q -p no:cacheprovider
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sopflow.cli import main
from sopflow.jobaid import END, SKIP, START, artifact_key, diagram, job_aid_html, job_aid_markdown
from sopflow.loader import load_sop
from sopflow.plan import compile_plan
from sopflow.settings import PROJECT_ROOT

SOP_DIR = PROJECT_ROOT / "sop_definitions"
GOLDEN_DIR = PROJECT_ROOT / "tests" / "golden" / "jobaid"
SOP_FILES = sorted(SOP_DIR.glob("*.yaml"))
RENDERERS = {"md": job_aid_markdown, "html": job_aid_html}


def _loaded(sop_id: str):
    return load_sop(SOP_DIR / f"{sop_id}.yaml")


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
@pytest.mark.parametrize("path", SOP_FILES, ids=[path.stem for path in SOP_FILES])
def test_job_aid_matches_its_golden_file(path: Path, fmt: str):
    loaded = load_sop(path)
    text = RENDERERS[fmt](loaded)
    golden = GOLDEN_DIR / f"{loaded.sop.id}.{fmt}"
    if os.environ.get("SOPFLOW_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing; write it with SOPFLOW_UPDATE_GOLDEN=1 (see this module's docstring)"
    assert text == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if the change is meant, regenerate with SOPFLOW_UPDATE_GOLDEN=1")


def test_every_shipped_sop_has_golden_files_and_no_others():
    expected = {f"{path.stem}.{fmt}" for path in SOP_FILES for fmt in RENDERERS}
    assert {path.name for path in GOLDEN_DIR.iterdir()} == expected


def test_the_same_sop_renders_the_same_bytes_twice():
    loaded = _loaded("lead-qualification")
    assert job_aid_html(loaded) == job_aid_html(loaded)
    assert job_aid_markdown(loaded) == job_aid_markdown(_loaded("lead-qualification"))


def _edges(sop_id: str) -> dict[tuple[str, str], str]:
    graph = diagram(compile_plan(_loaded(sop_id)))
    return {(edge.source, edge.target): edge.label for edge in graph.edges}


def test_diagram_has_a_node_per_step_in_order_between_start_and_end():
    loaded = _loaded("lead-qualification")
    graph = diagram(compile_plan(loaded))
    assert [node.id for node in graph.nodes] == [START, *(step.id for step in loaded.sop.steps), END]
    assert [node.id for node in graph.steps] == [step.id for step in loaded.sop.steps]


def test_diagram_edges_for_approve_reject_next_and_condition_skip():
    edges = _edges("lead-qualification")
    assert edges[(START, "score_lead")] == ""
    assert edges[("send_to_nurture", END)] == "next"  # `next: end`
    assert edges[("send_to_nurture", "rep_qualification")] == SKIP  # `when` false: on to the following step
    assert edges[("rep_qualification", "manager_approval")] == "approve"
    assert edges[("rep_qualification", "disqualify")] == "reject"  # `on_reject`
    assert edges[("manager_approval", "disqualify")] == "reject"
    assert edges[("mark_qualified", END)] == "next"
    assert edges[("disqualify", END)] == ""


def test_diagram_joins_labels_of_edges_to_the_same_place_and_labels_waits():
    edges = _edges("post-sale-follow-up")
    assert edges[("settle_in", "satisfaction_check")] == "after 14d"
    assert edges[("escalation", END)] == f"approve / reject / {SKIP}"


@pytest.mark.parametrize("path", SOP_FILES, ids=[path.stem for path in SOP_FILES])
def test_markdown_holds_a_mermaid_flowchart_with_every_step(path: Path):
    loaded = load_sop(path)
    markdown = job_aid_markdown(loaded)
    block = re.search(r"```mermaid\n(.*?)\n```", markdown, re.S)
    assert block and block.group(1).startswith("flowchart TD")
    for step in loaded.sop.steps:
        assert re.search(rf"^    step_{step.id}\[", block.group(1), re.M), step.id
        assert f"### {loaded.sop.steps.index(step) + 1}. {step.id} ({step.kind})" in markdown


@pytest.mark.parametrize("path", SOP_FILES, ids=[path.stem for path in SOP_FILES])
def test_html_is_self_contained_with_one_svg_node_per_step(path: Path):
    loaded = load_sop(path)
    html = job_aid_html(loaded)
    assert not re.search(r"<(link|script)\b", html, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html, re.I)  # CSS
    assert "@import" not in html
    nodes = re.findall(r'<g class="step [a-z_]+" data-step="([a-z0-9_]+)">', html)
    assert nodes == [step.id for step in loaded.sop.steps]


def test_job_aid_shows_roles_checklist_sla_condition_and_a_sample_email():
    markdown = job_aid_markdown(_loaded("lead-qualification"))
    assert "| manager | Maria Lopez |" in markdown
    assert "- [ ] Budget - is there budget this year?" in markdown
    assert "- **Due within:** 2d" in markdown
    assert "- **Only when:** `lead.score < 50`" in markdown
    assert "**Subject:** Next steps for Example Co" in markdown
    assert "Hi Sam," in markdown


def test_sample_email_reads_earlier_approval_inputs():
    markdown = job_aid_markdown(_loaded("negotiation-closing"))
    assert "Discount:     10%" in markdown


def test_html_escapes_what_it_shows():
    html = job_aid_html(_loaded("lead-qualification"))
    assert "when lead.score &lt; 50" in html and "lead.score < 50" not in html


def test_artifact_keys_are_lowercase_letters_digits_and_dashes():
    assert artifact_key("lead-qualification") == "job-aid-lead-qualification"
    assert re.fullmatch(r"[a-z0-9-]+", artifact_key("Odd_ID 2"))


@pytest.fixture
def sop_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(SOP_DIR))


def test_show_prints_the_markdown_job_aid(sop_dir, capsys):
    assert main(["show", "lead-qualification"]) == 0
    assert capsys.readouterr().out == job_aid_markdown(_loaded("lead-qualification"))


def test_show_writes_html_to_a_file(sop_dir, capsys, tmp_path):
    target = tmp_path / "aid.html"
    assert main(["show", "prospecting", "--format", "html", "--output", str(target)]) == 0
    assert target.read_text() == job_aid_html(_loaded("prospecting"))
    assert capsys.readouterr().out == f"wrote {target}\n"


def test_show_names_the_closest_sop_for_an_unknown_id(sop_dir, capsys):
    assert main(["show", "lead-qualificaton"]) == 1
    err = capsys.readouterr().err
    assert err == ("sopflow show: no SOP is called 'lead-qualificaton' (did you mean 'lead-qualification'?); "
                   "`sopflow validate` lists the SOPs\n")


def test_show_version_names_a_version_the_store_does_not_hold(sop_dir, capsys):
    assert main(["show", "lead-qualification", "--version", "99"]) == 1
    assert "has no stored version 99" in capsys.readouterr().err


def test_show_version_renders_the_stored_text(sop_dir, capsys):
    from sopflow.store import versions
    from sopflow.store.db import transaction

    path = SOP_DIR / "lead-qualification.yaml"
    old = re.sub(r"(?m)^version: \d+$", "version: 7", path.read_text())
    old = old.replace("prompt: Approve this qualified lead", "prompt: Sign off this lead")
    with transaction() as session:
        versions.record_version(session, "lead-qualification", 7, "old-hash", old)
    assert main(["show", "lead-qualification", "--version", "7"]) == 0
    out = capsys.readouterr().out
    assert "version 7" in out and "**Decide:** Sign off this lead" in out
