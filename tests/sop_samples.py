"""SOP texts the tests write into files of their own."""

# A valid SOP needing no template; its one step is on line 10.
MINIMAL = """\
id: minimal
name: Minimal SOP
version: 1
owner: Test Owner
objective: {statement: Qualify leads, metric: qualified leads, baseline: 1, target: 2, deadline: 2027-01-31, measure: {kind: runs_completed, per: month}}
roles: {rep: [Alex Kim]}
trigger: {event: new_lead}
review: {every: 4w, owner: rep}
steps:
  - {id: mark_working, kind: update_lead, owner: rep, status: working}
"""
