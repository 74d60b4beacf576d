"""A warm parent compiles the SOPs once; a run forked after `sopflow deploy` of new or edited SOP files compiles
them again, and otherwise reuses what the parent compiled."""

from __future__ import annotations

import shutil

from flows.sops import flows_in, forget_if_changed, plans
from sopflow.settings import PROJECT_ROOT
from tests.server_fixture import FIXTURE_SOPS


def test_compiled_sops_are_kept_until_the_files_change(tmp_path):
    shutil.copytree(PROJECT_ROOT / "sop_definitions" / "templates", tmp_path / "templates")
    shutil.copy(FIXTURE_SOPS / "email-then-approval.yaml", tmp_path)
    forget_if_changed(tmp_path)
    first = flows_in(tmp_path)
    forget_if_changed(tmp_path)
    assert flows_in(tmp_path) is first  # nothing changed: nothing compiled again

    shutil.copy(PROJECT_ROOT / "sop_definitions" / "prospecting.yaml", tmp_path)  # a new SOP deployed
    edited = tmp_path / "email-then-approval.yaml"
    edited.write_text(edited.read_text().replace("prompt: Keep this lead?", "prompt: Keep this lead now?"))
    forget_if_changed(tmp_path)
    assert set(flows_in(tmp_path)) == {"email_then_approval", "prospecting"}
    step = next(s for s in plans(tmp_path)["email-then-approval"].sop.steps if s.id == "manager_check")
    assert step.prompt == "Keep this lead now?"
