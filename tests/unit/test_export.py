"""`sopflow export` of a known history, on SQLite and PostgreSQL, read back with pm4py: cases, activities,
timestamps, resources and lifecycles as seeded, the filters, no lead data, and one-sentence errors."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pm4py
import pytest

from sopflow.leads import LeadIn
from sopflow.store import runs
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from tests.unit.test_cli import cli
from tests.unit.test_versions import sop_dir  # noqa: F401  (the fixture: seed SOPs copied, the store configured)

UTC = timezone.utc
SOP = "lead-qualification"
DAY = datetime(2026, 11, 2, 9, tzinfo=UTC)


def answer(approver: str, decision: str = "approve") -> dict:
    """An approval step's result, as tasks/approval.py records it (its notes may name the lead)."""
    return {"decision": decision, "approver": approver, "notes": "Spoke to Ada Lovelace", "asks": 1}


# Each step: (step id, kind, status, result, minutes from the run's start to the step's start and to its end)
QUALIFIED = [("score_lead", "score", "completed", {"score": 80, "grade": "A"}, 0, 1),
             ("send_to_nurture", "update_lead", "skipped", {"reason": "condition not met: lead.score < 50"}, 1, 1),
             ("rep_qualification", "approval", "completed", answer("Alex Kim"), 2, 180),
             ("manager_approval", "approval", "completed", answer("Maria Lopez"), 180, 300),
             ("follow_up_email", "email", "completed", {"outbox_id": 1, "template": "follow_up"}, 300, 301),
             ("mark_qualified", "update_lead", "completed", {"status": "qualified"}, 301, 302)]
REJECTED = [*QUALIFIED[:3], ("manager_approval", "approval", "completed", answer("Maria Lopez", "reject"), 180, 240),
            ("disqualify", "update_lead", "completed", {"status": "disqualified"}, 240, 241)]
SEEDED_PATH = {("score_lead", "send_to_nurture"), ("send_to_nurture", "rep_qualification"),
               ("rep_qualification", "manager_approval"), ("manager_approval", "follow_up_email"),
               ("follow_up_email", "mark_qualified"), ("manager_approval", "disqualify")}
EXECUTED = {step for step, *_ in QUALIFIED + REJECTED}


def seed_run(sop_id: str, created: datetime, steps: list, state: str = "completed",
             outcome: str | None = "completed") -> tuple[str, str]:
    """A run of `sop_id` for a new lead (with a name, email and company), created and started at `created`."""
    with transaction() as session:
        lead = add_lead(session, LeadIn(email=f"lead-{uuid.uuid4().hex[:6]}@secret-mail.example",
                                        name="Ada Lovelace", company="Analytical Engines Ltd"))[0]
        run = runs.ensure_run(session, sop_id, lead.id)
        run.created_at, run.started_at, run.sop_version, run.state, run.outcome = created, created, 3, state, outcome
        for step_id, kind, status, result, start, end in steps:
            record = runs.record_step(session, run.id, step_id, kind, status, result,
                                      created + timedelta(minutes=start))
            record.ended_at = created + timedelta(minutes=end)
        return run.id, lead.id


@pytest.fixture
def history(sop_dir) -> dict[str, tuple[str, str]]:
    """Three lead-qualification runs (qualified; rejected at manager_approval; one from October), one not begun,
    and one prospecting run: name → (run id, lead id)."""
    return {
        "october": seed_run(SOP, DAY - timedelta(days=20), QUALIFIED),
        "qualified": seed_run(SOP, DAY, QUALIFIED),
        "rejected": seed_run(SOP, DAY + timedelta(days=1), REJECTED, outcome="rejected at manager_approval"),
        "pending": seed_run(SOP, DAY + timedelta(days=2), [], state="pending", outcome=None),
        "prospecting": seed_run("prospecting", DAY + timedelta(days=3),
                                [("nurture_content", "email", "completed", {}, 0, 2)]),
    }


def read_xes(path: Path, legacy: bool = False):
    """The log pm4py reads: its EventLog object (traces without events too), else its DataFrame."""
    return pm4py.read_xes(str(path), variant="iterparse", return_legacy_log_object=legacy)


def export(capsys, path: Path, log_format: str, *args: str) -> str:
    capsys.readouterr()  # pm4py's progress bars, when it read a log before
    code, out, err = cli(capsys, "export", "--format", log_format, *args, str(path))
    assert (code, err) == (0, ""), err
    return out


def test_xes_has_a_case_per_run_and_an_event_per_step_outcome(history, tmp_path, capsys):
    path = tmp_path / "runs.xes"
    out = export(capsys, path, "xes", "--sop", SOP)
    assert out == f"Wrote 4 runs, 17 events of {SOP} to {path} (XES)\n"

    log = read_xes(path, legacy=True)
    assert set(log.extensions) == {"Concept", "Time", "Lifecycle", "Organizational"}
    assert log.classifiers["Activity"] == ["concept:name"] and log.attributes["lifecycle:model"] == "standard"
    assert [trace.attributes["concept:name"] for trace in log] == [
        history[name][0] for name in ("october", "qualified", "rejected", "pending")]  # a run not begun: no events
    qualified, rejected = log[1], log[2]
    assert {key: qualified.attributes[key] for key in ("sopflow:sop", "sopflow:version", "sopflow:state",
                                                       "sopflow:outcome", "sopflow:lead")} == {
        "sopflow:sop": SOP, "sopflow:version": 3, "sopflow:state": "completed", "sopflow:outcome": "completed",
        "sopflow:lead": history["qualified"][1]}
    assert rejected.attributes["sopflow:outcome"] == "rejected at manager_approval"
    assert [(e["concept:name"], e["time:timestamp"], e["org:resource"], e["lifecycle:transition"], e["sopflow:kind"],
             e["sopflow:status"], e["sopflow:started"]) for e in qualified] == [
        (step, DAY + timedelta(minutes=end), result.get("approver", "sopflow"),
         "autoskip" if status == "skipped" else "complete", kind, status, DAY + timedelta(minutes=start))
        for step, kind, status, result, start, end in QUALIFIED]
    assert [(e["concept:name"], e["org:resource"]) for e in rejected][-2:] == [
        ("manager_approval", "Maria Lopez"), ("disqualify", "sopflow")]
    assert len(log[3]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() makes a file, not owner-only

    frame = read_xes(path)
    assert set(frame["concept:name"]) == EXECUTED
    assert str(frame["time:timestamp"].dt.tz) == "UTC"


def test_discovery_over_the_xes_finds_the_seeded_path(history, tmp_path, capsys):
    path = tmp_path / "runs.xes"
    export(capsys, path, "xes", "--sop", SOP)
    dfg, starts, ends = pm4py.discover_dfg(read_xes(path))
    assert set(dfg) == SEEDED_PATH
    assert dfg[("rep_qualification", "manager_approval")] == 3
    assert (starts, ends) == ({"score_lead": 3}, {"mark_qualified": 2, "disqualify": 1})


def test_ocel_relates_each_step_event_to_its_run_lead_and_approver(history, tmp_path, capsys):
    path = tmp_path / "runs.jsonocel"
    out = export(capsys, path, "ocel")
    assert out == f"Wrote 5 runs, 18 events of {SOP}, prospecting to {path} (OCEL 2.0)\n"

    ocel = pm4py.read_ocel2_json(str(path))
    assert set(ocel.events["ocel:activity"]) == EXECUTED | {"nurture_content"}
    objects = ocel.objects.set_index("ocel:oid")
    begun = [ids for name, ids in history.items() if name != "pending"]  # pm4py drops objects no event relates to
    assert set(objects.index[objects["ocel:type"] == "sop_run"]) == {run_id for run_id, _ in begun}
    assert set(objects.index[objects["ocel:type"] == "lead"]) == {lead_id for _, lead_id in begun}
    assert set(objects.index[objects["ocel:type"] == "person"]) == {"Alex Kim", "Maria Lopez"}
    run_id, lead_id = history["rejected"]
    assert (objects.loc[run_id, "sop"], objects.loc[run_id, "version"], objects.loc[run_id, "state"],
            objects.loc[run_id, "outcome"]) == (SOP, 3, "completed", "rejected at manager_approval")
    assert set(ocel.o2o[ocel.o2o["ocel:oid"] == run_id]["ocel:oid_2"]) == {lead_id}

    events = ocel.events.set_index("ocel:eid")
    decided = events.loc[f"{run_id}/manager_approval"]
    assert (decided["ocel:activity"], decided["ocel:timestamp"], decided["resource"], decided["kind"],
            decided["status"]) == ("manager_approval", DAY + timedelta(days=1, minutes=240), "Maria Lopez",
                                   "approval", "completed")
    skipped = events.loc[f"{run_id}/send_to_nurture"]
    assert (skipped["status"], skipped["resource"]) == ("skipped", "sopflow")
    related = ocel.relations[ocel.relations["ocel:eid"] == f"{run_id}/manager_approval"]
    assert dict(zip(related["ocel:qualifier"], related["ocel:oid"])) == {
        "case": run_id, "lead": lead_id, "approver": "Maria Lopez"}
    assert len(ocel.relations[ocel.relations["ocel:qualifier"] == "case"]) == 18  # every event has its run

    document = json.loads(path.read_text())
    assert {o["id"] for o in document["objects"] if o["type"] == "sop_run"} == {run for run, _ in history.values()}
    assert [t["name"] for t in document["objectTypes"]] == ["sop_run", "lead", "person"]
    assert {t["name"] for t in document["eventTypes"]} == EXECUTED | {"nurture_content"}


@pytest.mark.parametrize("log_format", ["xes", "ocel"])
def test_no_lead_data_leaves_the_store(history, tmp_path, capsys, log_format):
    path = tmp_path / f"runs.{log_format}"
    export(capsys, path, log_format)
    text = path.read_bytes()
    for secret in (b"secret-mail", b"@", b"Ada", b"Lovelace", b"Analytical", b"Spoke to"):
        assert secret not in text


def test_since_and_sop_filter_the_runs(history, tmp_path, capsys):
    path = tmp_path / "runs.xes"
    assert export(capsys, path, "xes", "--since", "2026-11-02", "--sop", SOP).startswith("Wrote 3 runs, 11 events")
    cases = {trace.attributes["concept:name"] for trace in read_xes(path, legacy=True)}
    assert cases == {history[name][0] for name in ("qualified", "rejected", "pending")}

    out = export(capsys, path, "ocel", "--since", "2026-11-05", "--sop", "prospecting")
    assert out == f"Wrote 1 run, 1 event of prospecting to {path} (OCEL 2.0)\n"
    assert export(capsys, path, "xes", "--since", "2027-01-01") == f"Wrote 0 runs, 0 events of no SOP to {path} (XES)\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--sop", "lead-qualifcation"], "sopflow export: no SOP is called 'lead-qualifcation' "
                                     "(did you mean 'lead-qualification'?); `sopflow validate` lists the SOPs\n"),
    (["--since", "2026-11-31"], "sopflow export: --since '2026-11-31' is not a day; give it as YYYY-MM-DD (UTC), "
                                "like 2026-11-01\n"),
    (["--since", "last week"], "sopflow export: --since 'last week' is not a day; give it as YYYY-MM-DD (UTC), "
                               "like 2026-11-01\n"),
])
def test_bad_filters_exit_2_with_one_sentence(sop_dir, tmp_path, capsys, args, message):
    path = tmp_path / "runs.xes"
    assert cli(capsys, "export", "--format", "xes", *args, str(path)) == (2, "", message)
    assert not path.exists()


def test_an_unwritable_file_exits_2_and_leaves_no_file(history, tmp_path, capsys):
    missing = tmp_path / "no-such-dir" / "runs.xes"
    code, out, err = cli(capsys, "export", "--format", "xes", str(missing))
    assert (code, out) == (2, "")
    assert err == (f"sopflow export: cannot write {missing} (No such file or directory); pick a file in an "
                   "existing directory you can write to\n")

    directory = tmp_path / "a-directory.xes"
    directory.mkdir()
    code, _, err = cli(capsys, "export", "--format", "ocel", str(directory))
    assert code == 2 and err.startswith(f"sopflow export: cannot write {directory} (Is a directory)")
    assert list(tmp_path.glob("**/.*.tmp")) == [] and list(directory.iterdir()) == []  # no temporary file left


def test_a_failed_export_keeps_the_file_it_would_have_replaced(history, tmp_path, capsys, monkeypatch):
    path = tmp_path / "runs.xes"
    path.write_text("the last good export")

    def broken(found, out):
        out.write("<log>")
        raise RuntimeError("the store went away")

    monkeypatch.setattr("sopflow.export_xes.write_xes", broken)
    code, _, err = cli(capsys, "export", "--format", "xes", str(path))
    assert code == 1 and "the store went away" in err
    assert path.read_text() == "the last good export"
    assert list(tmp_path.glob(".*.tmp")) == []
