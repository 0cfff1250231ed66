"""The cursors repository: where a source stands (`cursors` rows: an IMAP mailbox's last
UID seen, the router's fencing token, the readiness heartbeat). Written by the code that
moves each source on; read here.

Plain functions of a Connection, run by `inbox.store.backends.Store`.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from inbox.store.fastsql import Sql

__all__ = ["position"]


def position(conn: Connection, source: str) -> str | None:
    """The position recorded for `source`, or None if it has none yet."""
    found = Sql(conn).scalar("SELECT position FROM cursors WHERE source = :s", s=source)
    return None if found is None else str(found)
