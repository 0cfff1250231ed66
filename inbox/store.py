"""The durable store: one interface, a SQLite and a PostgreSQL backend, one resolver.

Work is written as plain synchronous functions over a SQLAlchemy `Connection` (the
functional core stays testable and the same on both engines); the backend decides how
to run them:

* SQLite runs every write transaction on one dedicated writer thread (SQLite has one
  writer anyway), so a batch of many statements costs no thread hop per statement, and
  reads on a small pool of reader threads (WAL lets them run beside the writer).
* PostgreSQL runs them on asyncpg through `AsyncConnection.run_sync`.

`write(fn)` commits before it returns: callers acknowledge to a sender only after it.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from inbox.errors import OmnideskError, StoreError

T = TypeVar("T")
log = logging.getLogger("omnidesk.store")


class Store(abc.ABC):
    """Runs transactions. `write` and `read` take a sync function of a Connection."""

    dialect: str

    @abc.abstractmethod
    async def write(self, fn: Callable[[Connection], T]) -> T: ...

    @abc.abstractmethod
    async def read(self, fn: Callable[[Connection], T]) -> T: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    def writes_in_flight(self) -> int:
        """Write transactions submitted and not finished yet (0 where writers do not queue
        behind one another). Background work may wait for 0 to let acknowledgements first."""
        return 0

    async def ping(self) -> bool:
        try:
            await self.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())
        except StoreError:
            return False
        return True


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, OmnideskError):
        return exc
    if isinstance(exc, SQLAlchemyError | OSError):
        err = StoreError(f"database error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        err.__cause__ = exc
        return err
    return exc


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(self, url: str, *, readers: int = 4) -> None:
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)

        def engine(pool: int, begin: str) -> Engine:
            eng = sa.create_engine(
                sa.engine.make_url(url).set(drivername="sqlite+pysqlite"),
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=pool,
                max_overflow=0,
            )
            event.listen(eng, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling is off (see _sqlite_pragmas): BEGIN here.
            # Writers take the write lock up front (BEGIN IMMEDIATE: no upgrade deadlock);
            # readers use a deferred BEGIN and read a WAL snapshot beside the writer.
            event.listen(eng, "begin", lambda conn: conn.exec_driver_sql(begin))
            return eng

        self.engine: Engine = engine(1, "BEGIN IMMEDIATE")
        self.read_engine: Engine = engine(readers, "BEGIN")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._in_flight = 0

    def _run_write(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.begin() as conn:
            return fn(conn)

    def _run_read(self, fn: Callable[[Connection], T]) -> T:
        with self.read_engine.connect() as conn:
            try:
                return fn(conn)
            finally:
                conn.rollback()

    async def write(self, fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        self._in_flight += 1
        try:
            return await loop.run_in_executor(self._writer, self._run_write, fn)
        except Exception as exc:
            raise _translate(exc) from exc
        finally:
            self._in_flight -= 1

    def writes_in_flight(self) -> int:
        # one writer thread: every write queues behind the ones submitted before it
        return self._in_flight

    async def read(self, fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._readers, self._run_read, fn)
        except Exception as exc:
            raise _translate(exc) from exc

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.engine.dispose()
        self.read_engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    # Switching to WAL needs an exclusive lock, and SQLite answers "database is locked"
    # at once (no busy wait) while another connection or process holds one: ask only while
    # the file is not in WAL mode yet (it stays WAL once set), and wait out such a holder.
    deadline = time.monotonic() + 30
    while str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        try:
            cur.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=FULL")  # an acknowledged message survives power loss
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class PostgresStore(Store):
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

        u = sa.engine.make_url(url)
        self.engine: AsyncEngine = create_async_engine(
            u.set(drivername="postgresql+asyncpg"), pool_size=pool_size, max_overflow=5
        )

    async def write(self, fn: Callable[[Connection], T]) -> T:
        try:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        except Exception as exc:
            raise _translate(exc) from exc

    async def read(self, fn: Callable[[Connection], T]) -> T:
        try:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn)
        except Exception as exc:
            raise _translate(exc) from exc

    async def close(self) -> None:
        await self.engine.dispose()


def open_store(url: str) -> Store:
    """The one resolver: pick the backend from the database URL."""
    scheme = url.split(":", 1)[0]
    if scheme.startswith("sqlite"):
        return SQLiteStore(url)
    if scheme in {"postgresql", "postgres", "postgresql+asyncpg"}:
        if scheme == "postgres":
            url = "postgresql" + url[len("postgres") :]
        return PostgresStore(url)
    raise StoreError(f"no store backend for {scheme!r} URLs (use sqlite:/// or postgresql://)")


def sync_url(url: str) -> str:
    """A URL for synchronous tools (Alembic) pointing at the same database."""
    u = sa.engine.make_url(url)
    if u.drivername.startswith("sqlite"):
        return u.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
    return u.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
