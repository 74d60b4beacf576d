"""`sopflow report`: each SOP's KPI against its baseline, target and deadline, its trend, whether it is on track,
and the adherence its last audits found."""

from __future__ import annotations

from typing import Annotated

import typer

from sopflow import settings
from sopflow.cli.app import app
from sopflow.cli.catalog import check_name, loaded_on_file
from sopflow.cli.output import Json, Row, emit

TREND_SHOWN = 6  # the table shows the last few periods' values; --json gives all of them


def _on_track(row: Row) -> str:
    if row["measure"] is None:
        return "no measure"
    return {True: "yes", False: "no", None: "-"}[row["on_track"]]


@app.command()
def report(
    sop: Annotated[str | None, typer.Option(help="Only this SOP's KPI.", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Report each SOP's KPI: its value this period against baseline, target and deadline, whether it is on track,
    and its adherence: the share of runs without findings in the last audits (`sopflow audit`), oldest first in
    --json.

    On track: the value has covered at least the share of the way from baseline to target that the time from
    the SOP's first run to the deadline has (lower is better when the target is below the baseline).
    """
    from sopflow.audit_report import percent
    from sopflow.kpi import amount, kpi
    from sopflow.store.audits import adherence_trend
    from sopflow.store.db import transaction

    on_file = loaded_on_file()  # before the transaction: loading records each SOP's text
    check_name("report", "SOP", sop, on_file, "`sopflow sops` lists the SOPs")
    with transaction() as session:
        rows = [{**kpi(session, loaded), "adherence": adherence_trend(session, sop_id)}
                for sop_id, loaded in sorted(on_file.items()) if sop in (None, sop_id)]

    def shown(key: str, unit: bool = False):  # noqa: ANN202  (the value with its unit; others only with %)
        return lambda r: amount(r[key], r["unit"] if unit or r["unit"] == "%" else None) if r["measure"] else None

    columns = [("SOP", lambda r: r["sop"]), ("Metric", lambda r: r["metric"]), ("Value", shown("value", unit=True)),
               ("Baseline", shown("baseline")), ("Target", shown("target")), ("Deadline", lambda r: r["deadline"]),
               ("On track", _on_track),
               ("Adherence", lambda r: f"{percent(r['adherence'][-1]['rate'])} of {r['adherence'][-1]['audited']} runs"
                if r["adherence"] else "not audited"),
               (f"Last {TREND_SHOWN} periods", lambda r: " ".join(amount(p["value"], None)
                                                                  for p in r["trend"][-TREND_SHOWN:]))]
    emit(as_json, rows, columns, f"no valid SOP files in {settings.sop_dir()}; `sopflow validate` says why")
