"""Prefect flows: every SOP's compiled flow (flows.sops) and the interpreter that runs it."""
