"""Team functions for `task` steps, registered by name in settings, never by import path in an SOP.

    SOPFLOW_TASKS="enrich_company=acme_sales.enrich:run,notify_finance=acme_sales.finance:notify"

A function takes one dict — lead, steps, sop, params and an idempotency_key it can pass on
to the systems it calls — and returns a JSON-serialisable dict, recorded as the step result.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

TaskFunction = Callable[[dict[str, Any]], dict[str, Any]]


def registered() -> dict[str, str]:
    """Name -> `module:function`, as SOPFLOW_TASKS lists them."""
    entries: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in os.environ.get("SOPFLOW_TASKS", "").split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise ValueError(f"SOPFLOW_TASKS entry {item!r} must look like name=module:function")
        entries[name.strip()] = target.strip()
    return entries


def load(name: str) -> TaskFunction:
    """The function registered as `name`; a clear error when it is not registered or not importable."""
    target = registered().get(name)
    if target is None:
        raise LookupError(f"task function {name!r} is not registered; add {name}=module:function to SOPFLOW_TASKS")
    module_name, _, attr = target.partition(":")
    function = getattr(importlib.import_module(module_name), attr, None)
    if not callable(function):
        raise LookupError(f"SOPFLOW_TASKS maps {name!r} to {target}, which is not a function")
    return function
