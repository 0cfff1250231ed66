"""The readiness repository: the heartbeat row `inbox.health.store_check` writes to prove
the store can write now (a row of `cursors`, upserted through the same path ingest writes
take: on SQLite the writer process).

Plain functions of a Connection, module-level so they travel to the SQLite writer process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from inbox.store.fastsql import Sql, as_utc
from inbox.store.ingest_reads import U_CURSOR

__all__ = ["HEARTBEAT_SOURCE", "heartbeat", "last_heartbeat"]

HEARTBEAT_SOURCE = "health:heartbeat"  # a row of the cursors table (a source's position)


def heartbeat(conn: Connection, at: datetime) -> None:
    """Upsert the heartbeat row, stamped `at`."""
    Sql(conn).run(U_CURSOR, source=HEARTBEAT_SOURCE, position=at.isoformat(), now=at)


def last_heartbeat(conn: Connection) -> datetime | None:
    """When the last heartbeat was written (aware UTC), or None if none was."""
    at = Sql(conn).scalar("SELECT updated_at FROM cursors WHERE source = :s", s=HEARTBEAT_SOURCE)
    return None if at is None else as_utc(at)
