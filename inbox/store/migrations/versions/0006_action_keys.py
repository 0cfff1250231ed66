"""idempotency keys of agent actions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import inbox.store.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "action_keys",
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=200), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", inbox.store.schema.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_action_keys_agent_id")),
        sa.PrimaryKeyConstraint("agent_id", "key", name=op.f("pk_action_keys")),
    )
    op.create_index(op.f("ix_action_keys_created_at"), "action_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_action_keys_created_at"), table_name="action_keys")
    op.drop_table("action_keys")
