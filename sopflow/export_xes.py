"""Cases as an IEEE 1849-2016 XES event log, written a trace at a time.

Valid against the standard's XML Schema, which has no target namespace (so no xmlns), takes xes.version as
an xs:decimal ("1849.2016") and classifier names as xs:NCName. Extensions declared: concept, time, lifecycle
(the standard model) and org. Every event is one step outcome, at the time the step ended
(`time:timestamp`), with `lifecycle:transition`:

* "complete" for a completed step;
* "autoskip" for a skipped one. The standard lifecycle model's skip transitions are `autoskip` (the system
  skipped the activity) and `manualskip` (a person chose to); sopflow skips a step only by itself, when its
  condition does not hold or its action declines (an email to a lead who opted out). `ate_abort` would say
  the step began and was given up, which a skipped step never did.

No separate "start" event: tools that ignore the lifecycle (pm4py's DFG, most discovery) would count each
step twice and see a self-loop. When the step began is kept on the event as the date `sopflow:started`
(for an approval, when it was first asked), for tools that take a start-time key.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import IO

from sopflow.export import EPOCH, Case, Event, Tally, iso

EXTENSIONS = [
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
]
UNSET = "__INVALID__"  # a global attribute's default, by the standard's convention: every element sets its own
GLOBALS = {
    "trace": [("string", "concept:name", UNSET), ("string", "sopflow:sop", UNSET),
              ("string", "sopflow:state", UNSET), ("string", "sopflow:lead", UNSET)],
    "event": [("string", "concept:name", UNSET), ("date", "time:timestamp", EPOCH),
              ("string", "lifecycle:transition", "complete"), ("string", "org:resource", UNSET),
              ("string", "sopflow:kind", UNSET), ("string", "sopflow:status", UNSET),
              ("date", "sopflow:started", EPOCH)],
}
CLASSIFIERS = [("Activity", "concept:name"), ("ActivityLifecycle", "concept:name lifecycle:transition"),
               ("Resource", "org:resource")]  # names are xs:NCName in the schema: no spaces
TRANSITIONS = {"completed": "complete", "skipped": "autoskip"}


def _attribute(parent: ET.Element, kind: str, key: str, value: object) -> None:
    if value is not None:
        ET.SubElement(parent, kind, key=key, value=str(value))


def _event(trace: ET.Element, event: Event) -> None:
    element = ET.SubElement(trace, "event")
    _attribute(element, "string", "concept:name", event.step_id)
    _attribute(element, "date", "time:timestamp", iso(event.time))
    _attribute(element, "string", "lifecycle:transition", TRANSITIONS[event.status])
    _attribute(element, "string", "org:resource", event.resource)
    _attribute(element, "string", "sopflow:kind", event.kind)
    _attribute(element, "string", "sopflow:status", event.status)
    _attribute(element, "date", "sopflow:started", iso(event.started))


def _trace(case: Case) -> ET.Element:
    trace = ET.Element("trace")
    _attribute(trace, "string", "concept:name", case.run_id)
    _attribute(trace, "string", "sopflow:sop", case.sop_id)
    _attribute(trace, "int", "sopflow:version", case.version)
    _attribute(trace, "string", "sopflow:state", case.state)
    _attribute(trace, "string", "sopflow:outcome", case.outcome)
    _attribute(trace, "string", "sopflow:lead", case.lead_id)
    for event in case.events:
        _event(trace, event)
    return trace


def _head() -> list[ET.Element]:
    """The log's declarations, in the order the standard's schema wants: extensions, globals, classifiers."""
    head = [ET.Element("extension", name=name, prefix=prefix, uri=uri) for name, prefix, uri in EXTENSIONS]
    for scope, attributes in GLOBALS.items():
        declared = ET.Element("global", scope=scope)
        for kind, key, value in attributes:
            _attribute(declared, kind, key, value)
        head.append(declared)
    head += [ET.Element("classifier", name=name, keys=keys) for name, keys in CLASSIFIERS]
    for key, value in (("concept:name", "sopflow run history"), ("lifecycle:model", "standard")):
        head.append(ET.Element("string", key=key, value=value))
    return head


def _write(out: IO[str], element: ET.Element) -> None:
    ET.indent(element, level=1)
    out.write(f"  {ET.tostring(element, encoding='unicode')}\n")


def write_xes(found: Iterator[Case], out: IO[str]) -> Tally:
    """Write `found` to `out` as XES, one trace per case as it comes; return what was written."""
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1849.2016">\n')
    for element in _head():
        _write(out, element)
    tally = Tally()
    for case in found:
        tally.add(case)
        _write(out, _trace(case))
    out.write("</log>\n")
    return tally
