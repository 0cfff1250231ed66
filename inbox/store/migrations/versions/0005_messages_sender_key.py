"""messages.sender_key: inbound messages are deduplicated per sender

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 23:00:00

The key of an inbound message was (channel, external_id): another sender's mail reusing a
Message-ID was taken for a redelivery and dropped. It is now (channel, external_id,
sender_key), the sender's identity as "kind:value". Messages stored before are given the
identity of their author on their channel (the sender's own, unverified one first).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BACKFILL = """
UPDATE messages SET sender_key = (
    SELECT i.kind || ':' || i.value FROM identities i
    WHERE i.contact_id = messages.author_id
    AND i.kind = CASE messages.channel
        WHEN 'sms' THEN 'phone' WHEN 'chat' THEN 'visitor' WHEN 'api' THEN i.kind
        ELSE 'email' END
    ORDER BY i.verified, i.id LIMIT 1
)
WHERE direction = 'inbound' AND external_id IS NOT NULL
"""


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender_key", sa.String(length=340), nullable=True))
    op.execute(_BACKFILL)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_messages_channel_external_id"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_messages_channel_external_id_sender_key"),
            ["channel", "external_id", "sender_key"],
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_messages_channel_external_id_sender_key"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_messages_channel_external_id"), ["channel", "external_id"]
        )
        batch_op.drop_column("sender_key")
