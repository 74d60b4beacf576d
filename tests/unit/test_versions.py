"""SOP versions: each text stored once, runs pinned to the version they started on, no edits under a version
that ran, and the history and diff commands. The store is real: SQLite and PostgreSQL."""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.sops import plan_for_run
from sopflow.catalog import validate_report
from sopflow.cli import main
from sopflow.leads import LeadIn
from sopflow.loader import LoadedSop, load_sop
from sopflow.settings import PROJECT_ROOT
from sopflow.store import runs, versions
from sopflow.store.db import engine, transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import SopVersion

SOP_ID = "lead-qualification"


@pytest.fixture
def sop_dir(tmp_path, monkeypatch, store_url) -> Path:
    """A copy of the seed SOPs (lead-qualification at version 1), and the store (made, so validation checks against it) configured for sopflow."""
    directory = tmp_path / "sops"
    shutil.copytree(PROJECT_ROOT / "sop_definitions", directory)
    first = sop_file(directory)  # at version 1, so the versions in these tests read as its first ones
    first.write_text(re.sub(r"(?m)^version: \d+$", "version: 1", first.read_text(), count=1))
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(directory))
    engine(store_url)
    return directory


def sop_file(directory: Path) -> Path:
    return directory / f"{SOP_ID}.yaml"


def edit(directory: Path, *changes: tuple[str, str]) -> LoadedSop:
    """Apply text replacements to the SOP file (each must match) and load the result."""
    path = sop_file(directory)
    text = path.read_text()
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return load_sop(path)


RENAME = ("  - id: follow_up_email\n", "  - id: send_follow_up\n")
REMOVE = ("  - id: send_to_nurture\n    kind: update_lead\n    owner: ops\n    when: lead.score < 50\n"
          "    description: Below the threshold the lead goes to marketing nurture.\n    status: nurture\n"
          "    next: end\n\n", "")
BUMP = ("\nversion: 1\n", "\nversion: 2\n")
REWORD = ("Score the lead on fit", "Score every lead on fit")


def start_run(loaded: LoadedSop) -> str:
    """A lead whose run started on `loaded`, stored as the interpreter stores it when a run begins."""
    with transaction() as session:
        lead = add_lead(session, LeadIn(email=f"{uuid.uuid4().hex[:8]}@example.com", company="Acme"))[0]
        runs.begin_run(session, SOP_ID, lead.id, str(uuid.uuid4()), loaded.sop.version, loaded.content_hash)
        versions.record_version(session, SOP_ID, loaded.sop.version, loaded.content_hash, loaded.text)
        return lead.id


def stored_count(url: str) -> int:
    with transaction(url) as session:
        return session.scalar(select(func.count()).select_from(SopVersion))


# Recording

def test_recording_a_version_is_idempotent(store_url):
    for _ in range(2):
        with transaction(store_url) as session:
            first = versions.record_version(session, SOP_ID, 1, "a" * 64, "text a")
    assert stored_count(store_url) == 1 and (first.version, first.text) == (1, "text a")


def test_concurrent_recordings_store_one_version(store_url):
    barrier, ids, problems = threading.Barrier(8), [], []

    def record() -> None:
        try:
            barrier.wait()
            with transaction(store_url) as session:
                ids.append(versions.record_version(session, SOP_ID, 1, "b" * 64, "text b").id)
        except Exception as exc:  # noqa: BLE001  (the assertion below names it)
            problems.append(exc)

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == [] and len(set(ids)) == 1 and len(ids) == 8
    assert stored_count(store_url) == 1


def test_loading_the_sops_stores_each_text_once(sop_dir, store_url):
    for _ in range(2):
        assert validate_report([sop_dir], against_store=True).errors == []
    assert stored_count(store_url) == len(list(sop_dir.glob("*.yaml")))
    edit(sop_dir, REWORD)  # no runs yet: a new text under the same version is stored beside the old one
    assert validate_report([sop_dir], against_store=True).errors == []
    with transaction() as session:
        assert [v.version for v in versions.versions_of(session, SOP_ID)] == [1, 1]


# Pinning: the plan a run follows

def test_a_started_run_keeps_its_version_after_the_file_changes(sop_dir):
    old = load_sop(sop_file(sop_dir))
    lead_id = start_run(old)
    new = edit(sop_dir, RENAME, REMOVE, BUMP)

    plan, text = plan_for_run(sop_dir, SOP_ID, lead_id)
    assert (plan.version, plan.content_hash, text) == (1, old.content_hash, old.text)
    assert list(plan.steps) == [step.id for step in old.sop.steps]
    assert "follow_up_email" in plan.steps and "send_to_nurture" in plan.steps

    fresh, fresh_text = plan_for_run(sop_dir, SOP_ID, str(uuid.uuid4()))  # a lead whose run has not started
    assert (fresh.version, fresh.content_hash, fresh_text) == (2, new.content_hash, new.text)
    assert "send_follow_up" in fresh.steps and "send_to_nurture" not in fresh.steps


def test_a_run_whose_version_was_never_stored_goes_on_with_the_file(sop_dir):
    with transaction() as session:  # started before sopflow stored versions
        lead_id = add_lead(session, LeadIn(email="old@example.com"))[0].id
        runs.begin_run(session, SOP_ID, lead_id, str(uuid.uuid4()), 1, "c" * 64)
    plan, _text = plan_for_run(sop_dir, SOP_ID, lead_id)
    assert plan.content_hash == load_sop(sop_file(sop_dir)).content_hash


# Validation

def test_new_content_under_a_version_that_ran_is_an_error_at_its_version_line(sop_dir):
    start_run(load_sop(sop_file(sop_dir)))
    edit(sop_dir, REWORD)
    errors = validate_report([sop_dir], against_store=True).errors
    line = sop_file(sop_dir).read_text().splitlines().index("version: 1") + 1
    assert [str(e) for e in errors] == [
        f"{sop_file(sop_dir)}:{line}: version: version 1 already has runs with other content; raise version to 2"]
    with transaction() as session:  # the refused text is not stored
        assert len(versions.versions_of(session, SOP_ID)) == 1


def test_raising_the_version_or_having_no_runs_is_no_error(sop_dir):
    assert validate_report([sop_dir], against_store=True).errors == []  # stored, no runs
    edit(sop_dir, REWORD)
    assert validate_report([sop_dir], against_store=True).errors == []  # changed, but the version never ran
    start_run(load_sop(sop_file(sop_dir)))
    edit(sop_dir, RENAME, BUMP)
    assert validate_report([sop_dir], against_store=True).errors == []


def test_validate_exits_1_naming_the_version_to_use(sop_dir, capsys):
    start_run(load_sop(sop_file(sop_dir)))
    edit(sop_dir, BUMP)
    start_run(load_sop(sop_file(sop_dir)))
    edit(sop_dir, REWORD)  # version 2 ran with other content: the next free version is 3
    assert main(["validate"]) == 1
    assert "version 2 already has runs with other content; raise version to 3" in capsys.readouterr().err


def test_validate_makes_no_store_and_needs_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SOPFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(PROJECT_ROOT / "sop_definitions"))
    assert main(["validate"]) == 0
    assert not (tmp_path / "home" / "sopflow.db").exists()
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:9/nowhere")  # unreachable
    assert main(["validate"]) == 0, capsys.readouterr().err


# The history and diff commands

@pytest.fixture
def two_versions(sop_dir) -> str:
    """v1 with one run, then v2 (a step renamed, one removed) on file; the lead id of the v1 run."""
    lead_id = start_run(load_sop(sop_file(sop_dir)))
    edit(sop_dir, RENAME, REMOVE, BUMP)
    return lead_id


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_lists_versions_with_their_runs(two_versions, capsys):
    import json

    code, out, err = cli(capsys, "history", SOP_ID, "--json")
    rows = json.loads(out)
    assert code == 0, err
    assert [(r["version"], r["runs"], r["on_file"]) for r in rows] == [(1, 1, False), (2, 0, True)]
    assert all(len(r["content_hash"]) == 64 and r["first_seen"] for r in rows)
    code, out, _ = cli(capsys, "history", SOP_ID)
    header, _rule, first, second = out.splitlines()
    assert header.split() == ["Version", "Hash", "First", "seen", "(UTC)", "Runs", "On", "file", "Reviews"]
    assert first.split()[0] == "v1" and first.split()[-3:] == ["1", "-", "-"]
    assert second.split()[0] == "v2" and second.split()[-3:] == ["0", "yes", "-"]


def test_diff_shows_what_changed_between_versions(two_versions, capsys):
    code, out, err = cli(capsys, "diff", SOP_ID, "1", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"--- {SOP_ID} v1 (") and lines[1].startswith(f"+++ {SOP_ID} v2 (")
    assert {"-version: 1", "+version: 2", "-  - id: follow_up_email", "+  - id: send_follow_up",
            "-  - id: send_to_nurture"} <= set(lines)
    assert cli(capsys, "diff", SOP_ID, "2", "2")[:2] == (0, "")


@pytest.mark.parametrize("args, message", [
    (["history", "lead-qualificaton"], "sopflow history: no SOP called 'lead-qualificaton' has stored versions "
                                       "(did you mean 'lead-qualification'?)"),
    (["diff", "lead-qualificaton", "1", "2"], "sopflow diff: no SOP called 'lead-qualificaton' has stored versions "
                                              "(did you mean 'lead-qualification'?)"),
    (["diff", SOP_ID, "1", "7"], "sopflow diff: lead-qualification has no version 7; stored versions: 1, 2"),
])
def test_unknown_sops_and_versions_fail_in_one_sentence(two_versions, capsys, args, message):
    assert cli(capsys, *args) == (1, "", message + "\n")
