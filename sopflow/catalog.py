"""All SOPs in a directory, loaded and checked together."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from sopflow import settings, yamlpos
from sopflow.errors import SopError, SopInvalid, SopWarning
from sopflow.loader import LoadedSop, load_sop, sop_files
from sopflow.schema import ScoreStep


@dataclass
class Validation:
    """What `validate_report` found: the valid SOPs, every error, and the warnings (which never fail validation).

    Print errors and warnings to stderr with `str()`: `FILE:LINE: FIELD.PATH: reason` and
    `FILE:LINE: FIELD.PATH: warning: reason`.
    """

    loaded: list[LoadedSop] = field(default_factory=list)
    errors: list[SopError] = field(default_factory=list)
    warnings: list[SopError] = field(default_factory=list)


def validate(paths: list[Path]) -> tuple[list[LoadedSop], list[SopError]]:
    """Load every SOP under `paths`; return the valid ones and every error found (warnings: `validate_report`)."""
    report = validate_report(paths)
    return report.loaded, report.errors


def validate_report(paths: list[Path], against_store: bool = False) -> Validation:
    """Load every SOP under `paths`; return the valid ones, every error and every warning, each sorted.

    `against_store` (`sopflow validate`, `sopflow up`): also refuse content changed under a version that has
    runs, warn about SOPs a review retired or sent back for revision, and record each text in the store.
    Off elsewhere: flows load SOPs inside store transactions.
    """
    report = Validation()
    for path in sop_files(paths):
        try:
            report.loaded.append(load_sop(path))
            report.warnings.extend(report.loaded[-1].warnings)
        except SopInvalid as exc:
            report.errors.extend(exc.errors)
            report.warnings.extend(exc.warnings)
    seen: dict[str, Path] = {}
    for item in report.loaded:
        if item.sop.id in seen:
            line = item.lines.get(("id",), 1)
            report.errors.append(SopError(item.path, line, "id", f"SOP id {item.sop.id!r} is also used by {seen[item.sop.id]}"))
        seen.setdefault(item.sop.id, item.path)
    _check_scoring_model(report)
    if against_store:
        from sopflow.versioning import check_against_store  # the store's runs and reviews; records each text

        errors, warnings = check_against_store(report.loaded, report.errors)
        report.errors.extend(errors)
        report.warnings.extend(warnings.values())
        report.loaded = [replace(item, warnings=(*item.warnings, warnings[item.path])) if item.path in warnings
                         else item for item in report.loaded]
    report.errors.sort()
    report.warnings.sort()
    return report


def _check_scoring_model(report: Validation) -> None:
    """One score step among all SOPs is the lead's scoring model (`scores_lead: true`): a second is an error,
    none (while score steps exist) a warning, since leads would then carry no score."""
    score_steps = [(item, index, step) for item in report.loaded for index, step in enumerate(item.sop.steps)
                   if isinstance(step, ScoreStep)]
    models = [(item, index, step) for item, index, step in score_steps if step.scores_lead]
    for item, index, step in models[1:]:
        first, _, first_step = models[0]
        path = ("steps", index, "scores_lead")
        report.errors.append(SopError(item.path, yamlpos.line_of(item.lines, path), yamlpos.dotted(path), (
            f"{first.sop.id}/{first_step.id} ({first.path.name}) is already the lead's scoring model; "
            "only one score step may set scores_lead: true")))
    if score_steps and not models:
        item, index, _ = score_steps[0]
        path = ("steps", index)
        report.warnings.append(SopWarning(item.path, yamlpos.line_of(item.lines, path), yamlpos.dotted(path), (
            "no score step is the lead's scoring model, so leads carry no score; add scores_lead: true to the "
            "score step whose score leads should carry")))


def load_all(directory: Path | None = None, against_store: bool = False) -> dict[str, LoadedSop]:
    """Every SOP in `directory` (default: the configured SOP dir) by id; SopInvalid if any is invalid."""
    directory = directory or settings.sop_dir()
    if not directory.is_dir():
        raise SopInvalid([SopError(directory, 0, "(dir)", "SOP directory not found; set SOPFLOW_SOP_DIR")])
    report = validate_report([directory], against_store)
    if report.errors:
        raise SopInvalid(report.errors, report.warnings)
    return {item.sop.id: item for item in report.loaded}  # each keeps its warnings: LoadedSop.warnings


def sops_started_by(event: str, status: str | None = None, sops: dict[str, LoadedSop] | None = None) -> list[str]:
    """The SOPs a lead event starts: `new_lead`, or `lead_status` with the lead's new status."""
    sops = load_all() if sops is None else sops
    return sorted(sop_id for sop_id, loaded in sops.items() if loaded.sop.trigger.starts_on(event, status))
