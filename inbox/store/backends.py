"""The durable store: one interface, a SQLite and a PostgreSQL backend, one resolver.

Work is written as plain synchronous functions over a SQLAlchemy `Connection` (the
functional core stays testable and the same on both engines); the backend decides how
to run them:

* SQLite runs every write transaction on one dedicated writer thread (SQLite has one
  writer anyway), so a batch of many statements costs no thread hop per statement, and
  reads on a small pool of reader threads (WAL lets them run beside the writer). With
  `write_process=True` (what `omnidesk serve` uses for a database file), `call` runs in a
  child process instead (`inbox.store.write_process`: the hot ingest path stops sharing the
  event loop's GIL); thread and child take turns, one write transaction at a time.
* PostgreSQL runs them on asyncpg through `AsyncConnection.run_sync`.

`write(fn)` and `call(fn, *args)` commit before they return: callers acknowledge to a
sender only after it.
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
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from inbox.errors import OmnideskError, StoreError, ValidationError
from inbox.health import WriteOutcomes
from inbox.store.write_process import WriteProcess

T = TypeVar("T")
log = logging.getLogger("omnidesk.store")


class Store(abc.ABC):
    """Runs transactions. `write` and `read` take a sync function of a Connection."""

    dialect: str
    # writes that failed lately for a storage reason, for /readyz (inbox.health)
    outcomes: WriteOutcomes

    @abc.abstractmethod
    async def write(self, fn: Callable[[Connection], T]) -> T: ...

    @abc.abstractmethod
    async def read(self, fn: Callable[[Connection], T]) -> T: ...

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` in one committed write transaction. `fn` is a module-level
        function and its arguments and result pickle: a backend may run it in another
        process."""
        return await self.write(lambda conn: fn(conn, *args))

    async def start(self) -> None:  # noqa: B027 (a hook: most backends start nothing)
        """Start what the backend runs beside the process (else the first use starts it)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    def writes_in_flight(self) -> int:
        """Write transactions submitted and not finished yet (0 where writers do not queue
        behind one another). Background work may wait for 0 to let acknowledgements first."""
        return 0

    def _wrote(self, exc: BaseException) -> None:
        """Note a write transaction that failed for a storage reason (for /readyz)."""
        if isinstance(exc, StoreError) and exc.storage:
            self.outcomes.failed(exc.message)

    async def ping(self) -> bool:
        try:
            await self.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())
        except StoreError:
            return False
        return True


def translate_error(exc: Exception) -> Exception:
    """A library error as the StoreError callers handle; our own errors unchanged. Text
    the driver cannot encode (a lone surrogate that slipped past the edge) is the
    sender's mistake, not the database's: a ValidationError, never retried as a 503."""
    if isinstance(exc, OmnideskError):
        return exc
    if _unencodable(exc):
        return ValidationError(
            "the text holds a lone surrogate (no character; cannot be stored): send valid Unicode"
        )
    if isinstance(exc, SQLAlchemyError | OSError):
        err = StoreError(f"database error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        err.__cause__ = exc
        # a constraint violation is the caller's business, not the storage's
        err.storage = isinstance(exc, OperationalError | InterfaceError | OSError)
        return err
    return exc


def _unencodable(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(4):  # the driver's error, wrapped by SQLAlchemy, maybe once more
        if seen is None:
            return False
        if isinstance(seen, UnicodeEncodeError):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


class WriterConnection:
    """A SQLite writer's connection, kept between its write transactions (a pool checkout
    and return cost ~0.1 ms of the writer's time per transaction). After a failure the next
    transaction starts on a fresh checkout (the pool resets this one), whatever state the
    error left it in. Used by one thread: the store's writer thread, or the writer process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def open(self) -> None:
        """Connect now (the pragmas run): a database that cannot be opened says so here."""
        if self._conn is None:
            self._conn = self.engine.connect()

    def run(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)` in one transaction, committed before it returns."""
        self.open()
        conn = self._conn
        assert conn is not None
        try:
            with conn.begin():
                return fn(conn)
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(self, url: str, *, readers: int = 4, write_process: bool = False) -> None:
        path = sa.engine.make_url(url).database
        on_file = bool(path) and path != ":memory:"
        if on_file:
            folder = Path(path).parent  # type: ignore[arg-type]
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the database folder {folder}: {exc.strerror or exc}"
                ) from exc
        self.engine: Engine = sqlite_engine(url, 1, "BEGIN IMMEDIATE")
        self.read_engine: Engine = sqlite_engine(url, readers, "BEGIN")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._in_flight = 0
        self.outcomes = WriteOutcomes()
        self._write_conn = WriterConnection(self.engine)  # the writer thread's
        # an in-memory database lives in this process only
        self.process = WriteProcess(url) if write_process and on_file else None

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
            if self.process is None:
                return await loop.run_in_executor(self._writer, self._write_conn.run, fn)
            async with self.process.turn:  # the child writes in turn with this thread
                return await loop.run_in_executor(self._writer, self._write_conn.run, fn)
        except Exception as exc:
            err = translate_error(exc)
            self._wrote(err)
            raise err from exc
        finally:
            self._in_flight -= 1

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self.process is None:
            return await super().call(fn, *args)
        self._in_flight += 1
        try:
            return await self.process.call(fn, *args)
        except Exception as exc:
            self._wrote(exc)
            raise
        finally:
            self._in_flight -= 1

    async def start(self) -> None:
        if self.process is not None:
            await self.process.start()

    def writes_in_flight(self) -> int:
        # one writer thread: every write queues behind the ones submitted before it
        return self._in_flight

    async def read(self, fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._readers, self._run_read, fn)
        except Exception as exc:
            raise translate_error(exc) from exc

    async def close(self) -> None:
        if self.process is not None:
            await self.process.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._writer.submit(self._write_conn.close).result()  # on the thread that uses it
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.engine.dispose()
        self.read_engine.dispose()


def sqlite_engine(url: str, pool: int, begin: str) -> Engine:
    """An engine on a SQLite URL with omnidesk's pragmas; each transaction opens with
    `begin`. Writers take the write lock up front (BEGIN IMMEDIATE: no upgrade deadlock);
    readers use a deferred BEGIN and read a WAL snapshot beside the writer."""
    eng = sa.create_engine(
        sa.engine.make_url(url).set(drivername="sqlite+pysqlite"),
        # a batch's statements vary with its size (IN lists, multi-row INSERT): a
        # statement cache larger than sqlite3's 128 keeps them all compiled
        connect_args={"check_same_thread": False, "timeout": 30, "cached_statements": 1024},
        pool_size=pool,
        max_overflow=0,
    )
    event.listen(eng, "connect", _sqlite_pragmas)
    # pysqlite's own transaction handling is off (see _sqlite_pragmas): BEGIN here
    event.listen(eng, "begin", lambda conn: conn.exec_driver_sql(begin))
    return eng


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
        self.outcomes = WriteOutcomes()

    async def write(self, fn: Callable[[Connection], T]) -> T:
        try:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        except Exception as exc:
            err = translate_error(exc)
            self._wrote(err)
            raise err from exc

    async def read(self, fn: Callable[[Connection], T]) -> T:
        try:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn)
        except Exception as exc:
            raise translate_error(exc) from exc

    async def close(self) -> None:
        await self.engine.dispose()


def open_store(url: str, *, write_process: bool = False) -> Store:
    """The one resolver: pick the backend from the database URL. `write_process`: SQLite
    runs `call` transactions in a child process (see the module's docstring)."""
    scheme = url.split(":", 1)[0]
    if scheme.startswith("sqlite"):
        return SQLiteStore(url, write_process=write_process)
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


def safe_url(url: str) -> str:
    """The database URL with its password hidden, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def admin_target(url: str) -> tuple[str, str] | None:
    """For a PostgreSQL URL: the URL of the same server's `postgres` database (for creating
    and dropping databases with asyncpg) and the name of this URL's database. None for
    another engine."""
    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("postgres"):
        return None
    admin = parsed.set(drivername="postgresql", database="postgres")
    return admin.render_as_string(hide_password=False), str(parsed.database)
