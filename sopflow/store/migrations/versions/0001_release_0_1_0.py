"""The store of release 0.1.0, as its create_all made it: every table, index, unique constraint and foreign key.

A store 0.1.0 made has these tables and no version table: `schema_version` stamps it at this revision.
Constraints stay unnamed, as create_all left them (PostgreSQL names them <table>_<columns>_key / _fkey / _pkey).

Revision ID: 0001
Revises:
Create Date: 2026-11-24 (the schema of commit a137905)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)  # models.UtcDateTime stores this type


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "audits",
        _id(),
        sa.Column("since", UTC, nullable=False),
        sa.Column("until", UTC, nullable=False),
        sa.Column("sop_id", sa.String(100), nullable=True),
        sa.Column("flow_run_id", sa.String(36), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("adherence", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("company", sa.String(200), nullable=True),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column("industry", sa.String(100), nullable=True),
        sa.Column("source", sa.String(100), nullable=True),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("grade", sa.String(1), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("do_not_contact", sa.Boolean(), nullable=False),
        sa.Column("unsubscribed_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "reviews",
        _id(),
        sa.Column("sop_id", sa.String(100), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("sop_version", sa.Integer(), nullable=False),
        sa.Column("sop_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=True),
        sa.Column("reviewer", sa.String(200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("flow_run_id", sa.String(36), nullable=True),
        sa.Column("packet", sa.JSON(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("decided_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sop_id", "due_on"),
    )
    op.create_table(
        "snop_plans",
        _id(),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=True),
        sa.Column("flow_run_id", sa.String(36), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("sales_signed_by", sa.String(200), nullable=True),
        sa.Column("sales_signed_at", UTC, nullable=True),
        sa.Column("sales_decision", sa.String(20), nullable=True),
        sa.Column("sales_notes", sa.Text(), nullable=True),
        sa.Column("operations_signed_by", sa.String(200), nullable=True),
        sa.Column("operations_signed_at", UTC, nullable=True),
        sa.Column("operations_decision", sa.String(20), nullable=True),
        sa.Column("operations_notes", sa.Text(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("month"),
    )
    op.create_table(
        "sop_versions",
        _id(),
        sa.Column("sop_id", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("first_seen", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sop_id", "content_hash"),
    )
    op.create_index("ix_sop_versions_version", "sop_versions", ["sop_id", "version"])
    op.create_table(
        "engagements",
        _id(),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("occurred_at", UTC, nullable=False),
        sa.Column("source", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
    )
    op.create_index("ix_engagements_counts", "engagements", ["lead_id", "kind", "occurred_at"])
    op.create_table(
        "sop_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("sop_id", sa.String(100), nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("flow_run_id", sa.String(36), nullable=True),
        sa.Column("sop_version", sa.Integer(), nullable=True),
        sa.Column("sop_hash", sa.String(64), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("started_at", UTC, nullable=True),
        sa.Column("ended_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sop_id", "lead_id"),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.UniqueConstraint("flow_run_id"),
    )
    op.create_table(
        "approvals",
        _id(),
        sa.Column("sop_run_id", sa.String(36), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("ask", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("asked_at", UTC, nullable=False),
        sa.Column("due_by", UTC, nullable=True),
        sa.Column("answered_at", UTC, nullable=True),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.Column("approver", sa.String(200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=True),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sop_run_id", "step_id", "ask"),
        sa.ForeignKeyConstraint(["sop_run_id"], ["sop_runs.id"]),
    )
    op.create_table(
        "audit_findings",
        _id(),
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("sop_id", sa.String(100), nullable=False),
        sa.Column("sop_version", sa.Integer(), nullable=True),
        sa.Column("sop_run_id", sa.String(36), nullable=True),
        sa.Column("step_id", sa.String(100), nullable=True),
        sa.Column("person", sa.String(200), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("occurred_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["audit_id"], ["audits.id"]),
        sa.ForeignKeyConstraint(["sop_run_id"], ["sop_runs.id"]),
    )
    op.create_index("ix_audit_findings_audit", "audit_findings", ["audit_id"])
    op.create_index("ix_audit_findings_sop", "audit_findings", ["sop_id", "kind"])
    op.create_table(
        "feedback",
        _id(),
        sa.Column("sop_id", sa.String(100), nullable=False),
        sa.Column("sop_version", sa.Integer(), nullable=False),
        sa.Column("sop_hash", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("given_by", sa.String(200), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("sop_run_id", sa.String(36), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["sop_run_id"], ["sop_runs.id"]),
    )
    op.create_index("ix_feedback_sop", "feedback", ["sop_id", "created_at"])
    op.create_table(
        "outbox",
        _id(),
        sa.Column("sop_run_id", sa.String(36), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.String(500), nullable=True),
        sa.Column("sent_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sop_run_id", "step_id"),
        sa.ForeignKeyConstraint(["sop_run_id"], ["sop_runs.id"]),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_table(
        "step_records",
        _id(),
        sa.Column("sop_run_id", sa.String(36), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sop_run_id", "step_id"),
        sa.ForeignKeyConstraint(["sop_run_id"], ["sop_runs.id"]),
    )
    op.create_table(
        "waits",
        _id(),
        sa.Column("sop_run_id", sa.String(36), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("wake_at", UTC, nullable=False),
        sa.Column("done_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sop_run_id", "step_id"),
        sa.ForeignKeyConstraint(["sop_run_id"], ["sop_runs.id"]),
    )
    op.create_table(
        "approval_links",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("approval_id", sa.Integer(), nullable=False),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("issued_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("used_at", UTC, nullable=True),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["approval_id"], ["approvals.id"]),
    )
    op.create_index("ix_approval_links_approval_id", "approval_links", ["approval_id"])
    op.create_table(
        "sla_actions",
        _id(),
        sa.Column("approval_id", sa.Integer(), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("due_at", UTC, nullable=False),
        sa.Column("taken_at", UTC, nullable=False),
        sa.Column("done_at", UTC, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("approval_id", "action_index"),
        sa.ForeignKeyConstraint(["approval_id"], ["approvals.id"]),
    )
    op.create_table(
        "approval_notices",
        _id(),
        sa.Column("approval_id", sa.Integer(), nullable=False),
        sa.Column("occasion", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("link_id", sa.String(36), nullable=True),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.String(500), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("sent_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("approval_id", "occasion", "recipient"),
        sa.ForeignKeyConstraint(["approval_id"], ["approvals.id"]),
        sa.ForeignKeyConstraint(["link_id"], ["approval_links.id"]),
        sa.UniqueConstraint("idempotency_key"),
    )


def downgrade() -> None:
    for table in ("approval_notices", "sla_actions", "approval_links", "waits", "step_records", "outbox", "feedback",
                  "audit_findings", "approvals", "sop_runs", "engagements", "sop_versions", "snop_plans", "reviews",
                  "leads", "audits"):
        op.drop_table(table)  # its indexes go with it
