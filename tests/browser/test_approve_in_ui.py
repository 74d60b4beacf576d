"""Answering approval steps in the Prefect UI's "Resume" form, end to end in a real browser.

Leads are added with the real CLI; the lead-qualification run stops at its approval steps
(`suspend_flow_run(wait_for_input=ApprovalForm)`); the tests open the run in the Prefect UI
that `sopflow up` serves, press Resume, read the lead's context in the form and answer it
as an approver would. Then they check what the store kept and what the UI shows.

How the UI's form is driven (Prefect 3.8.8, the default Vue UI):
- the form is a `role=dialog` titled "Resume Flow Run"; its first Markdown block is the
  step's description (sopflow/forms.py); the fields come from ApprovalForm's JSON schema;
- a field is the `.schema-form-property` whose label is "Decision", "Approver" or
  "Notes (Optional)". The labels' `for` attributes point at nothing, so `get_by_label` cannot
  find the inputs; `approver` and `notes` are textareas;
- `decision` is an enum select (the UI's p-select). In headless chromium a mouse click on a
  p-select opens its listbox and it closes again at once (the run page's "Level" select does the
  same), so the tests open it from the keyboard (ArrowDown on the focused control, as a keyboard
  user would), then click the `role=option`;
- Submit posts `/api/flow_runs/<id>/resume` with the typed input; once Prefect accepts it the
  dialog closes and a "Flow run resumed" toast appears.

Screenshots for the docs are written to docs/screenshots/ (resume-form.png, completed-run.png).
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from sopflow.store.models import Approval, Lead
from tests.support import add_lead, answer, finished, flow_state, qualify, sop_run, sopflow, step_records, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.server]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
REP_PROMPT = "Needs assessment done - is this lead qualified?"
MANAGER_PROMPT = "Approve this qualified lead to move to the next stage?"
SUBMIT_ATTEMPTS = 3
RESUMED_TIMEOUT_MS = 90_000  # from Submit to the run's next pause or its end: the runner starts a new process


class ResumeForm:
    """The Prefect UI's "Resume Flow Run" dialog for a suspended run."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialog = page.get_by_role("dialog").filter(has_text="Resume Flow Run")
        self.description = self.dialog.locator(".p-modal__body > .markdown-renderer")

    def field(self, label: str) -> Locator:
        name = self.page.locator(".schema-form-property__label", has_text=re.compile(rf"^{label}\b"))
        return self.dialog.locator(".schema-form-property").filter(has=name)

    def choose_decision(self, decision: str) -> None:
        control = self.field("Decision").locator(".p-select-button__control")
        control.focus()
        control.press("ArrowDown")  # opens the listbox; see the module docstring for why not a click
        listbox = self.page.get_by_role("listbox")
        expect(listbox).to_be_visible()
        listbox.get_by_role("option", name=decision, exact=True).click()
        expect(listbox).to_be_hidden()
        expect(control).to_have_text(decision)

    def fill(self, decision: str, approver: str, notes: str) -> None:
        self.choose_decision(decision)
        self.field("Approver").locator("textarea").fill(approver)
        self.field("Notes").locator("textarea").fill(notes)
        expect(self.field("Approver").locator("textarea")).to_have_value(approver)

    def submit(self) -> None:
        """Press Submit until Prefect accepts the resume, then see the dialog close and the toast.

        Prefect's own SQLite database sometimes answers the resume with "database is locked"
        (the UI then shows "Oops. Something went wrong." and keeps the form); the resume is one
        transaction, so pressing Submit again is safe, and what a user would do. Each such retry
        is reported as a warning.
        """
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            is_resume = lambda r: r.request.method == "POST" and r.url.endswith("/resume")  # noqa: E731
            with self.page.expect_response(is_resume) as sent:
                self.dialog.get_by_role("button", name="Submit", exact=True).click()
            response = sent.value
            body = response.text()
            if response.ok and response.json().get("status") == "ACCEPT":
                break
            warnings.warn(f"Prefect did not accept the resume (attempt {attempt}/{SUBMIT_ATTEMPTS}): "
                          f"HTTP {response.status} {body[:300]}", stacklevel=2)
        else:
            pytest.fail(f"Prefect refused the resume {SUBMIT_ATTEMPTS} times; last: HTTP {response.status} {body}")
        expect(self.dialog).to_be_hidden()
        expect(self.page.get_by_text("Flow run resumed", exact=True).first).to_be_visible()  # the UI renders it twice


def run_page_state(page: Page) -> Locator:
    """The state badge in the flow run page's heading (not the task runs' badges)."""
    return page.locator(".page-heading-flow-run .state-badge")


def approval_row(up, lead_id: str, step: str, ask: int = 0) -> dict | None:
    """The waiting ask as `sopflow approvals --json` lists it (with its due time and UI link), if any."""
    rows = json.loads(sopflow(up.env, "approvals", "--json"))
    return next((r for r in rows if r["lead_id"] == lead_id and r["step"] == step and r["ask"] == ask), None)


def asked(up, lead_id: str, step: str, ask: int, sop: str) -> dict | None:
    """The waiting ask; fails at once, saying what the run did instead, if the run ended without asking."""
    row = approval_row(up, lead_id, step, ask)
    run = None if row else sop_run(up, lead_id, sop)
    if run is not None and run.state == "completed":
        records = step_records(up, run.id)
        with up.store() as session:
            lead = session.get(Lead, lead_id)
            stored = (lead.score, lead.grade, lead.status)
        pytest.fail(f"the run ended ({run.outcome}) without asking {step} (ask {ask}): steps "
                    f"{[(r.step_id, r.status) for r in records.values()]}; its score_lead scored "
                    f"{records['score_lead'].result.get('score') if 'score_lead' in records else None}, "
                    f"the lead row holds score, grade, status {stored}")
    return row


def open_resume_form(
    page: Page, up, lead_id: str, step: str, prompt: str, ask: int = 0, sop: str = "lead-qualification"
) -> tuple[dict, ResumeForm]:
    """Wait until `sopflow approvals` lists the ask, open the run's page in the UI, press Resume."""
    row = wait_for(lambda: asked(up, lead_id, step, ask, sop), f"{step} ask {ask} to wait for an answer")
    wait_for(lambda: flow_state(up, row["run_id"]) == "PAUSED", "the flow run to be suspended")
    assert row["url"] == f"{up.ui_url}/runs/flow-run/{row['run_id']}"  # the link `sopflow approvals` gives
    page.goto(row["url"])
    expect(run_page_state(page)).to_have_text("Suspended")
    page.get_by_role("button", name="Resume", exact=True).click()
    form = ResumeForm(page)
    expect(form.dialog).to_be_visible()
    expect(form.description).to_contain_text(prompt)
    return row, form


def due_text(row: dict) -> str:
    return f"Due by: {datetime.fromisoformat(row['due_by']):%Y-%m-%d %H:%M} UTC"


def approvals_of(up, lead_id: str) -> list[Approval]:
    run = sop_run(up, lead_id)
    with up.store() as session:
        return list(session.scalars(select(Approval).where(Approval.sop_run_id == run.id).order_by(Approval.id)))


@pytest.fixture(scope="module")
def leads(sopflow_up) -> dict[str, dict]:
    """This module's leads, added up front so their runs reach the rep's ask while earlier tests run."""
    return {
        "approved": add_lead(sopflow_up, name="Grace Hopper", company="Harbor Analytics", title="VP Sales"),
        "rejected": add_lead(sopflow_up, name="Linus Pauling", company="Vitamin Labs"),
        "outsider": add_lead(sopflow_up, name="Hedy Lamarr", company="Frequency Hopping Inc"),
    }


def test_rep_and_manager_approve_in_the_ui(sopflow_up, leads, page: Page):
    lead = leads["approved"]

    row, form = open_resume_form(page, sopflow_up, lead["id"], "rep_qualification", REP_PROMPT)
    scored = step_records(sopflow_up, sop_run(sopflow_up, lead["id"]).id)["score_lead"].result
    assert "Senior title" in [item["rule"] for item in scored["breakdown"]]
    expect(form.description).to_contain_text("Grace Hopper, VP Sales at Harbor Analytics")  # who, then the score
    expect(form.description).to_contain_text(f"Score: {scored['score']} (grade {scored['grade']})")
    for item in scored["breakdown"]:  # and every row of its breakdown
        cells = f"{item['rule']} {item['points']:+d}"
        expect(form.description.get_by_role("row", name=cells, exact=True)).to_be_visible()
    expect(form.description).to_contain_text(due_text(row))
    expect(form.description).to_contain_text("Who may answer (rep): Alex Kim, Priya Shah")
    form.fill("approve", "Alex Kim", "Budget approved for Q1; CFO signs")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "resume-form.png"))
    form.submit()

    row, form = open_resume_form(page, sopflow_up, lead["id"], "manager_approval", MANAGER_PROMPT)
    expect(form.description).to_contain_text("Grace Hopper")
    expect(form.description).to_contain_text("Who may answer (manager): Maria Lopez")
    expect(form.description).to_contain_text(due_text(row))
    form.fill("approve", "Maria Lopez", "Good fit; go ahead")
    form.submit()

    run = finished(sopflow_up, lead["id"])
    assert run.outcome == "completed"
    answers = approvals_of(sopflow_up, lead["id"])
    assert [(a.step_id, a.ask, a.decision, a.approver, a.notes, a.accepted) for a in answers] == [
        ("rep_qualification", 0, "approve", "Alex Kim", "Budget approved for Q1; CFO signs", True),
        ("manager_approval", 0, "approve", "Maria Lopez", "Good fit; go ahead", True),
    ]
    assert list(step_records(sopflow_up, run.id))[-2:] == ["follow_up_email", "mark_qualified"]
    with sopflow_up.store() as session:
        assert session.get(Lead, lead["id"]).status == "qualified"

    page.goto(f"{sopflow_up.ui_url}/runs/flow-run/{run.flow_run_id}")
    expect(run_page_state(page)).to_have_text("Completed", timeout=RESUMED_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Resume", exact=True)).to_have_count(0)
    page.get_by_role("tablist").get_by_text("Task Runs", exact=True).click()
    for step in ("mark_qualified", "follow_up_email", "manager_approval", "rep_qualification"):
        expect(page.get_by_role("link", name=re.compile(rf"^{re.escape(step)}"))).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "completed-run.png"))


def test_rep_rejects_in_the_ui(sopflow_up, leads, page: Page):
    lead = leads["rejected"]

    _, form = open_resume_form(page, sopflow_up, lead["id"], "rep_qualification", REP_PROMPT)
    expect(form.description).to_contain_text("Linus Pauling")
    form.fill("reject", "Priya Shah", "No budget until 2028")
    form.submit()

    run = finished(sopflow_up, lead["id"])
    assert run.outcome == "rejected at rep_qualification"
    steps = list(step_records(sopflow_up, run.id))
    assert steps == ["score_lead", "send_to_nurture", "rep_qualification", "disqualify"]
    answers = approvals_of(sopflow_up, lead["id"])
    assert [(a.step_id, a.decision, a.approver, a.notes, a.accepted) for a in answers] == [
        ("rep_qualification", "reject", "Priya Shah", "No budget until 2028", True)]
    with sopflow_up.store() as session:
        assert session.get(Lead, lead["id"]).status == "disqualified"
    page.goto(f"{sopflow_up.ui_url}/runs/flow-run/{run.flow_run_id}")
    expect(run_page_state(page)).to_have_text("Completed", timeout=RESUMED_TIMEOUT_MS)


def test_answer_from_outside_the_roster_is_refused_and_asked_again(sopflow_up, leads, page: Page):
    lead = leads["outsider"]

    _, form = open_resume_form(page, sopflow_up, lead["id"], "rep_qualification", REP_PROMPT)
    expect(form.description).not_to_contain_text("Previous answer not accepted")
    form.fill("approve", "Bob Outsider", "I think it's fine")
    form.submit()

    second, form = open_resume_form(page, sopflow_up, lead["id"], "rep_qualification", REP_PROMPT, ask=1)
    assert second["ask"] == 1
    first = approvals_of(sopflow_up, lead["id"])[0]
    assert (first.ask, first.approver, first.decision, first.accepted) == (0, "Bob Outsider", "approve", False)
    assert "not on the rep roster" in first.refusal
    assert "rep_qualification" not in step_records(sopflow_up, sop_run(sopflow_up, lead["id"]).id)
    expect(form.description).to_contain_text(
        "Previous answer not accepted: 'Bob Outsider' is not on the rep roster (Alex Kim, Priya Shah)")
    form.fill("approve", "alex kim", "Checked with the buyer")  # the roster matches names ignoring case
    form.submit()

    wait_for(lambda: approval_row(sopflow_up, lead["id"], "manager_approval"), "the run to go on to the manager")
    run = sop_run(sopflow_up, lead["id"])
    assert step_records(sopflow_up, run.id)["rep_qualification"].result["approver"] == "Alex Kim"
    assert [(a.ask, a.approver, a.accepted) for a in approvals_of(sopflow_up, lead["id"])][:2] == [
        (0, "Bob Outsider", False), (1, "Alex Kim", True)]
    answer(sopflow_up, lead["id"], "manager_approval", "Maria Lopez", "--reject")  # finish the run from the CLI
    assert finished(sopflow_up, lead["id"]).outcome == "rejected at manager_approval"


def test_manager_approves_a_large_discount_in_the_ui(sopflow_up, page: Page):
    """negotiation-closing: a discount above 15% waits for the manager, who sees the terms in the form."""
    up = sopflow_up
    lead = add_lead(up, name="Ada Lovelace", company="Engines Ltd")["id"]
    qualify(up, lead)
    answer(up, lead, "demo_outcome", "Alex Kim", "--input", "outcome=interested")
    answer(up, lead, "deal_terms", "Alex Kim", "--input", "deal_value=48000", "--input", "discount_percent=22",
           "--notes", "Three-year term")

    _, form = open_resume_form(page, up, lead, "discount_approval", "Approve a discount above 15%?",
                               sop="negotiation-closing")
    expect(form.description).to_contain_text("Ada Lovelace")
    expect(form.description).to_contain_text("Who may answer (manager): Maria Lopez")
    terms = form.description.get_by_role("row", name=re.compile(r"^deal_terms approve Alex Kim .*discount_percent: 22"))
    expect(terms).to_be_visible()
    expect(form.description).to_contain_text("deal_terms notes: Three-year term")
    form.fill("approve", "Maria Lopez", "Strategic logo; three-year term")
    form.submit()

    answer(up, lead, "contract_signed", "Alex Kim")
    deal = finished(up, lead, "negotiation-closing")
    result = step_records(up, deal.id)["discount_approval"].result
    assert (result["decision"], result["approver"], result["notes"]) == (
        "approve", "Maria Lopez", "Strategic logo; three-year term")
    with up.store() as session:
        assert session.get(Lead, lead).status == "customer"
