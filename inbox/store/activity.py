"""The activity log as its readers page through it: a conversation's entries, oldest first,
a page at a time (the API's cursor is the last entry's id), and the names of who made
them (agents and API tokens are stored by id; a page shows their names).

The log is append-only (`inbox.store.cases.save_change` writes it); nothing here changes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.cases.activity import ActivityEntry, ActorKind
from inbox.store import schema as t
from inbox.store.cases import ENTRY_COLS, entry_of

__all__ = ["ActivityPage", "Logged", "actor_names", "page"]

a = t.activity.c


@dataclass(frozen=True, slots=True)
class Logged:
    """An entry with its place in the log (the cursor of the page that ends with it)."""

    id: int
    entry: ActivityEntry


@dataclass(frozen=True, slots=True)
class ActivityPage:
    entries: list[Logged]
    next_cursor: int | None  # the id to read after; None: this was the last page


def page(
    conn: Connection, conversation_id: int, *, after: int = 0, limit: int = 100
) -> ActivityPage:
    """Up to `limit` entries of the conversation appended after entry `after`."""
    rows = conn.execute(
        sa.select(a.id, *ENTRY_COLS)
        .where(a.conversation_id == conversation_id, a.id > after)
        .order_by(a.id)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    logged = [Logged(row.id, entry_of(conversation_id, row)) for row in rows[:limit]]
    return ActivityPage(logged, logged[-1].id if more else None)


def actor_names(conn: Connection, entries: Iterable[ActivityEntry]) -> dict[str, str]:
    """Names of the agents and API tokens among the entries' actors, keyed
    `"<kind>:<id>"` (e.g. "agent:7", "api_token:3"); who is gone keeps no name."""
    wanted: dict[ActorKind, set[int]] = {ActorKind.AGENT: set(), ActorKind.API_TOKEN: set()}
    for entry in entries:
        if entry.actor.kind in wanted and isinstance(entry.actor.id, int):
            wanted[entry.actor.kind].add(entry.actor.id)
    names: dict[str, str] = {}
    for kind, table in ((ActorKind.AGENT, t.agents), (ActorKind.API_TOKEN, t.api_tokens)):
        if wanted[kind]:
            rows = conn.execute(
                sa.select(table.c.id, table.c.name).where(table.c.id.in_(sorted(wanted[kind])))
            )
            names |= {f"{kind.value}:{row.id}": str(row.name) for row in rows}
    return names
