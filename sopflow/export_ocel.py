"""Cases as an OCEL 2.0 JSON object-centric event log, the events written as they come.

Object types: "sop_run" (attributes sop, version, state, outcome: their values at export, timed at the epoch
as OCEL 2.0 does for values without a history; related to its lead as "for"), "lead" (its id only: no
personal data) and "person" (an approver, by name). Event types: one per step id, as discovery tools take an
event type for an activity (one per step kind would merge, say, two approval steps into one activity).
Each event relates to its run ("case"), its lead ("lead") and, for an answered approval, the person who
answered ("approver"); its attributes are kind, status, resource ("sopflow" when no person answered) and
started (when the step began). The top-level keys come as events, objects, objectTypes, eventTypes: the
objects and event types are known once every event has been written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from sopflow.export import EPOCH, Case, Event, Tally, iso

RUN_ATTRIBUTES = [("sop", "string"), ("version", "integer"), ("state", "string"), ("outcome", "string")]
EVENT_ATTRIBUTES = [("kind", "string"), ("status", "string"), ("resource", "string"), ("started", "time")]
Json = dict[str, Any]


def _declared(attributes: list[tuple[str, str]]) -> list[Json]:
    return [{"name": name, "type": kind} for name, kind in attributes]


def _event(case: Case, event: Event) -> Json:
    related = [{"objectId": case.run_id, "qualifier": "case"}, {"objectId": case.lead_id, "qualifier": "lead"}]
    if event.approver:
        related.append({"objectId": event.approver, "qualifier": "approver"})
    values = {"kind": event.kind, "status": event.status, "resource": event.resource, "started": iso(event.started)}
    return {"id": f"{case.run_id}/{event.step_id}", "type": event.step_id, "time": iso(event.time),
            "attributes": [{"name": name, "value": value} for name, value in values.items()],
            "relationships": related}


def _run(case: Case) -> Json:
    values = {"sop": case.sop_id, "version": case.version, "state": case.state, "outcome": case.outcome}
    return {"id": case.run_id, "type": "sop_run",
            "attributes": [{"name": name, "time": EPOCH, "value": value}
                           for name, value in values.items() if value is not None],
            "relationships": [{"objectId": case.lead_id, "qualifier": "for"}]}


def _bare(object_id: str, object_type: str) -> Json:
    return {"id": object_id, "type": object_type, "attributes": [], "relationships": []}


def _array(out: IO[str], items: Iterable[Json]) -> None:
    """A JSON array of `items`, one a line, written as they come."""
    out.write("[")
    separator = "\n"
    for item in items:
        out.write(separator + json.dumps(item, ensure_ascii=False))
        separator = ",\n"
    out.write("\n]")


def write_ocel(found: Iterator[Case], out: IO[str]) -> Tally:
    """Write `found` to `out` as OCEL 2.0 JSON; return what was written."""
    tally = Tally()
    runs: list[Json] = []
    leads: dict[str, Json] = {}
    people: dict[str, Json] = {}
    step_ids: dict[str, None] = {}  # the event types, in the order met

    def events() -> Iterator[Json]:  # noting the objects and event types met on the way
        for case in found:
            tally.add(case)
            runs.append(_run(case))
            leads.setdefault(case.lead_id, _bare(case.lead_id, "lead"))
            for event in case.events:
                step_ids[event.step_id] = None
                if event.approver:
                    people.setdefault(event.approver, _bare(event.approver, "person"))
                yield _event(case, event)

    out.write('{"events": ')
    _array(out, events())
    rest = {
        "objects": [*runs, *leads.values(), *people.values()],
        "objectTypes": [{"name": "sop_run", "attributes": _declared(RUN_ATTRIBUTES)},
                        {"name": "lead", "attributes": []}, {"name": "person", "attributes": []}],
        "eventTypes": [{"name": step_id, "attributes": _declared(EVENT_ATTRIBUTES)} for step_id in step_ids],
    }
    for key, items in rest.items():
        out.write(f',\n"{key}": ')
        _array(out, items)
    out.write("}\n")
    return tally
