"""A team function registered for `task` steps in the tests (SOPFLOW_TASKS)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def enrich_company(context: dict[str, Any]) -> dict[str, Any]:
    """Pretend enrichment: derive a segment from the lead's size, echo the params and the key.

    Fails for the company "Enrichment Fails Inc" the way careless code does: quoting the lead's email.
    """
    if context["lead"]["company"] == "Enrichment Fails Inc":
        raise LookupError(f"no company data for {context['lead']['email']}")
    employees = context["lead"]["employees"] or 0
    segment = "enterprise" if employees >= 1000 else "mid-market" if employees >= 200 else "smb"
    return {"segment": segment, "region": context["params"]["region"], "key": context["idempotency_key"]}


def stall_or_raise(context: dict[str, Any]) -> dict[str, Any]:
    """For the isolation tests: "Raises Inc" raises; "Hangs Inc" writes its process id to HANG_DIR/<lead id>.pid
    and hangs, the first time only (so the run can be killed mid-step, then run again)."""
    lead = context["lead"]
    if lead["company"] == "Raises Inc":
        raise RuntimeError("the team function failed for this lead")
    if lead["company"] == "Hangs Inc":
        marker = Path(os.environ["HANG_DIR"]) / f"{lead['id']}.pid"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(600)
    return {"checked": True}


def held_until_released(context: dict[str, Any]) -> dict[str, Any]:
    """For the priority tests: "Held Inc" writes HANG_DIR/<lead id>.held and holds its run's slot until the test
    writes HANG_DIR/<lead id>.go (two minutes at most)."""
    lead = context["lead"]
    if lead["company"] == "Held Inc":
        folder = Path(os.environ["HANG_DIR"])
        (folder / f"{lead['id']}.held").touch()
        deadline = time.monotonic() + 120
        while not (folder / f"{lead['id']}.go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return {"held": lead["company"] == "Held Inc"}
