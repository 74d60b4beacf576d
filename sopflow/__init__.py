"""sopflow: a sales team's Standard Operating Procedures as audited Prefect flows.

The `sopflow` package is the Prefect-free core: SOP schema, loader, checks, compiler
to an execution plan, store, settings and CLI. `tasks/` and `flows/` wrap it in Prefect.
"""
