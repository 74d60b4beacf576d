"""A run follows the version of its SOP it started on, even when the file changes while it waits for an approval."""

from __future__ import annotations

from pathlib import Path

import pytest

from sopflow.cli.approvals import send_answer
from sopflow.loader import content_hash, load_sop
from sopflow.store import versions
from tests.support import (add_lead, answer, environment, finished, flow_state, run_cli, sopflow, step_records,
                           wait_for, waiting_ask)

pytestmark = pytest.mark.server

MANAGER_STEP = ("  - id: manager_approval\n    kind: approval\n    owner: manager\n"
                "    description: The sales manager reviews the qualification before the lead moves on.\n"
                "    prompt: Approve this qualified lead to move to the next stage?\n    due_within: 1d\n"
                "    on_reject: disqualify\n\n")


def raised(text: str, version: int) -> str:
    """lead-qualification at `version` with the manager's approval removed, a step renamed and the version raised."""
    for old, new in [(MANAGER_STEP, ""), ("  - id: follow_up_email\n", "  - id: send_follow_up\n"),
                     (f"\nversion: {version}\n", f"\nversion: {version + 1}\n")]:
        assert old in text, old
        text = text.replace(old, new)
    return text


def answer_as_the_ui_does(up, lead_id: str, step: str, approver: str) -> None:
    """Approve through the Prefect API, as the UI's form does: `sopflow approve` still reads the step from the
    SOP file, where the raised version no longer has it."""
    row = wait_for(lambda: waiting_ask(up, lead_id, step), f"{step} to wait for an answer")
    wait_for(lambda: flow_state(up, row["run_id"]) == "PAUSED", "the flow run to be suspended")
    with environment(up.env):
        send_answer(row["run_id"], {"decision": "approve", "approver": approver, "notes": ""})


def test_a_run_resumed_after_the_sop_changed_finishes_on_its_own_version(sopflow_up):
    path = Path(sopflow_up.env["SOPFLOW_SOP_DIR"]) / "lead-qualification.yaml"
    original = path.read_text()
    version = load_sop(path).sop.version
    lead = add_lead(sopflow_up)
    wait_for(lambda: waiting_ask(sopflow_up, lead["id"], "rep_qualification"), "the run to ask the rep")
    try:
        path.write_text(raised(original, version))
        sopflow(sopflow_up.env, "validate")  # exits 0: the raised version is valid, and is stored
        answer(sopflow_up, lead["id"], "rep_qualification", "Alex Kim")
        answer_as_the_ui_does(sopflow_up, lead["id"], "manager_approval", "Maria Lopez")  # only the run's version asks
        run = finished(sopflow_up, lead["id"])
        path.write_text(original.replace("sales manager reviews", "sales manager checks"))  # same version, new words
        refused = run_cli(sopflow_up.env, "validate", check=False)
    finally:
        path.write_text(original)  # the other tests share this SOP directory

    assert (run.outcome, run.sop_version, run.sop_hash) == ("completed", version, content_hash(original))
    assert list(step_records(sopflow_up, run.id)) == ["score_lead", "send_to_nurture", "rep_qualification",
                                                      "manager_approval", "follow_up_email", "mark_qualified"]
    with sopflow_up.store() as session:
        stored = {(v.version, v.content_hash) for v in versions.versions_of(session, "lead-qualification")}
    assert {(version, content_hash(original)), (version + 1, content_hash(raised(original, version)))} <= stored
    assert refused.returncode == 1
    assert (f"{path}:7: version: version {version} already has runs with other content; raise version to "
            f"{version + 2}") in refused.stderr  # the next version after the raised one, already stored
    diff = sopflow(sopflow_up.env, "diff", "lead-qualification", str(version), str(version + 1))
    assert "-  - id: manager_approval" in diff and "+  - id: send_follow_up" in diff
