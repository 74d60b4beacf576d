"""Rosters with email addresses, `notify:` and approval steps' `overdue:` actions: old files load as before, new
fields validate, and every mistake is reported as FILE:LINE: FIELD.PATH: reason."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml

from sopflow.errors import SopInvalid
from sopflow.jobaid import job_aid_html, job_aid_markdown
from sopflow.loader import load_sop
from sopflow.schema import ApprovalStep, Decide, Escalate, Remind
from sopflow.schema_file import SCHEMA_FILE
from sopflow.settings import PROJECT_ROOT
from sopflow.sla import due_actions, plan_words
from tests.approval_samples import CHANNEL, SLA_SOP

SOP_FILES = sorted([*(PROJECT_ROOT / "sop_definitions").glob("*.yaml"),
                    *(PROJECT_ROOT / "tests" / "fixtures" / "sops").glob("*.yaml")])


@pytest.mark.parametrize("path", SOP_FILES, ids=lambda p: p.name)
def test_every_existing_sop_file_loads_as_before(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPFLOW_TASKS", "enrich_company=tests.registered_tasks:enrich_company")
    (tmp_path / "templates").symlink_to(PROJECT_ROOT / "sop_definitions" / "templates")  # the fixtures use them
    loaded = load_sop(sla_file(tmp_path, path.read_text()))
    raw = yaml.safe_load(path.read_text())
    assert loaded.content_hash == hashlib.sha256(path.read_text().encode()).hexdigest()  # the text is untouched
    for role, people in raw["roles"].items():
        assert loaded.sop.people(role) == people and loaded.sop.roles[role] == people  # names stay names
        assert loaded.sop.emails(role) == {}
    assert loaded.sop.notify == {}
    assert all(not step.overdue for step in loaded.sop.steps if isinstance(step, ApprovalStep))


def sla_file(tmp_path: Path, text: str = SLA_SOP) -> Path:
    path = tmp_path / "sla-approval.yaml"
    path.write_text(text)
    return path


def test_a_roster_mixes_names_and_people_with_addresses(tmp_path: Path) -> None:
    sop = load_sop(sla_file(tmp_path)).sop
    assert sop.people("rep") == ["Priya Shah", "Alex Kim", "Sam Noemail"]
    assert sop.emails("rep") == {"Priya Shah": "priya@sales.test", "Alex Kim": "alex@sales.test"}
    assert sop.notify == {"rep": CHANNEL}
    step = sop.steps[0]
    assert isinstance(step, ApprovalStep)
    assert [type(action) for action in step.overdue] == [Remind, Escalate, Decide]
    with pytest.raises(KeyError):
        sop.people("sales")


def test_the_published_schema_takes_people_notify_and_overdue() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    sop = json.loads(json.dumps(yaml.safe_load(SLA_SOP), default=str))
    jsonschema.validate(sop, schema)
    sop["roles"]["rep"][0]["phone"] = "1"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(sop, schema)


def test_a_job_aid_names_the_people_and_never_their_addresses(tmp_path: Path) -> None:
    loaded = load_sop(sla_file(tmp_path))
    for render in (job_aid_markdown, job_aid_html):
        text = render(loaded)
        assert "Priya Shah" in text and "Maria Lopez" in text and "@sales.test" not in text


# (what to replace in SLA_SOP, with what; line, field path, part of the reason)
INVALID = [
    ("priya@sales.test", "priya-at-sales", 7, "roles.rep.0.email", "must be an email address"),
    ("{name: Priya Shah, email: priya@sales.test}", "{name: Priya Shah}", 7, "roles.rep.0.email",
     "required field is missing"),
    ("maria@sales.test}", "maria@sales.test, phone: 1}", 8, "roles.manager.0.phone", "unknown key 'phone'"),
    (f"rep: {CHANNEL}", "rep: Slack/reps", 9, "notify.rep", "must name a Prefect notification block"),
    (f"rep: {CHANNEL}", f"rep: {CHANNEL}, sales: slack-webhook/sales", 9, "notify.sales",
     "role 'sales' is not defined"),
    ("    due_within: 1h\n", "", 19, "steps.0.overdue", "the step has no due_within"),
    ("{action: remind, after: 1m}", "{action: nag, after: 1m}", 21, "steps.0.overdue.0.action",
     "unknown overdue action 'nag'; expected one of decide, escalate, remind"),
    ("{action: remind, after: 1m}", "{after: 1m}", 21, "steps.0.overdue.0", "needs an action"),
    ("{action: remind, after: 1m}", "{action: remind, after: soon}", 21, "steps.0.overdue.0.after",
     "must be a duration like 30m"),
    ("{action: remind, after: 1m}", "{action: remind, after: 5m}", 22, "steps.0.overdue.1.after",
     "after 2m is earlier than the action before it (5m)"),
    ("to: manager", "to: managr", 22, "steps.0.overdue.1.to", "role 'managr' is not defined (did you mean 'manager'?)"),
    ("to: manager", "to: rep", 22, "steps.0.overdue.1.to", "the step's own role 'rep' is asked already"),
    ("      - {action: escalate, to: manager, after: 2m}\n      - {action: decide, decision: reject, after: 3m, "
     "reason: No answer within three minutes}\n",
     "      - {action: decide, decision: reject, after: 3m, reason: No answer within three minutes}\n"
     "      - {action: escalate, to: manager, after: 4m}\n", 22, "steps.0.overdue.1.action", "comes last and once"),
    ("required: false", "required: true", 23, "steps.0.overdue.2.action",
     "cannot fill the step's required inputs (budget)"),
    ("decision: reject", "decision: maybe", 23, "steps.0.overdue.2.decision", "'approve' or 'reject'"),
]


@pytest.mark.parametrize(("old", "new", "line", "field", "reason"), INVALID,
                         ids=[f"{case[3]}:{case[4][:20]}" for case in INVALID])
def test_a_mistake_is_reported_at_its_line(tmp_path: Path, old: str, new: str, line: int, field: str,
                                           reason: str) -> None:
    assert old in SLA_SOP
    path = sla_file(tmp_path, SLA_SOP.replace(old, new, 1))
    with pytest.raises(SopInvalid) as info:
        load_sop(path)
    found = [e for e in info.value.errors if (e.line, e.field) == (line, field) and reason in e.reason]
    assert found, "\n".join(map(str, info.value.errors))
    assert str(found[0]).startswith(f"{path}:{line}: {field}: ")


def test_due_actions_count_from_the_due_time_and_read_as_a_plan(tmp_path: Path) -> None:
    sop = load_sop(sla_file(tmp_path)).sop
    step = sop.steps[0]
    assert isinstance(step, ApprovalStep)
    due = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    assert due_actions(step, None, due + timedelta(days=9)) == []
    assert due_actions(step, due, due + timedelta(seconds=59)) == []
    taken = due_actions(step, due, due + timedelta(minutes=2))
    assert [(d.index, d.action.action, d.due_at - due) for d in taken] == [
        (0, "remind", timedelta(minutes=1)), (1, "escalate", timedelta(minutes=2))]
    assert plan_words(step, sop.people) == (
        "If unanswered by the due time: 1m after it, a reminder; 2m after it, manager (Maria Lopez) is asked too "
        "and may answer from then on; 3m after it, sopflow answers reject (No answer within three minutes).")
