"""sop_runs.summary_artifact_id: the id of the run's Prefect summary artifact, kept by its flow.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sop_runs", sa.Column("summary_artifact_id", sa.String(36), nullable=True))


def downgrade() -> None:
    # In place, on SQLite too (3.35+): a batch copy of sop_runs would fail on the foreign keys that point at it.
    op.drop_column("sop_runs", "summary_artifact_id")
