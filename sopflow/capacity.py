"""The S&OP capacity file: what operations can deliver per month, how pipeline demand converts into it, how likely
each negotiation stage is to close, and who signs the plan off.

It lives beside the SOPs, at `planning/capacity.yaml` under the SOP directory: a folder the SOP catalogue does not
read (it takes only the directory's own `*.yaml` files). Strict like an SOP file: unknown keys are errors, and
`sopflow validate` reports each problem as `FILE:LINE: FIELD.PATH: reason`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field, StringConstraints

from sopflow import yamlpos
from sopflow.errors import SopError, SopInvalid
from sopflow.forms import MONTH_PATTERN
from sopflow.loader import LoadedSop, content_hash, load_mapping, read_text
from sopflow.schema import ApprovalStep, StepId, Strict, Text
from sopflow.suggest import close_match, did_you_mean
from sopflow.text import validation_message

CAPACITY_FILE = Path("planning") / "capacity.yaml"  # under the SOP directory
NEGOTIATION_SOP = "negotiation-closing"  # its open runs are the pipeline's demand
TERMS_STEP = "deal_terms"  # the approval step recording the deal's terms: these two inputs
VALUE_INPUT, CLOSE_INPUT = "deal_value", "expected_close"
MAX_HORIZON = 24

EXAMPLE = """\
unit: hours
demand:
  per_deal_value: {value: 1000, needs: 8}   # each 1,000 EUR of weighted deal value needs 8 hours
capacity:
  default: 320
  months: {2026-12: 240, 2027-01: 400}       # YYYY-MM: capacity of that month
stage_weights:                               # the step a run last completed -> chance the deal closes
  deal_terms: 0.4
  discount_approval: 0.5
  contract_email: 0.7
horizon: 6
sign_off:
  sales: [Maria Lopez]
  operations: [Omar Haddad]
"""  # docs/sop-format.md shows it; the tests load it

MonthKey = Annotated[str, StringConstraints(pattern=MONTH_PATTERN)]
Amount = Annotated[float, Field(ge=0)]


class PerDealValue(Strict):
    """Each `value` EUR of weighted deal value needs `needs` of the unit."""

    value: float = Field(gt=0, description="An amount of deal value, in EUR, e.g. 1000.")
    needs: Amount = Field(description="What that much deal value needs, in the file's unit, e.g. 8 (hours).")


class Demand(Strict):
    """How the pipeline's weighted deal value converts into demand on operations."""

    per_deal_value: PerDealValue = Field(description="Demand per amount of weighted deal value.")


class MonthlyCapacity(Strict):
    """What operations can deliver per month, in the file's unit."""

    default: Amount = Field(description="Capacity of every month not listed in `months`.")
    months: dict[MonthKey, Amount] = Field(default_factory=dict, description="Capacity of given months, e.g. "
                                           "`2027-01: 320` (YYYY-MM: amount).")


class SignOff(Strict):
    """Who signs the plan off: someone of each role must answer."""

    sales: list[Text] = Field(min_length=1, description="The sales leaders (names), e.g. [Maria Lopez].")
    operations: list[Text] = Field(min_length=1, description="The operations leaders (names), e.g. [Omar Haddad].")


class CapacityPlan(Strict):
    """The S&OP capacity file."""

    unit: Literal["hours", "units"] = Field(description="What demand and capacity are counted in.")
    demand: Demand = Field(description="How weighted deal value converts into demand.")
    capacity: MonthlyCapacity = Field(description="Capacity per month.")
    stage_weights: dict[StepId, Annotated[float, Field(ge=0, le=1)]] = Field(
        min_length=1, description=f"Step of {NEGOTIATION_SOP} a run last completed → probability (0–1) that the deal "
        f"closes; must include {TERMS_STEP}.")
    horizon: int = Field(default=6, ge=1, le=MAX_HORIZON, description="How many months the plan covers, its own first.")
    sign_off: SignOff = Field(description="Who signs the plan off, per role.")

    def capacity_of(self, month: str) -> float:
        return self.capacity.months.get(month, self.capacity.default)


@dataclass(frozen=True)
class LoadedCapacity:
    plan: CapacityPlan
    path: Path
    content_hash: str


def capacity_path(sop_dir: Path) -> Path:
    return sop_dir / CAPACITY_FILE


def load_current(sop_dir: Path) -> tuple[LoadedCapacity, LoadedSop]:
    """The capacity file of `sop_dir` and the negotiation SOP it is checked against, as their files say now;
    SopInvalid when the file is missing or not valid."""
    path = capacity_path(sop_dir)
    if not path.is_file():
        raise SopInvalid([SopError(path, 1, "(file)", "no capacity file: S&OP plans need one; see docs/sop-format.md, "
                                                      "The S&OP capacity file")])
    negotiation = negotiation_sop(sop_dir)
    capacity = load_capacity(path, negotiation)
    assert negotiation is not None  # load_capacity refuses a file without it
    return capacity, negotiation


def load_capacity(path: Path, negotiation: LoadedSop | None) -> LoadedCapacity:
    """Read and check the capacity file at `path` against the negotiation SOP; SopInvalid listing every problem."""
    text = read_text(path)
    data, lines = load_mapping(text, path, "the capacity file")
    try:
        plan, errors = CapacityPlan.model_validate(data), []
    except pydantic.ValidationError as exc:
        plan, errors = None, [_schema_error(path, lines, err) for err in exc.errors()]
    weights = data.get("stage_weights")  # checked against the SOP even when another part of the file is wrong
    if isinstance(weights, dict):
        errors += _against_sop([str(key) for key in weights], path, lines, negotiation)
    if errors or plan is None:
        raise SopInvalid(errors)
    return LoadedCapacity(plan, path, content_hash(text))


def _against_sop(weighted: list[str], path: Path, lines: dict, negotiation: LoadedSop | None) -> Iterable[SopError]:
    """Stage weights name steps of the negotiation SOP, deal_terms among them; that step records the terms."""
    top = lines.get(("stage_weights",), 1)
    if negotiation is None:
        yield SopError(path, top, "stage_weights", f"the stage weights are steps of {NEGOTIATION_SOP}, which is not a "
                       f"valid SOP in {path.parent.parent}; fix or add it first")
        return
    steps = [step.id for step in negotiation.sop.steps]
    for step_id in weighted:
        if step_id not in steps:
            yield SopError(path, lines[("stage_weights", step_id)], f"stage_weights.{step_id}",
                           f"{step_id!r} is not a step of {NEGOTIATION_SOP}{did_you_mean(step_id, steps)}")
    if TERMS_STEP not in weighted:
        yield SopError(path, top, "stage_weights", f"{TERMS_STEP} needs a weight: every deal with recorded terms "
                       "has reached it")
    terms = next((step for step in negotiation.sop.steps if step.id == TERMS_STEP), None)
    inputs = terms.inputs if isinstance(terms, ApprovalStep) else {}
    value, close = inputs.get(VALUE_INPUT), inputs.get(CLOSE_INPUT)
    if not (value and value.type in ("number", "integer") and close and close.type == "month"):
        yield SopError(path, 1, "(top)", f"the plan reads the {VALUE_INPUT} (number) and {CLOSE_INPUT} (month) inputs "
                       f"of {NEGOTIATION_SOP}'s approval step {TERMS_STEP}; {negotiation.path.name} lacks them")


def _schema_error(path: Path, lines: dict, err: Any) -> SopError:
    loc = tuple(part for part in err["loc"] if part != "[key]")
    line = yamlpos.line_of(lines, loc[:-1] if err["type"] == "missing" else loc)
    return SopError(path, line, yamlpos.dotted(loc), _reason(err))


def _reason(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        return f"unknown key {key!r}" + close_match(key, _keys())
    if kind == "string_pattern_mismatch":
        shape = "a month as YYYY-MM, e.g. 2027-01" if err["ctx"]["pattern"] == MONTH_PATTERN else \
            "a step id: lower_snake_case"
        return f"{err['input']!r} must be {shape}"
    message = validation_message(err)
    return message[:1].lower() + message[1:]


def _keys() -> list[str]:
    models = (CapacityPlan, Demand, PerDealValue, MonthlyCapacity, SignOff)
    return sorted({key for model in models for key in model.model_fields})


def capacity_files(paths: Sequence[Path]) -> list[Path]:
    """The capacity files `paths` name: a directory's `planning/capacity.yaml` when it has one, or the file itself."""
    found = [capacity_path(p) for p in paths if p.is_dir() and capacity_path(p).is_file()]
    return found + [p for p in paths if is_capacity_file(p)]


def is_capacity_file(path: Path) -> bool:
    return not path.is_dir() and path.parts[-2:] == CAPACITY_FILE.parts


def check_capacity(paths: Sequence[Path], loaded: Sequence[LoadedSop]) -> list[SopError]:
    """Every problem of the capacity files under `paths`, checked against the negotiation SOP in `loaded` (else the
    one beside the file)."""
    errors: list[SopError] = []
    for path in capacity_files(paths):
        try:
            load_capacity(path, negotiation_sop(path.parent.parent, loaded))
        except SopInvalid as exc:
            errors.extend(exc.errors)
    return sorted(errors)


def negotiation_sop(sop_dir: Path, loaded: Sequence[LoadedSop] = ()) -> LoadedSop | None:
    """The negotiation SOP among `loaded`, else as its file in `sop_dir` says now; None when it is not valid."""
    from sopflow.catalog import validate  # the catalogue loads every SOP; only here, when a capacity file is read

    found = {item.sop.id: item for item in loaded}
    if NEGOTIATION_SOP not in found:
        found = {item.sop.id: item for item in validate([sop_dir])[0]}
    return found.get(NEGOTIATION_SOP)
