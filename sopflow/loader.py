"""Read SOP files: YAML with line numbers, then the strict schema and the whole-SOP checks, in one pass.

When the schema refuses a file, the checks still run on every part of it that passed (the roles,
the review, each step on its own), so one run reports every error the file can be read for.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import pydantic

from sopflow import yamlpos
from sopflow.checks import Draft, check
from sopflow.errors import SopError, SopInvalid
from sopflow.schema import (MAX_STEPS, MEASURE_KINDS, OVERDUE_ACTIONS, ROSTER_TAGS, STEP_KINDS, Measure, Sop, Step,
                             StepId)
from sopflow.suggest import close_match
from sopflow.text import validation_message

SOP_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 64 * 1024  # 20 times the largest seed SOP; YAML this size parses in well under a second
MAX_ERRORS = 50  # per file: past this, the rest are counted, not listed


@dataclass(frozen=True)
class LoadedSop:
    """A valid SOP with where it came from: its file, content hash and field lines, and its warnings."""

    sop: Sop
    path: Path
    content_hash: str
    lines: dict[yamlpos.Path_, int]
    warnings: tuple[SopError, ...] = ()
    text: str = ""  # what was loaded, as the store keeps each version of an SOP


def load_sop(path: Path) -> LoadedSop:
    """Load and check one SOP file; raise SopInvalid listing every problem in it (and its warnings)."""
    return load_sop_text(read_text(path), path)


def load_mapping(text: str, path: Path, what: str) -> tuple[dict[str, Any], Any]:
    """The YAML mapping in `text` (the file at `path`) and its line numbers; SopInvalid naming the line when it
    is not YAML or not a mapping (`what`: "an SOP file", "the capacity file")."""
    try:
        data, lines = yamlpos.load(text)
    except yamlpos.YamlProblem as problem:
        raise SopInvalid([SopError(path, problem.line, problem.field, problem.reason)]) from None
    if not isinstance(data, dict):
        raise SopInvalid([SopError(path, 1, "(top)", f"{what} must be a mapping of keys to values")])
    return data, lines


def load_sop_text(text: str, path: Path) -> LoadedSop:
    """Load and check SOP `text` (a stored version, or the file at `path`); errors and templates are `path`'s."""
    data, lines = load_mapping(text, path, "an SOP file")
    try:
        sop, schema_errors = Sop.model_validate(data), []
    except pydantic.ValidationError as exc:
        sop, schema_errors = None, [_schema_error(path, data, lines, err) for err in exc.errors()]
    problems, warnings = check(Draft.of(sop) if sop else _draft(data), path, lines)
    errors = schema_errors + problems
    if errors or sop is None:
        raise SopInvalid(_at_most(MAX_ERRORS, errors), warnings)
    return LoadedSop(sop, path, content_hash(text), lines, tuple(sorted(warnings)), text)


def content_hash(text: str) -> str:
    """The SHA-256 of an SOP's text: the identity of one version of it."""
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=None)
def _adapter(annotation: Any) -> pydantic.TypeAdapter:
    """A validator for a type, or for a top-level field of Sop given by name."""
    if isinstance(annotation, str):
        info = Sop.model_fields[annotation]
        annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return pydantic.TypeAdapter(annotation)


def _valid(annotation: Any, value: Any) -> Any:
    """`value` validated as `annotation` (a type, or the name of a field of Sop); None when it is not valid."""
    try:
        return _adapter(annotation).validate_python(value)
    except pydantic.ValidationError:
        return None


def _draft(data: dict) -> Draft:
    """The parts of SOP `data` that pass the schema on their own, for the checks (the whole failed)."""
    raw_steps = data.get("steps")
    raw_steps = raw_steps[:MAX_STEPS] if isinstance(raw_steps, list) else []
    steps, partial = [], set()
    for index, raw in enumerate(raw_steps):
        step, whole = _step(raw)
        steps.append(step)
        if not whole:
            partial.add(index)
    ids = tuple(step.id if step else _valid(StepId, raw.get("id")) if isinstance(raw, dict) else None
                for step, raw in zip(steps, raw_steps))
    objective = data.get("objective")
    raw_measure = objective.get("measure") if isinstance(objective, dict) else None
    return Draft(_valid("roles", data.get("roles")), _valid("review", data.get("review")), tuple(steps), ids,
                 frozenset(partial), _valid("objective", objective), _valid(Measure, raw_measure),
                 isinstance(objective, dict) and raw_measure is None, notify=_valid("notify", data.get("notify")))


def _step(raw: Any) -> tuple[Step | None, bool]:
    """Step `raw` validated, and whether whole: else again without its invalid fields (never `kind` or `id`)."""
    try:
        return _adapter(Step).validate_python(raw), True
    except pydantic.ValidationError as exc:
        bad = {loc[0] for err in exc.errors() if (loc := _file_path(raw, err["loc"]))}
    if not isinstance(raw, dict) or not bad <= set(raw) - {"kind", "id"}:
        return None, False
    return _valid(Step, {key: value for key, value in raw.items() if key not in bad}), False


def read_text(path: Path) -> str:
    """The text of YAML file `path` (an SOP, the capacity file); SopInvalid when it is missing, not a plain file, too
    large or not UTF-8."""
    try:
        info = path.stat()
    except FileNotFoundError:
        missing = "a symlink to a missing file" if path.is_symlink() else "no such file; check the path"
        raise _unreadable(path, missing) from None
    except OSError as exc:
        raise _unreadable(path, f"cannot read the file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise _unreadable(path, "is a directory, not an SOP file; SOP files are .yaml files")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device: reading it could wait, or never end
        raise _unreadable(path, "not a regular file; an SOP must be a plain .yaml file")
    if info.st_size > MAX_FILE_BYTES:
        too_large = f"the file is {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit; split it up"
        raise _unreadable(path, too_large)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES)
    except OSError as exc:
        raise _unreadable(path, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SopInvalid([SopError(path, line, "(file)", f"not UTF-8 text: byte 0x{raw[exc.start]:02x} "
                                                         "cannot be decoded; save the file as UTF-8")]) from None


def _at_most(limit: int, errors: list[SopError]) -> list[SopError]:
    """The first `limit` errors in file order, and a last one counting the rest."""
    errors = sorted(errors)
    if len(errors) <= limit:
        return errors
    rest = errors[limit]
    return [*errors[:limit], SopError(rest.file, rest.line, "(file)",
                                      f"{len(errors) - limit} more errors from here on; fix the ones above first")]


def _unreadable(path: Path, reason: str) -> SopInvalid:
    return SopInvalid([SopError(path, 1, "(file)", reason)])


def sop_files(paths: list[Path]) -> list[Path]:
    """Expand directories into the SOP files they hold (not recursing into templates/)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in SOP_SUFFIXES))
        else:
            files.append(path)
    return files


def _schema_error(path: Path, data: dict, lines: dict, err: Any) -> SopError:
    tag_key = "action" if _in_overdue(err["loc"]) else "kind"
    loc = _file_path(data, err["loc"]) + ((tag_key,) if err["type"] == "union_tag_invalid" else ())
    line = yamlpos.line_of(lines, loc[:-1] if err["type"] == "missing" else loc)
    return SopError(path, line, yamlpos.dotted(loc), _reason(err))


def _file_path(data: Any, loc: tuple) -> tuple:
    """Drop pydantic's union tags from `loc`, keeping only the keys and indexes of the file."""
    real: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part not in node and part in (node.get("kind"), node.get("action")):
            continue
        if len(real) == 3 and real[0] == "roles" and part in ROSTER_TAGS:  # a name, or {name, email}
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
        real.append(part)
    return tuple(real)


_PATTERN_REASONS = {
    "[mhdw]$": "must be a duration like 30m, 4h, 2d or 1w",
    "[a-z0-9_]*$": "must be lower_snake_case: a lowercase letter, then letters, digits or _",
    "[a-z0-9-]*[a-z0-9]$": "must be lower-kebab-case: lowercase letters, digits and -",
    "[a-z0-9_-]*$": "must be a template name from templates/ without .j2: lowercase letters, digits, _ and -",
    "[A-Za-z0-9_]*$": "must be a name: a letter or _, then letters, digits or _",
    "/[a-z0-9][a-z0-9-]*$": "must name a Prefect notification block as <block-type-slug>/<block-name>, "
                            "e.g. slack-webhook/sales-reps",
    ")+$": "must be an email address, e.g. priya@example.com",
}


def _in_overdue(loc: tuple) -> bool:
    return "overdue" in loc


def _reason(err: Any) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown key {err['loc'][-1]!r}" + close_match(str(err["loc"][-1]), _all_keys())
    if _in_overdue(err["loc"]) and kind.startswith("union_tag_"):
        actions = ", ".join(OVERDUE_ACTIONS)
        if kind == "union_tag_not_found":
            return f"an overdue entry needs an action: one of {actions}"
        return (f"unknown overdue action {ctx.get('tag')!r}; expected one of {actions}"
                + close_match(str(ctx.get("tag")), list(OVERDUE_ACTIONS)))
    what, kinds = ("measure", MEASURE_KINDS) if "measure" in err["loc"] else ("step", STEP_KINDS)
    if kind == "union_tag_invalid":
        return f"unknown {what} kind {ctx.get('tag')!r}; expected one of {', '.join(kinds)}" + close_match(
            str(ctx.get("tag")), list(kinds)
        )
    if kind == "union_tag_not_found":
        return f"a {what} needs a kind: one of {', '.join(kinds)}"
    if kind == "string_pattern_mismatch":
        for suffix, reason in _PATTERN_REASONS.items():
            if str(ctx.get("pattern", "")).endswith(suffix):
                return f"{err['input']!r} {reason}"
    message = validation_message(err)
    return message[:1].lower() + message[1:]


def _all_keys() -> list[str]:
    from sopflow import schema

    keys: set[str] = set()
    for value in vars(schema).values():
        if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
            keys.update(value.model_fields)
    return sorted(keys)
