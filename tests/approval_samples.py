"""An SOP whose approval notifies its people by email and in a channel, and acts when it is overdue."""

from __future__ import annotations

import uuid
from pathlib import Path

from sopflow.leads import LeadIn
from sopflow.loader import load_sop_text
from sopflow.plan import Plan, compile_plan
from sopflow.store import runs, versions
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from tasks.approval import ApprovalForm, Refused, answer, approver_of
from tasks.records import Result, StepCall

CHANNEL = "custom-webhook/reps-channel"
# Priya and Alex have addresses, Sam has none; the manager is asked when it is overdue. Line numbers matter:
# the invalid variants in the tests replace lines of this text.
SLA_SOP = f"""\
id: sla-approval
name: An approval with notices and an SLA
version: 1
owner: Test Owner
objective: {{statement: Answer approvals on time, metric: approvals answered in time, baseline: 0.5, target: 0.9, deadline: 2030-01-01, measure: {{kind: sla_adherence, step: approve_lead, per: month}}}}
roles:
  rep: [{{name: Priya Shah, email: priya@sales.test}}, {{name: Alex Kim, email: alex@sales.test}}, Sam Noemail]
  manager: [{{name: Maria Lopez, email: maria@sales.test}}]
notify: {{rep: {CHANNEL}}}
trigger: {{event: new_lead}}
review: {{every: 12w, owner: manager}}
steps:
  - id: approve_lead
    kind: approval
    owner: rep
    prompt: Work this lead?
    due_within: 1h
    inputs:
      budget: {{label: Budget (EUR), type: number, minimum: 0, required: false}}
    overdue:
      - {{action: remind, after: 1m}}
      - {{action: escalate, to: manager, after: 2m}}
      - {{action: decide, decision: reject, after: 3m, reason: No answer within three minutes}}
  - id: mark_working
    kind: update_lead
    owner: rep
    when: steps.approve_lead.decision == "approve"
    status: working
"""
REPS = {"Priya Shah": "priya@sales.test", "Alex Kim": "alex@sales.test"}
MANAGER = {"Maria Lopez": "maria@sales.test"}


def sla_plan(directory: Path) -> Plan:
    return compile_plan(load_sop_text(SLA_SOP, directory / "sla-approval.yaml"))


def started_run(plan: Plan, name: str = "Ada <b>Byron</b>", company: str = "Analytical Engines") -> StepCall:
    """A lead and a started run of `plan` at its approval step (the store must be configured)."""
    with transaction() as session:
        lead = add_lead(session, LeadIn(email=f"{uuid.uuid4().hex[:8]}@lead.test", name=name, company=company,
                                        title="Head of Sales"))[0]
        run = runs.begin_run(session, plan.sop.id, lead.id, str(uuid.uuid4()), plan.version, plan.content_hash)
        versions.record_version(session, plan.sop.id, plan.version, plan.content_hash, SLA_SOP)
        return StepCall(plan, run.id, lead.id, "approve_lead")


def answered(call: StepCall, ask_id: int, form: ApprovalForm) -> Result:
    """What the run makes of an answer, as flows.approval does, without Prefect: {"status": "refused", "reason"} for
    one from off the roster (recorded), else the step's result from the `answer` task's function."""
    try:
        approver = approver_of(call, ask_id, form)
    except Refused as refused:
        return {"status": "refused", "reason": str(refused)}
    return answer.fn(call, ask_id, form, approver).result()
