"""sopflow's store, the record of leads, SOP runs, step records, approvals and the outbox."""
