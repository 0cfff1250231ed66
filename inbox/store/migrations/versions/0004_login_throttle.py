"""login_failures: one row per throttle key with its count (atomic sign-in throttling)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # the old rows (one per failure) are throttle state of at most 15 minutes: not kept
    op.drop_index(op.f("ix_login_failures_key_at"), table_name="login_failures")
    op.drop_table("login_failures")
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_last_at"), "login_failures", ["last_at"])


def downgrade() -> None:
    import inbox.store.schema

    op.drop_index(op.f("ix_login_failures_last_at"), table_name="login_failures")
    op.drop_table("login_failures")
    op.create_table(
        "login_failures",
        sa.Column("id", _ID, nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("at", inbox.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_key_at"), "login_failures", ["key", "at"])
