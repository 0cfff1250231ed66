"""The metrics repository: gauges of shared state read from the store at scrape time
(`omnidesk.metrics` publishes them through `inbox.metrics`). The outbox's own counts are
`inbox.store.outbox`'s.

Plain functions of a Connection, run by `inbox.store.backends.Store`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.store import schema as t

__all__ = ["waiting_by_inbox"]


def waiting_by_inbox(conn: Connection) -> dict[str, tuple[int, datetime | None]]:
    """inbox -> (conversations waiting for an agent, when the oldest started waiting);
    reads only the waiting rows, through the (status, assignee_id) index. Inboxes where
    nothing waits are absent."""
    c = t.conversations.c
    rows = conn.execute(
        sa.select(c.inbox, sa.func.count(), sa.func.min(c.waiting_since))
        .where(c.status == "open", c.assignee_id.is_(None), c.waiting_since.is_not(None))
        .group_by(c.inbox)
    )
    return {str(inbox): (int(n), oldest) for inbox, n, oldest in rows}
