"""Retries for steps that talk to the outside world: transient failures only, with backoff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def retry_on(is_transient: Callable[[BaseException], bool]) -> dict[str, Any]:
    """Task options that retry, with growing delays, only the failures `is_transient` accepts."""

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result()
        except Exception as exc:
            return is_transient(exc)
        return False

    return {"retries": 4, "retry_delay_seconds": [2, 10, 30, 60], "retry_jitter_factor": 0.2,
            "retry_condition_fn": condition}
