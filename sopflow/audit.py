"""Audits: every run of a window compared with the SOP version it followed, finding where practice left the SOP.

A run is audited when it was created in the window [since, until) or is still open (pending, running,
waiting) at `until`. Its step records are replayed against the plan of the version it followed (the
stored text of its content hash): steps only jump forward, so each record must be the step the previous
one leads to (its `next`, `on_reject` when rejected, the following step when skipped). The findings:

- skipped_step: a step on the run's path has no record, or was recorded as skipped though it has no condition;
- out_of_order: a step ran after a step that follows it in the SOP, or off the path the earlier steps set;
- sla_missed: a step with `due_within` took longer, from its start (an approval: its first ask) to its end;
- off_roster: an approval accepted from someone not on the step role's roster in the version followed;
- overdue: an approval still unanswered after its due time;
- no_consent: an email sent to a lead marked do-not-contact, or queued after the lead unsubscribed;
- failed: the run failed, or Prefect says its flow run crashed, failed or was cancelled while the store
  says it is under way;
- stuck: an open run without progress for longer than its SOP allows: STUCK_AFTER past its claim, its last
  step or its wait's wake time (an approval's allowance is its due time, reported as overdue; an approval
  without `due_within` may wait for ever).

Adherence is the share of clean items: runs without findings (per SOP), step executions without findings
(per SOP step: its records, plus the steps found missing or waiting past due) and accepted approval answers
without findings (per person, with how many were verified: given through the person's own signed link; the
others hold a name as typed). The overdue actions housekeeping took in the window (remind, escalate, decide)
are listed with the audit.

The audit reads the store with a few set-based SELECTs and replays each run in Python over light rows: step
durations come from SQL, timestamps stay as the driver reads them until a finding needs one (`moment`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, DateTime, Select, and_, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from sopflow import settings
from sopflow.loader import LoadedSop
from sopflow.plan import Plan, compile_plan
from sopflow.roster import SOPFLOW
from sopflow.schema import END, ApprovalStep
from sopflow.state_messages import utc
from sopflow.store import approval_links, sla
from sopflow.store.models import Approval, ApprovalLink, Lead, OutboxEmail, SopRun, StepRecord, Wait
from sopflow.store.sla import ActionTaken
from sopflow.versioning import stored_sop

KINDS = {
    "skipped_step": "required step skipped",
    "out_of_order": "step out of order",
    "sla_missed": "SLA missed",
    "off_roster": "answered off the roster",
    "overdue": "approval waiting past due",
    "no_consent": "email without consent",
    "failed": "run failed or crashed",
    "stuck": "run stuck",
}
OPEN_STATES = ("pending", "running", "waiting")
STUCK_AFTER = timedelta(hours=1)
PREFECT_ENDED = ("CRASHED", "FAILED", "CANCELLED")
SENT = ("sending", "sent", "unconfirmed")


@dataclass(frozen=True)
class Finding:
    kind: str
    sop_id: str
    sop_version: int | None
    sop_run_id: str | None
    step_id: str | None
    person: str | None
    evidence: str
    occurred_at: datetime | None


@dataclass
class AuditResult:
    since: datetime
    until: datetime
    sop_id: str | None
    runs: int = 0
    findings: list[Finding] = field(default_factory=list)
    adherence: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    sla_actions: list[ActionTaken] = field(default_factory=list)  # taken by housekeeping in the window

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, "sop": self.sop_id, "runs": self.runs,
                "findings": [asdict(finding) for finding in self.findings], "adherence": self.adherence,
                "sla_actions": [asdict(action) for action in self.sla_actions]}


class _Run(NamedTuple):
    """A run as the audit reads it: timestamps as the driver reads them until a finding needs one (`moment`)."""

    id: str
    sop_id: str
    sop_version: int | None
    sop_hash: str | None
    state: str
    outcome: str | None
    flow_run_id: str | None
    created: str | datetime  # as the driver reads it: see `moment`
    started: str | datetime | None


class _Record(NamedTuple):
    """A step record as the audit reads it: `seconds` is how long the step took."""

    run_id: str
    step_id: str
    status: str
    decision: str | None
    approver: str | None
    seconds: float
    started: str | datetime
    ended: str | datetime


def moment(raw: str | datetime) -> datetime:
    """A timestamp read raw (`_raw`), in UTC."""
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(raw)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def hours(delta: timedelta) -> str:
    """A duration as a person reads it in evidence: "26.5 h"."""
    return f"{round(delta.total_seconds() / 3600, 1):g} h"


def _after(previous: _Record | None) -> str:
    return f"after {previous.step_id}" if previous else "first"


def _in_scope(query: Select, since: datetime, until: datetime, sop_id: str | None) -> Select:
    """Only rows of runs audited: created in [since, until), or still open; of `sop_id` when given."""
    query = query.where(or_(and_(SopRun.created_at >= since, SopRun.created_at < until), SopRun.state.in_(OPEN_STATES)))
    return query.where(SopRun.sop_id == sop_id) if sop_id else query


class _Auditor:
    """Collects one audit's findings and the items each adherence rate counts."""

    def __init__(self, session: Session, sops: Mapping[str, LoadedSop], until: datetime) -> None:
        self.session, self.sops, self.until = session, sops, until
        self.findings: list[Finding] = []
        self.plans: dict[tuple[str, str | None], Plan | None] = {}
        self.unrecorded: set[tuple[str, str, str]] = set()  # (SOP, run, step) found missing or waiting: no record
        self.records: Counter[tuple[str, str]] = Counter()  # step records per (SOP, step)
        self.answers: Counter[str] = Counter()  # accepted answers per person
        self.rosters: dict[tuple[int, str], tuple[list[str] | None, set[str]]] = {}  # per plan and step
        self.actions: defaultdict[tuple[str, str], list[ActionTaken]] | None = None  # per (run, step)

    def plan(self, sop_id: str, key: str | None) -> Plan | None:
        """The plan of the version with content hash `key`; the file's for None (runs from before versions were
        stored) or a version whose text is not stored; None when neither is there."""
        if (sop_id, key) not in self.plans:
            current = self.sops.get(sop_id)
            loaded = None
            if key is not None:
                path = current.path if current else settings.sop_dir() / f"{sop_id}.yaml"
                loaded = stored_sop(self.session, sop_id, key, path)
            loaded = loaded or current
            self.plans[sop_id, key] = compile_plan(loaded) if loaded else None
        return self.plans[sop_id, key]

    def off_roster(self, plan: Plan, step_id: str, approver: str) -> list[str] | None:
        """The roster of approval step `step_id` when `approver` is not on it; None when on it (or no approval)."""
        key = (id(plan), step_id)
        if key not in self.rosters:
            step = plan.steps[step_id].step
            roster = plan.sop.people(step.owner) if isinstance(step, ApprovalStep) else None
            self.rosters[key] = (roster, {person.casefold() for person in roster or ()})
        roster, names = self.rosters[key]
        return None if roster is None or approver.casefold() in names else roster

    def allowed_by_sla(self, run: _Run, plan: Plan, step_id: str) -> set[str]:
        """Who else the step's overdue actions let answer (casefolded): an escalation's role, sopflow's decision."""
        if self.actions is None:  # read once: overdue actions are few
            self.actions = defaultdict(list)
            for action in sla.actions_taken(self.session):
                self.actions[action.sop_run_id, action.step_id].append(action)
        allowed = set()
        for action in self.actions[run.id, step_id]:
            if action.action == "escalate" and action.detail.get("to") in plan.sop.roles:
                allowed.update(person.casefold() for person in plan.sop.people(action.detail["to"]))
            elif action.action == "decide":
                allowed.add(SOPFLOW.casefold())
        return allowed

    def find(self, kind: str, run: _Run, step_id: str | None, evidence: str, occurred_at: datetime | None,
             person: str | None = None) -> None:
        self.findings.append(Finding(kind, run.sop_id, run.sop_version, run.id, step_id, person, evidence,
                                     occurred_at))

    def missing(self, run: _Run, step_id: str, records: list[_Record]) -> None:
        """Count step `step_id`, found skipped, as executed in adherence when the run has no record of it."""
        if all(record.step_id != step_id for record in records):
            self.unrecorded.add((run.sop_id, run.id, step_id))

    def path(self, run: _Run, plan: Plan, records: list[_Record]) -> None:
        """skipped_step and out_of_order: `records` (in the order they began) against the plan's path."""
        order, expected, previous = plan.order, plan.first, None
        for record in records:
            planned = plan.steps.get(record.step_id)
            if planned is None:
                self.find("out_of_order", run, record.step_id, f"{record.step_id} is not a step of "
                          f"v{plan.version}", moment(record.started))
                continue
            if previous is not None and order[record.step_id] <= order[previous.step_id]:
                self.find("out_of_order", run, record.step_id, f"{record.step_id} ran {_after(previous)}, which follows it "
                          f"in v{plan.version}", moment(record.started))
                continue
            if record.step_id != expected:
                if expected != END and order[record.step_id] > order[expected]:
                    self.find("skipped_step", run, expected, f"{expected} never ran: the run went from "
                              f"{previous.step_id if previous else 'its start'} to {record.step_id}",
                              moment(record.started))
                    self.missing(run, expected, records)
                else:
                    leads_to = "ends the run" if expected == END else f"leads to {expected}"
                    self.find("out_of_order", run, record.step_id, f"{record.step_id} ran {_after(previous)}, which "
                              f"{leads_to} in v{plan.version}", moment(record.started))
            if record.status == "skipped" and planned.condition is None:  # then held to where running it leads
                self.find("skipped_step", run, record.step_id, f"{record.step_id} was recorded as skipped but "
                          "has no condition", moment(record.started))
            if record.status == "skipped" and planned.condition is not None:
                expected = planned.following
            elif record.decision == "reject":
                expected = planned.on_reject or END
            else:
                expected = planned.on_done
            previous = record
        if run.state == "completed" and expected != END:
            self.find("skipped_step", run, expected, f"the run completed without running {expected}", None)
            self.missing(run, expected, records)

    def steps(self, run: _Run, plan: Plan, records: list[_Record]) -> None:
        """sla_missed and off_roster, step by step; counts the records and answers adherence divides by."""
        for record in records:
            self.records[run.sop_id, record.step_id] += 1
            planned = plan.steps.get(record.step_id)
            if planned is None or record.status != "completed":
                continue
            if record.approver is not None:
                self.answers[record.approver] += 1
            due = planned.due_within
            if due is not None and record.seconds > due.total_seconds() - 1:  # the timestamps decide
                started, ended = moment(record.started), moment(record.ended)
                if ended - started > due:
                    self.find("sla_missed", run, record.step_id, f"{record.step_id} took {hours(ended - started)} "
                              f"from {utc(started)}; due within {planned.step.due_within}", ended, record.approver)
            roster = self.off_roster(plan, record.step_id, record.approver) if record.approver else None
            if roster is not None and record.approver.casefold() not in self.allowed_by_sla(run, plan, record.step_id):
                self.find("off_roster", run, record.step_id, f"answered by {record.approver}, who is not on the "
                          f"{planned.step.owner} roster of v{plan.version} ({', '.join(roster)})",
                          moment(record.ended), record.approver)

    def state(self, run: _Run, records: list[_Record], prefect_state: str | None, open_wait: datetime | None,
              open_ask: bool) -> None:
        """failed and stuck."""
        if run.state == "failed":
            self.find("failed", run, None, f"the run failed: {run.outcome or 'no reason recorded'}", None)
            return
        if run.state not in OPEN_STATES:
            return
        if prefect_state in PREFECT_ENDED:
            self.find("failed", run, None, f"Prefect flow run {run.flow_run_id} is {prefect_state.title()} while "
                      f"the store says the run is {run.state}", None)
            return
        if open_ask:
            return  # an approval's allowance is its due time: overdue reports it
        if run.state == "pending":
            since = moment(run.created)
            what = f"claimed at {utc(since)} and not started"
        elif open_wait is not None:
            since, what = open_wait, f"its wait ended at {utc(open_wait)} and it was not woken"
        else:
            since = max(moment(raw) for raw in [run.started or run.created, *(record.ended for record in records)])
            what = f"no step has ended since {utc(since)}"
        if self.until - since > STUCK_AFTER:
            self.find("stuck", run, records[-1].step_id if records else None,
                      f"{what} ({hours(self.until - since)}; allowed {hours(STUCK_AFTER)})", since)


Scope = Callable[[Select], Select]


def _raw(column: Any, label: str) -> ColumnElement[Any]:
    """A timestamp column as the driver reads it, without sopflow's conversion per row: ISO text from SQLite, a
    datetime from PostgreSQL; `moment` reads either when a finding needs it."""
    return type_coerce(column, DateTime(timezone=True)).label(label)


def _seconds(session: Session) -> ColumnElement[float]:
    """How long each step record took, in seconds, in the store's dialect."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(StepRecord.ended_at) - func.julianday(StepRecord.started_at)) * 86400
    return func.extract("epoch", StepRecord.ended_at - StepRecord.started_at)


def _runs(session: Session, scope: Scope) -> list[_Run]:
    query = select(SopRun.id, SopRun.sop_id, SopRun.sop_version, SopRun.sop_hash, SopRun.state, SopRun.outcome,
                   SopRun.flow_run_id, _raw(SopRun.created_at, "created"), _raw(SopRun.started_at, "started"))
    return list(map(_Run._make, session.connection().execute(scope(query).order_by(SopRun.id))))


def _records(session: Session, scope: Scope) -> dict[str, list[_Record]]:
    """The audited runs' step records, each run's in the order they began."""
    approval = StepRecord.kind == "approval"  # only answers hold a decision and an approver
    query = (select(StepRecord.sop_run_id, StepRecord.step_id, StepRecord.status,
                    case((approval, StepRecord.result["decision"].as_string())).label("decision"),
                    case((approval, StepRecord.result["approver"].as_string())).label("approver"),
                    _seconds(session).label("seconds"), _raw(StepRecord.started_at, "started"),
                    _raw(StepRecord.ended_at, "ended"))
             .join(SopRun, SopRun.id == StepRecord.sop_run_id)
             .order_by(StepRecord.sop_run_id, StepRecord.started_at, StepRecord.id))
    rows = map(_Record._make, session.connection().execute(scope(query)).all())
    return {run_id: list(group) for run_id, group in groupby(rows, key=itemgetter(0))}


def _verified_answers(session: Session, scope: Scope) -> dict[str, int]:
    """How many of each person's accepted answers in the audited runs came through their own signed link
    (verified); the others hold a name as typed in the Prefect UI or `sopflow approve` (unverified)."""
    query = (select(Approval.approver, func.count(func.distinct(Approval.id)))
             .join(SopRun, SopRun.id == Approval.sop_run_id)
             .join(ApprovalLink, approval_links.verifies(ApprovalLink, Approval))
             .where(Approval.accepted.is_(True)).group_by(Approval.approver))
    return dict(session.execute(scope(query)).tuples().all())


def _open_asks(session: Session, scope: Scope) -> list[tuple[Any, ...]]:
    query = (select(Approval.sop_run_id, Approval.step_id, Approval.role, Approval.asked_at, Approval.due_by)
             .join(SopRun, SopRun.id == Approval.sop_run_id)
             .where(Approval.answered_at.is_(None), SopRun.state == "waiting"))
    return list(session.execute(scope(query)))


def _open_waits(session: Session, scope: Scope) -> dict[str, datetime]:
    query = (select(Wait.sop_run_id, Wait.wake_at).join(SopRun, SopRun.id == Wait.sop_run_id)
             .where(Wait.done_at.is_(None)))
    return dict(session.execute(scope(query)).tuples().all())


def _emails_without_consent(session: Session, scope: Scope) -> list[tuple[Any, ...]]:
    query = (select(OutboxEmail.sop_run_id, OutboxEmail.step_id, OutboxEmail.lead_id, OutboxEmail.created_at,
                    OutboxEmail.sent_at, Lead.do_not_contact, Lead.unsubscribed_at)
             .join(SopRun, SopRun.id == OutboxEmail.sop_run_id).join(Lead, Lead.id == OutboxEmail.lead_id)
             .where(OutboxEmail.status.in_(SENT),
                    or_(Lead.do_not_contact.is_(True), Lead.unsubscribed_at <= OutboxEmail.created_at)))
    return list(session.execute(scope(query)))


def audit(session: Session, sops: Mapping[str, LoadedSop], since: datetime, until: datetime,
          sop_id: str | None = None, prefect_states: Mapping[str, str] | None = None) -> AuditResult:
    """Audit the runs of [since, until) and the open ones (of `sop_id` only, when given); see the module docstring.

    `sops`: the SOPs on file, for runs whose version is not stored; `prefect_states`: the state type
    (CRASHED, ...) of open runs' flow runs, by flow run id, when Prefect was asked.
    """
    prefect_states = prefect_states or {}

    def scope(query: Select) -> Select:
        return _in_scope(query, since, until, sop_id)

    auditor = _Auditor(session, sops, until)
    runs = {run.id: run for run in _runs(session, scope)}
    records = _records(session, scope)
    waits = _open_waits(session, scope)
    open_asks = _open_asks(session, scope)
    asking = {row[0] for row in open_asks}
    for run in runs.values():
        plan, done = auditor.plan(run.sop_id, run.sop_hash), records.get(run.id, [])
        if plan is not None:
            auditor.path(run, plan, done)
            auditor.steps(run, plan, done)
        auditor.state(run, done, prefect_states.get(run.flow_run_id or ""), waits.get(run.id), run.id in asking)
    for run_id, step_id, role, asked_at, due_by in open_asks:
        if due_by is not None and due_by < until:
            auditor.find("overdue", runs[run_id], step_id, f"{step_id} has waited for the {role} role since "
                         f"{utc(asked_at)}; due {utc(due_by)}, {hours(until - due_by)} ago", due_by)
            auditor.unrecorded.add((runs[run_id].sop_id, run_id, step_id))
    for run_id, step_id, lead_id, queued_at, sent_at, do_not_contact, unsubscribed_at in _emails_without_consent(
            session, scope):
        why = "who is marked do-not-contact" if do_not_contact else f"who unsubscribed at {utc(unsubscribed_at)}"
        auditor.find("no_consent", runs[run_id], step_id, f"{step_id} emailed lead {lead_id}, {why}",
                     sent_at or queued_at)
    result = AuditResult(since, until, sop_id, len(runs), auditor.findings,
                         sla_actions=[a for a in sla.actions_taken(session, since=since) if a.sop_run_id in runs])
    result.adherence = _adherence(auditor, Counter(run.sop_id for run in runs.values()))
    verified = _verified_answers(session, scope)
    for person, row in result.adherence["person"].items():
        row.update(verified=verified.get(person, 0), unverified=row["audited"] - verified.get(person, 0))
    return result


def _rate(audited: int, flagged: int) -> dict[str, Any]:
    clean = max(audited - flagged, 0)
    return {"audited": audited, "clean": clean, "rate": clean / audited if audited else None}


def _adherence(auditor: _Auditor, per_sop: Mapping[str, int]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per SOP (runs), per SOP step (executions: records, and steps found missing or waiting) and per person
    (accepted answers): audited, clean and rate."""
    people, steps = auditor.answers, Counter({f"{sop}/{step}": count for (sop, step), count in auditor.records.items()})
    steps.update(f"{sop_id}/{step_id}" for sop_id, _, step_id in auditor.unrecorded)
    flagged_runs: defaultdict[str, set[str]] = defaultdict(set)
    flagged_steps: defaultdict[str, set[tuple[str | None, str]]] = defaultdict(set)
    flagged_people: defaultdict[str, set[tuple[str | None, str | None]]] = defaultdict(set)
    for finding in auditor.findings:
        if finding.sop_run_id:
            flagged_runs[finding.sop_id].add(finding.sop_run_id)
        if finding.step_id:
            flagged_steps[f"{finding.sop_id}/{finding.step_id}"].add((finding.sop_run_id, finding.step_id))
        if finding.person:
            flagged_people[finding.person].add((finding.sop_run_id, finding.step_id))
    return {
        "sop": {sop: _rate(count, len(flagged_runs[sop])) for sop, count in sorted(per_sop.items())},
        "step": {key: _rate(count, len(flagged_steps[key])) for key, count in sorted(steps.items())},
        "person": {name: _rate(count, len(flagged_people[name])) for name, count in sorted(people.items())},
    }
