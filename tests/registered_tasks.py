"""A team function registered for `task` steps in the tests (SOPFLOW_TASKS)."""

from __future__ import annotations

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
