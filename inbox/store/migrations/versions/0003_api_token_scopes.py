"""API token scopes: the inboxes a token may use, read-only tokens, when it was revoked

Existing tokens keep full access: `inboxes` NULL means every inbox, `read_only` false.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import inbox.store.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("inboxes", sa.JSON(), nullable=True))
    op.add_column(
        "api_tokens",
        sa.Column("read_only", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "api_tokens", sa.Column("revoked_at", inbox.store.schema.UTCDateTime(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("read_only")
        batch.drop_column("inboxes")
