"""case lifecycle: snooze, acceptance, team, escalation, links, versions, SLA; the activity log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 10:00:00

Conversations get the fields of `inbox.cases.Case` that were missing, the version every
case change is conditional on, the SLA clocks (JSON) and what is derived from them for the
queue and the sweeper (`sla_due_at`, `sla_state`, `wake_at`). The append-only `activity`
table is new.

Backfill: an assignment the agent has answered since it was made counts as accepted
(`accepted_at = assigned_at`, the rule of `routing.store._accepted_expr`). Rows keep `sla`
NULL (they had no clocks) and `wake_at` NULL: the migration reads no config, so it cannot
say when a solved conversation closes by itself.

The stored status of a solved conversation stays "resolved" (`inbox.store.cases` maps it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import inbox.store.schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = inbox.store.schema.UTCDateTime

_ACCEPTED = """
UPDATE conversations SET accepted_at = assigned_at
WHERE assignee_id IS NOT NULL AND assigned_at IS NOT NULL AND EXISTS (
    SELECT 1 FROM messages m
    WHERE m.conversation_id = conversations.id AND m.author_kind = 'agent'
    AND m.created_at >= conversations.assigned_at
)
"""


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snoozed_until", _TIME(), nullable=True))
        batch_op.add_column(sa.Column("accepted_at", _TIME(), nullable=True))
        batch_op.add_column(sa.Column("team", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("escalated", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("linked_to", _ID, nullable=True))
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("sla", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("sla_due_at", _TIME(), nullable=True))
        batch_op.add_column(sa.Column("sla_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("wake_at", _TIME(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_conversations_linked_to"), "conversations", ["linked_to"], ["id"]
        )
        batch_op.create_index(op.f("ix_conversations_wake_at"), ["wake_at"])
        batch_op.create_index(op.f("ix_conversations_escalated_inbox"), ["escalated", "inbox"])
        batch_op.create_index(op.f("ix_conversations_status_sla_due_at"), ["status", "sla_due_at"])
    op.execute(_ACCEPTED)
    op.create_table(
        "activity",
        sa.Column("id", _ID, nullable=False),
        sa.Column("conversation_id", _ID, nullable=False),
        sa.Column("contact_id", _ID, nullable=True),
        sa.Column("at", _TIME(), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_ref", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_activity_contact_id")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_activity_conversation_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity")),
    )
    op.create_index(op.f("ix_activity_at"), "activity", ["at"])
    op.create_index(op.f("ix_activity_conversation_id_id"), "activity", ["conversation_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_activity_conversation_id_id"), table_name="activity")
    op.drop_index(op.f("ix_activity_at"), table_name="activity")
    op.drop_table("activity")
    # the statuses 0006 does not know: waiting on a third party is waiting; a snooze ends
    op.execute("UPDATE conversations SET status = 'pending' WHERE status = 'on_hold'")
    op.execute("UPDATE conversations SET status = 'open' WHERE status = 'snoozed'")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(op.f("ix_conversations_status_sla_due_at"))
        batch_op.drop_index(op.f("ix_conversations_escalated_inbox"))
        batch_op.drop_index(op.f("ix_conversations_wake_at"))
        batch_op.drop_constraint(op.f("fk_conversations_linked_to"), type_="foreignkey")
        for column in (
            "wake_at",
            "sla_state",
            "sla_due_at",
            "sla",
            "version",
            "linked_to",
            "escalated",
            "team",
            "accepted_at",
            "snoozed_until",
        ):
            batch_op.drop_column(column)
