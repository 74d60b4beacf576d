"""The service layer: what the entry points, deployments, flows and tasks share.

Unlike the rest of the `sopflow` package, these modules talk to Prefect. They import the core
(schema, catalog, store) and never `flows`, `tasks` or `deployments`.
"""
