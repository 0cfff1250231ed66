"""The router's fence: the fencing token of the router leader, in a row of `cursors`.

With a leader lease, every write transaction of the router first touches the fence row and
requires it to hold this leader's fencing token (`check`, else `Fenced`). A new leader
writes its higher token there before it rebuilds (`claim`), so a paused old leader's late
transaction changes nothing (on PostgreSQL the row lock also orders it before or after the
new leader's claim).

Plain functions of a Connection, run by `inbox.store.backends.Store`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from inbox.errors import Fenced
from inbox.store import cursors
from inbox.store.fastsql import Sql

__all__ = ["FENCE", "check", "claim", "current"]

FENCE = "routing.leader"  # the fence row's source in `cursors`

U_CLAIM = (
    "UPDATE cursors SET position = :tok, updated_at = :now "
    "WHERE source = :src AND CAST(position AS BIGINT) < :num"
)
U_CHECK = "UPDATE cursors SET updated_at = :now WHERE source = :src AND position = :tok"


def claim(conn: Connection, token: int) -> bool:
    """Record a new leader's token; False if a higher one is already there."""
    sql = Sql(conn)
    now = datetime.now(UTC)
    if sql.run(U_CLAIM, tok=str(token), num=token, src=FENCE, now=now):
        return True
    found = cursors.position(conn, FENCE)
    if found is None:
        sql.run(
            "INSERT INTO cursors (source, position, updated_at) VALUES (:src, :tok, :now)",
            src=FENCE,
            tok=str(token),
            now=now,
        )
        return True
    return found == str(token)


def current(conn: Connection) -> int:
    """The highest router token recorded (0: none yet)."""
    found = cursors.position(conn, FENCE)
    return int(found) if found is not None else 0


def check(conn: Connection, token: int | None) -> None:
    """Within a write transaction: Fenced unless `token` (None: no leader lease) is still
    the one recorded."""
    now = datetime.now(UTC)
    if token is not None and not Sql(conn).run(U_CHECK, src=FENCE, tok=str(token), now=now):
        raise Fenced(f"router fencing token {token} is no longer current")
