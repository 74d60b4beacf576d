"""Prefect tasks: one module per step kind, thin wrappers around sopflow's core."""
