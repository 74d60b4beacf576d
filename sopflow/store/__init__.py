"""sopflow's store, the record of leads, SOP runs, step records, approvals and the outbox."""

# Every state an SOP run can be in ("cancelled": a retired SOP's claimed run that never began). Here, free of
# imports, so the CLI can offer them as choices without loading the database layer.
RUN_STATES = ("pending", "running", "waiting", "completed", "failed", "cancelled")
