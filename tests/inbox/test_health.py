"""Readiness checks (inbox.health): a store that cannot write is not ready, whatever a read
says; the writer process and the bus report their state; /readyz's round of checks is
cached and bounded in time."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.bus.backends import MemoryBus, RedisBus
from inbox.errors import StoreError
from inbox.health import Readiness, bus_check, store_check, writer_check
from inbox.store.health import last_heartbeat
from tests.conftest import WITH_WRITE_PROCESS

# -- functions a store runs (module-level: they travel to the writer process) ------------


def limit_pages(conn: Connection, pages: int) -> None:
    """SQLite refuses to grow the database past `pages` on this connection (the writer's
    connection is kept between transactions, so the limit stays until lifted)."""
    conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")


def big_note(conn: Connection, size: int) -> None:
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS big_notes (body BLOB)")
    conn.execute(sa.text("INSERT INTO big_notes (body) VALUES (:b)"), {"b": b"x" * size})


def page_count(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)


@pytest.mark.parametrize("store", WITH_WRITE_PROCESS, indirect=True)
async def test_store_check_writes_a_heartbeat_at_most_every_few_seconds(store) -> None:
    check = store_check(store, every=30.0)
    assert await check() == (True, "writable")
    first = await store.read(last_heartbeat)
    assert first is not None
    assert await check() == (True, "writable")
    assert await store.read(last_heartbeat) == first  # within `every`: no second write
    again = store_check(store, every=0.0)
    await asyncio.sleep(0.01)
    assert (await again())[0] is True
    assert await store.read(last_heartbeat) != first


@pytest.mark.parametrize("store", WITH_WRITE_PROCESS, indirect=True)
async def test_a_constraint_violation_does_not_make_the_store_unready(store) -> None:
    def twice(conn: Connection) -> None:
        for _ in range(2):
            conn.execute(
                sa.text("INSERT INTO cursors (source, position, updated_at) VALUES (:s, 'p', :t)"),
                {"s": "twice", "t": "2026-01-01 00:00:00"},
            )

    with pytest.raises(StoreError):
        await store.write(twice)
    assert await store_check(store)() == (True, "writable")


@pytest.mark.parametrize("store", ["sqlite", "sqlite-process"], indirect=True)
async def test_a_full_database_is_not_ready_though_reads_work(store) -> None:
    """The real SQLite error ("database or disk is full"), made by capping the writer's
    database size: reads (the old check) still pass, the write check does not."""
    check = store_check(store, every=0.0)
    assert await check() == (True, "writable")
    pages = await store.read(page_count)
    await store.call(limit_pages, pages)
    with pytest.raises(StoreError, match="database or disk is full"):
        await store.call(big_note, 1_000_000)
    assert await store.ping() is True  # a read says nothing of it
    ok, detail = await check()
    assert ok is False and "database or disk is full" in detail, detail
    await store.call(limit_pages, 1_073_741_823)  # space returns
    await store.call(big_note, 1_000_000)
    store.outcomes.hold = 0.0  # (the failure above counts for `hold` seconds)
    assert await check() == (True, "writable")


async def test_writer_check_follows_the_writer_process(sqlite_url) -> None:
    from inbox.store.backends import SQLiteStore

    assert writer_check(SQLiteStore(sqlite_url)) is None  # no process, no check
    store = SQLiteStore(sqlite_url, write_process=True)
    check = writer_check(store)
    assert check is not None
    try:
        assert await check() == (True, "not started yet (starts on the first call)")
        await store.start()
        ok, detail = await check()
        pid = store.process.pid()  # type: ignore[union-attr]
        assert ok and detail == f"alive (pid {pid}, restarts 0)", detail
        os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
        for _ in range(200):
            ok, detail = await check()
            if detail.startswith("restarting"):
                break
            await asyncio.sleep(0.01)
        assert ok and detail.startswith("restarting"), detail
        await store_check(store)()  # the next write starts a new child
        ok, detail = await check()
        assert ok and detail.startswith("alive") and "restarts 1" in detail, detail
    finally:
        await store.close()
    assert await check() == (False, "closed")


async def test_bus_check_memory_and_a_stopped_listener() -> None:
    bus = MemoryBus()
    await bus.start()
    try:
        assert await bus_check(bus)() == (True, "listening")
        assert bus._listener is not None
        bus._listener.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert await bus_check(bus)() == (False, "the listener has stopped")
    finally:
        await bus.close()


@pytest.mark.redis
async def test_bus_check_pings_redis(redis_url) -> None:
    bus = RedisBus(redis_url)
    await bus.start()
    try:
        assert await bus_check(bus)() == (True, "listening")
    finally:
        await bus.close()
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = RedisBus(f"redis://127.0.0.1:{port}/0")
    try:
        ok, detail = await bus_check(down)()
        assert ok is False and detail.startswith("redis unreachable"), detail
    finally:
        await down.close()


async def test_readiness_runs_one_round_per_ttl_and_bounds_each_check() -> None:
    calls = 0

    async def counted() -> tuple[bool, str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return True, "fine"

    async def hangs() -> tuple[bool, str]:
        await asyncio.sleep(60)
        return True, "never"

    async def broken() -> tuple[bool, str]:
        raise RuntimeError("boom")

    ready = Readiness({"counted": counted, "hangs": hangs, "broken": broken}, ttl=0.5, timeout=0.2)
    rounds = await asyncio.gather(*(ready.results() for _ in range(20)))  # at once: one round
    assert calls == 1
    assert all(r == rounds[0] for r in rounds)
    assert rounds[0] == {
        "counted": {"ok": True, "detail": "fine"},
        "hangs": {"ok": False, "detail": "no answer within 0.2 s"},
        "broken": {"ok": False, "detail": "RuntimeError: boom"},
    }
    await ready.results()
    assert calls == 1  # cached
    await asyncio.sleep(0.5)
    await ready.results()
    assert calls == 2
