"""`sopflow feedback`: say what is unclear, missing or slow in an SOP, kept against the version on file."""

from __future__ import annotations

from typing import Annotated

import typer

from sopflow.cli.app import app
from sopflow.cli.catalog import check_name, sop_on_file
from sopflow.cli.output import Json, fail, print_json, say
from sopflow.forms import MAX_FEEDBACK, feedback_problem


@app.command()
def feedback(
    sop_id: Annotated[str, typer.Argument(help="The SOP the feedback is about, as `sopflow validate` lists it.")],
    text: Annotated[str, typer.Argument(help=f"What is unclear, missing or slow (one line, at most {MAX_FEEDBACK} "
                                             "characters).")],
    step: Annotated[str | None, typer.Option(help="The step of the SOP it is about.", show_default=False)] = None,
    by: Annotated[str | None, typer.Option(help="Who gives it.", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Keep feedback about an SOP, or one of its steps, against the SOP version on file, for the SOP's review.

    Approvers can also give feedback with an answer (`sopflow approve --feedback`, or the form's feedback field);
    it is kept only with an answer that is accepted.
    """
    from sopflow.store.db import transaction
    from sopflow.store.feedback import add_feedback
    from sopflow.versioning import record_loaded, version_errors

    loaded = sop_on_file("feedback", sop_id)
    check_name("feedback", "step", step, [s.id for s in loaded.sop.steps],
               f"`sopflow show {sop_id}` lists the steps of {sop_id}")
    problem = feedback_problem(text) or (_name_problem(by) if by is not None else None)
    if problem:
        fail("feedback", f"{problem}; nothing was stored", code=2)
    with transaction() as session:
        if not version_errors(session, [loaded]):  # the version it is about is kept, as `sopflow validate` keeps it
            record_loaded(session, [loaded])
        row = add_feedback(session, sop_id, loaded.sop.version, loaded.content_hash, text, "cli",
                           step_id=step, given_by=by)
        stored = {"id": row.id, "sop_id": row.sop_id, "sop_version": row.sop_version, "sop_hash": row.sop_hash,
                  "step_id": row.step_id, "given_by": row.given_by, "source": row.source,
                  "created_at": row.created_at}
    if as_json:
        print_json(stored)
    else:
        about = f"{sop_id}/{step}" if step else sop_id
        say(f"feedback on {about} (version {loaded.sop.version}, {loaded.content_hash[:12]}) kept for its review")


def _name_problem(by: str) -> str | None:
    from sopflow.text import invisible_in

    if not by.strip() or len(by) > 200:
        return "--by must be a name of 1 to 200 characters"
    where = invisible_in(by)
    return f"--by contains a control or invisible character ({where}); remove it" if where else None
