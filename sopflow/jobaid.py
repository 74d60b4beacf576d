"""Job aids: an SOP rendered for training, as Markdown (with a mermaid diagram) or one self-contained HTML file.

One graph builder (`diagram`, from the compiled plan) feeds two renderers: `mermaid` for Markdown and
`svg_layout` (a simple top-to-bottom layout) for the inline SVG of the HTML page. Email steps show their
template rendered for an obviously fake sample lead, with no database. Output holds no render date, so
the same SOP always gives the same bytes. `publish_job_aids` puts each SOP's Markdown job aid in Prefect
as an artifact keyed `job-aid-<sop id>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from sopflow.checks import step_outputs
from sopflow.loader import LoadedSop
from sopflow.plan import Plan, compile_plan
from sopflow.schema import (END, ApprovalStep, EmailStep, FormInput, ScoreStep, Sop, Step, TaskStep, UpdateLeadStep,
                            WaitStep, WebhookStep)
from sopflow.templates import render_email

TEMPLATE_DIR = Path(__file__).with_name("jobaid_templates")
START = "start"
SKIP = "skip (condition false)"

# An obviously fake lead, for showing what each email says.
SAMPLE_LEAD: dict[str, Any] = {
    "id": "sample-lead", "email": "sam.sample@example.com", "name": "Sam Sample", "first_name": "Sam",
    "company": "Example Co", "title": "Head of Sales", "employees": 250, "industry": "software",
    "source": "website", "status": "working", "owner": "Sample Rep", "score": 75, "grade": "B", "stage": "sql",
    "opened": 2, "replied": 1, "meeting": 0, "visit": 0,
}
SAMPLE_RESULT: dict[str, Any] = {
    "status": "completed", "reason": "", "decision": "approve", "approver": "Sample Approver", "notes": "",
    "asks": 1, "score": 75, "grade": "B", "stage": "sql", "groups": {}, "breakdown": [], "outbox_id": "sample",
    "template": "sample", "owner": "Sample Rep", "fields": {}, "starts": [], "wake_at": "", "woke_at": "",
    "delivered": True, "http_status": 200, "error": "",
}


# ---- the graph -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    id: str  # a step id, or START / END
    kind: str  # "start", "end" or the step's kind
    lines: tuple[str, ...]  # the label, one line each


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str  # "" for plain flow; "approve", "reject", "next", SKIP, "after 14d"


@dataclass(frozen=True)
class Diagram:
    nodes: tuple[Node, ...]  # start, the steps in file order, end
    edges: tuple[Edge, ...]

    @property
    def steps(self) -> tuple[Node, ...]:
        return tuple(node for node in self.nodes if node.kind not in (START, END))


def diagram(plan: Plan) -> Diagram:
    """The SOP's steps and branches: approve/reject, `next` jumps, condition skips, waits, start and end."""
    nodes = [Node(START, START, ("Start",))]
    edges = [Edge(START, plan.first, "")]
    for step_id, planned in plan.steps.items():
        step = planned.step
        lines = [step_id, f"{step.kind} · {step.owner}"]
        if planned.condition is not None:
            lines.append(f"when {planned.condition.source}")
        if step.due_within:
            lines.append(f"due within {step.due_within}")
        nodes.append(Node(step_id, step.kind, tuple(lines)))
        if isinstance(step, ApprovalStep):
            done = "approve"
        elif isinstance(step, WaitStep):
            done = f"after {step.duration}"
        else:
            done = "next" if planned.on_done != planned.following else ""
        edges.append(Edge(step_id, planned.on_done, done))
        if planned.on_reject is not None:
            edges.append(Edge(step_id, planned.on_reject, "reject"))
        if planned.condition is not None:
            edges.append(Edge(step_id, planned.following, SKIP))
    nodes.append(Node(END, END, ("End",)))
    return Diagram(tuple(nodes), tuple(_merged(edges)))


def _merged(edges: list[Edge]) -> list[Edge]:
    """One edge per (source, target), its labels joined: a condition skip and a plain step to the same place."""
    labels: dict[tuple[str, str], list[str]] = {}
    for edge in edges:
        labels.setdefault((edge.source, edge.target), []).append(edge.label)
    return [Edge(source, target, " / ".join(label for label in found if label))
            for (source, target), found in labels.items()]


# ---- mermaid (Markdown) ----------------------------------------------------------------------------------------

def _mermaid_text(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _mermaid_id(node_id: str) -> str:
    return f"step_{node_id}" if node_id not in (START, END) else f"{node_id}_node"


def mermaid(graph: Diagram) -> str:
    """The diagram as a mermaid flowchart (top to bottom)."""
    out = ["flowchart TD"]
    for node in graph.nodes:
        label = _mermaid_text("<br/>".join(node.lines)).replace("#lt;br/#gt;", "<br/>")
        shape = f'(["{label}"])' if node.kind in (START, END) else f'["{label}"]'
        out.append(f"    {_mermaid_id(node.id)}{shape}")
    for edge in graph.edges:
        arrow = f'-->|"{_mermaid_text(edge.label)}"|' if edge.label else "-->"
        out.append(f"    {_mermaid_id(edge.source)} {arrow} {_mermaid_id(edge.target)}")
    return "\n".join(out)


# ---- SVG layout (HTML) -----------------------------------------------------------------------------------------

CHAR_W, LINE_H, PAD, GAP, LANE, MARGIN = 7.0, 16, 10, 56, 18, 20


@dataclass(frozen=True)
class Box:
    node: Node
    x: float
    y: float
    width: float
    height: float

    @property
    def step_id(self) -> str | None:
        return None if self.node.kind in (START, END) else self.node.id


@dataclass(frozen=True)
class Path_:
    d: str
    label: str
    label_x: float
    label_y: float
    anchor: str  # the label's SVG text-anchor: "start" or "end"
    kind: str  # "flow", "reject", "skip"


@dataclass(frozen=True)
class SvgLayout:
    width: float
    height: float
    boxes: tuple[Box, ...]
    paths: tuple[Path_, ...]


def svg_layout(graph: Diagram) -> SvgLayout:
    """Nodes in one column in file order; an edge to the next node goes straight down, a longer jump bends round
    on the right (rejects on the left), each jump in a lane of its own, labelled where it leaves its node."""
    width = max(CHAR_W * max(len(line) for line in node.lines) for node in graph.nodes) + 2 * PAD
    jumps = [edge for edge in graph.edges if _index(graph, edge.target) - _index(graph, edge.source) > 1]
    left = [edge for edge in jumps if edge.label == "reject"]
    right = [edge for edge in jumps if edge.label != "reject"]
    label_room = CHAR_W * max((len(edge.label) for edge in jumps), default=0)
    x = MARGIN + LANE * (len(left) + 1) + label_room
    boxes, y = [], float(MARGIN)
    for node in graph.nodes:
        height = len(node.lines) * LINE_H + 2 * PAD
        boxes.append(Box(node, x, y, width, height))
        y += height + GAP
    where = {box.node.id: box for box in boxes}
    paths = []
    for edge in graph.edges:
        source, target = where[edge.source], where[edge.target]
        kind = "reject" if edge.label == "reject" else "skip" if edge.label == SKIP else "flow"
        if edge in left or edge in right:
            side, lane = (-1, left.index(edge) + 1) if edge in left else (1, right.index(edge) + 1)
            edge_x = x if side < 0 else x + width
            out_x = edge_x + side * LANE * lane
            sy, ty = source.y + source.height / 2, target.y + target.height / 2
            d = f"M{edge_x:.0f},{sy:.0f} H{out_x:.0f} V{ty:.0f} H{edge_x:.0f}"
            paths.append(Path_(d, edge.label, edge_x + side * 4, sy - 4, "end" if side < 0 else "start", kind))
        else:
            cx = x + width / 2
            sy, ty = source.y + source.height, target.y
            paths.append(Path_(f"M{cx:.0f},{sy:.0f} V{ty:.0f}", edge.label, cx + 6, sy + GAP / 2 + 4, "start", kind))
    total_width = x + width + LANE * (len(right) + 1) + label_room + MARGIN
    return SvgLayout(total_width, y - GAP + MARGIN, tuple(boxes), tuple(paths))


def _index(graph: Diagram, node_id: str) -> int:
    return next(index for index, node in enumerate(graph.nodes) if node.id == node_id)


# ---- what each step says -------------------------------------------------------------------------------------

def _sample_input(form: FormInput) -> Any:
    if form.type == "choice":
        return (form.choices or [""])[0]
    if form.type == "yes_no":
        return True
    if form.type == "month":
        return "2027-03"
    if form.type in ("number", "integer"):
        low = form.minimum if form.minimum is not None else 0
        value = min(max(10 if form.maximum is not None else 25000, low), form.maximum or float("inf"))
        return int(value) if form.type == "integer" else value
    return "(sample answer)"


def _sample_steps(sop: Sop, before: int) -> dict[str, dict[str, Any]]:
    """What the steps before index `before` might have given, for the sample emails."""
    results: dict[str, dict[str, Any]] = {}
    for step in sop.steps[:before]:
        keys = step_outputs(step) or []
        result = {key: SAMPLE_RESULT.get(key, "(sample)") for key in keys}
        if isinstance(step, ApprovalStep):
            result.update({name: _sample_input(form) for name, form in step.inputs.items()})
        results[step.id] = result
    return results


def _sample_email(loaded: LoadedSop, index: int, step: EmailStep) -> dict[str, str]:
    sop = loaded.sop
    context = {"lead": dict(SAMPLE_LEAD), "steps": _sample_steps(sop, index),
               "sop": {"id": sop.id, "name": sop.name, "version": sop.version}}
    try:
        email = render_email(loaded.path.parent / "templates", step.template, context)
    except Exception as exc:  # a job aid still shows the rest of the SOP; the reason stands in for the email
        return {"subject": "", "text": f"(the template could not be rendered with the sample lead: {exc})"}
    return {"subject": email.subject, "text": email.text}


def _automation(step: Step) -> list[str]:
    """What an automated step does, in short sentences."""
    if isinstance(step, ScoreStep):
        grades = ", ".join(f"{grade} from {points}" for grade, points in sorted(step.grades.items()))
        return [f"Scores the lead ({rule.group}): {rule.label} {rule.points:+d}" for rule in step.rules] + [
            f"Grades: {grades}, D below."]
    if isinstance(step, UpdateLeadStep):
        said = [f"Sets the lead's status to {step.status}."] if step.status else []
        said += [f"Makes a {step.assign_to} the lead's owner."] if step.assign_to else []
        return said + [f"Sets the lead's {key} to {value}." for key, value in sorted(step.fields.items())]
    if isinstance(step, WaitStep):
        return [f"Waits {step.duration}, holding no process, before the next step."]
    if isinstance(step, WebhookStep):
        return [f"Sends {step.send} to {step.url}."]
    if isinstance(step, TaskStep):
        return [f"Calls the team's function {step.function}."]
    if isinstance(step, EmailStep):
        return [f"Emails the lead (template {step.template}), once per run, with an unsubscribe link; "
                "never a lead who opted out."]
    return []


def _where(target: str) -> str:
    return "the end" if target == END else target


def _step_view(loaded: LoadedSop, plan: Plan, index: int, step: Step) -> dict[str, Any]:
    planned = plan.steps[step.id]
    goes = [("Approved, then" if isinstance(step, ApprovalStep) else "Then", _where(planned.on_done))]
    if planned.on_reject is not None:
        goes.append(("Rejected, then", _where(planned.on_reject)))
    if planned.condition is not None:
        goes.append(("Condition false: skipped, then", _where(planned.following)))
    approval = step if isinstance(step, ApprovalStep) else None
    return {
        "number": index + 1, "id": step.id, "kind": step.kind, "owner": step.owner,
        "people": loaded.sop.people(step.owner) if step.owner in loaded.sop.roles else [],
        "description": step.description.strip(),
        "when": step.when, "due_within": step.due_within, "goes": goes, "automation": _automation(step),
        "prompt": approval.prompt if approval else None, "checklist": approval.checklist if approval else [],
        "inputs": [{"name": name, "label": form.label, "type": form.type, "required": form.required,
                    "choices": form.choices or []} for name, form in approval.inputs.items()] if approval else [],
        "email": _sample_email(loaded, index, step) if isinstance(step, EmailStep) else None,
    }


def _trigger(sop: Sop) -> str:
    trigger = sop.trigger
    if trigger.cron:
        return f"on the schedule {trigger.cron} ({trigger.timezone})"
    if trigger.event == "lead_status":
        return f"when a lead's status becomes {trigger.status}"
    return "for every new lead"


def _view(loaded: LoadedSop) -> dict[str, Any]:
    sop, plan = loaded.sop, compile_plan(loaded)
    graph = diagram(plan)
    return {
        "sop": sop, "trigger": _trigger(sop), "roles": [(role, sop.people(role)) for role in sorted(sop.roles)],
        "steps": [_step_view(loaded, plan, index, step) for index, step in enumerate(sop.steps)],
        "mermaid": mermaid(graph), "svg": svg_layout(graph), "sample_lead": SAMPLE_LEAD,
    }


# ---- rendering -----------------------------------------------------------------------------------------------

@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=autoescape,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def _render(template: str, loaded: LoadedSop, autoescape: bool) -> str:
    text = _environment(autoescape).get_template(template).render(_view(loaded))
    return re.sub(r"\n{3,}", "\n\n", text)


def job_aid_markdown(loaded: LoadedSop) -> str:
    """The SOP as a Markdown job aid, its diagram a mermaid flowchart."""
    return _render("job_aid.md.j2", loaded, autoescape=False)


def job_aid_html(loaded: LoadedSop) -> str:
    """The SOP as one self-contained HTML page (inline CSS, inline SVG diagram, no scripts, no external URLs)."""
    return _render("job_aid.html.j2", loaded, autoescape=True)


def artifact_key(sop_id: str) -> str:
    """The Prefect artifact key of an SOP's job aid: lowercase letters, digits and dashes."""
    return "job-aid-" + re.sub(r"[^a-z0-9-]+", "-", sop_id.lower()).strip("-")


def publish_job_aids(loaded_sops: Iterable[LoadedSop]) -> list[str]:
    """Publish each SOP's Markdown job aid as a Prefect artifact keyed by its SOP id (the UI shows the latest);
    returns the keys. Needs a reachable Prefect API; outside a flow run the key is what ties the versions."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    keys = []
    with get_client(sync_client=True) as client:  # the API itself: Prefect deprecates its helpers outside a run
        for loaded in loaded_sops:
            sop = loaded.sop
            key = artifact_key(sop.id)
            client.create_artifact(ArtifactCreate(key=key, type="markdown", data=job_aid_markdown(loaded),
                                                  description=f"{sop.name} v{sop.version}"))
            keys.append(key)
    return keys
