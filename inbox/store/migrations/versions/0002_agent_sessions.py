"""agent sessions and login failures (agent UI auth)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import inbox.store.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "agent_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", inbox.store.schema.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", inbox.store.schema.UTCDateTime(), nullable=False),
        sa.Column("expires_at", inbox.store.schema.UTCDateTime(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_sessions_agent_id")
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_agent_sessions")),
    )
    op.create_index(op.f("ix_agent_sessions_agent_id"), "agent_sessions", ["agent_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", _ID, nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("at", inbox.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_key_at"), "login_failures", ["key", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_key_at"), table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index(op.f("ix_agent_sessions_agent_id"), table_name="agent_sessions")
    op.drop_table("agent_sessions")
