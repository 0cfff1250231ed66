"""The one SQL schema (SQLAlchemy Core). Migrations in inbox/store/migrations follow it.

Times are stored as naive UTC and handed out as aware UTC (`UTCDateTime`), identically
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite without detect_types
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)


def _fk(name: str, target: str, **kw: Any) -> sa.Column[int]:
    return sa.Column(
        name,
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey(target),
        **kw,
    )


contacts = sa.Table(
    "contacts",
    metadata,
    _id(),
    sa.Column("name", sa.String(200)),
    sa.Column("attributes", sa.JSON, nullable=False, default=dict),
    sa.Column("tags", sa.JSON, nullable=False, default=list),
    sa.Column("notes", sa.Text, nullable=False, default=""),
    _fk("merged_into", "contacts.id", nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

identities = sa.Table(
    "identities",
    metadata,
    _id(),
    _fk("contact_id", "contacts.id", nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", sa.String(320), nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False, default=False),
    sa.Column("opted_out", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("kind", "value"),
)

agents = sa.Table(
    "agents",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("skills", sa.JSON, nullable=False, default=dict),
    sa.Column("capacity", sa.JSON, nullable=False, default=dict),
    sa.Column("teams", sa.JSON, nullable=False, default=list),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("presence", sa.String(16), nullable=False, default="offline"),
    sa.Column("password_changed_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

conversations = sa.Table(
    "conversations",
    metadata,
    _id(),
    _fk("contact_id", "contacts.id", nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("inbox", sa.String(100), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(998)),
    sa.Column("required_skills", sa.JSON, nullable=False, default=list),
    _fk("assignee_id", "agents.id", nullable=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("tags", sa.JSON, nullable=False, default=list),
    sa.Column("triage", sa.JSON),  # the auto-answer decision and its reasons
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_message_at", UTCDateTime, nullable=False),
    sa.Column("first_response_at", UTCDateTime),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("waiting_since", UTCDateTime),
    sa.Column("assigned_at", UTCDateTime),
    # the case lifecycle (issue 17; `inbox.cases.Case`, read and written by inbox.store.cases)
    sa.Column("snoozed_until", UTCDateTime),
    sa.Column("accepted_at", UTCDateTime),  # NULL while assigned: an offer, not accepted
    sa.Column("team", sa.String(100)),
    sa.Column("escalated", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    _fk("linked_to", "conversations.id", nullable=True),  # the solved/closed one it follows
    # moved on by every case change: a change is written only over the version it was
    # computed from (`UPDATE ... WHERE version = :read`), so of two racing, one wins
    sa.Column("version", sa.Integer, nullable=False, default=0, server_default=sa.text("0")),
    sa.Column("sla", sa.JSON),  # `CaseSla.to_json()`; NULL: no clocks
    # derived from the case when it is written (`inbox.cases.due.summary`): the earliest due
    # time (the queue sorts by it), the worst clock's state (badge, filter) and when the
    # sweeper next has something to do for it
    sa.Column("sla_due_at", UTCDateTime),
    sa.Column("sla_state", sa.String(16)),
    sa.Column("wake_at", UTCDateTime),
    sa.Index(None, "contact_id", "channel", "status"),
    sa.Index(None, "status", "assignee_id"),
    sa.Index(None, "last_message_at"),
    sa.Index(None, "wake_at"),
    sa.Index(None, "escalated", "inbox"),
    sa.Index(None, "status", "sla_due_at"),
)

messages = sa.Table(
    "messages",
    metadata,
    _id(),
    _fk("conversation_id", "conversations.id", nullable=False),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("author_kind", sa.String(16), nullable=False),
    sa.Column("author_id", sa.BigInteger().with_variant(sa.Integer, "sqlite")),
    sa.Column("channel", sa.String(16), nullable=False),
    # idempotency key of an inbound message within its channel (Message-ID, provider id, ...)
    sa.Column("external_id", sa.String(500)),
    # who sent an inbound message, "kind:value" of the sender's identity: the key is per
    # sender, so another sender reusing a Message-ID is a message of its own
    sa.Column("sender_key", sa.String(340)),
    # the id the provider gave an outbound message; set once, so it is never sent twice
    sa.Column("provider_id", sa.String(500)),
    sa.Column("subject", sa.String(998)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text),
    sa.Column("attachments", sa.JSON, nullable=False, default=list),
    sa.Column("delivery_status", sa.String(16), nullable=False),
    sa.Column("failure_reason", sa.Text),
    sa.Column("meta", sa.JSON, nullable=False, default=dict),
    sa.Column("needs_triage", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("channel", "external_id", "sender_key"),
    sa.Index(None, "conversation_id", "id"),
    sa.Index(None, "provider_id"),
)

assignments = sa.Table(
    "assignments",
    metadata,
    _id(),
    _fk("conversation_id", "conversations.id", nullable=False, index=True),
    _fk("agent_id", "agents.id", nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("assigned_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
    # scopes: the inboxes the token may read and write (NULL: every inbox), read-only
    sa.Column("inboxes", sa.JSON),
    sa.Column("read_only", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("revoked_at", UTCDateTime),
)

outbox = sa.Table(
    "outbox",
    metadata,
    _id(),
    _fk("message_id", "messages.id", nullable=False, unique=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, sending, done, failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "status", "next_attempt_at"),
)

# where a polled source (an IMAP mailbox) got to; written in the same transaction as the
# message it delivered, so ingest is exactly-once across restarts
cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("position", sa.String(200), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# agent UI: one row per signed-in browser (the cookie holds the id; the row its hash)
agent_sessions = sa.Table(
    "agent_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    _fk("agent_id", "agents.id", nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("ip", sa.String(64)),
    sa.Column("user_agent", sa.String(200)),
)

# sign-in attempts counted per (account, client address) and per client address
# (inbox.accounts.signin_throttle); times are epoch seconds, so the throttle's arithmetic is the
# same SQL on both engines
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_at", sa.Double, nullable=False, index=True),
)

# what an agent action answered, under the Idempotency-Key its page sent: a resend of the
# same key is answered from here and does nothing again
action_keys = sa.Table(
    "action_keys",
    metadata,
    _fk("agent_id", "agents.id", primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("action", sa.String(200), nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
)

# the activity log: who changed what about a conversation, when, from what to what, and why
# (`inbox.cases.ActivityEntry`). Append-only: inbox.store.cases inserts and reads, nothing
# updates or deletes. No key to messages: deleting messages leaves the log whole.
activity = sa.Table(
    "activity",
    metadata,
    _id(),
    _fk("conversation_id", "conversations.id", nullable=False),
    _fk("contact_id", "contacts.id", nullable=True),  # a merge's target contact
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("actor_kind", sa.String(16), nullable=False),  # `inbox.cases.ActorKind`
    sa.Column("actor_ref", sa.String(200)),  # an agent's or token's id, a rule's name
    sa.Column("kind", sa.String(16), nullable=False),  # `inbox.cases.ChangeKind`
    sa.Column("before", sa.JSON),
    sa.Column("after", sa.JSON),
    sa.Column("reason", sa.String(500)),
    sa.Index(None, "conversation_id", "id"),
)
