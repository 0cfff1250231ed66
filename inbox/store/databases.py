"""Creating and dropping a PostgreSQL database of a URL (the cluster runner, tests,
benches), on the same server's `postgres` database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["create_database", "drop_database"]


def _as_admin(url: str, run: Callable[[Any, str], Awaitable[None]]) -> None:
    """Run `run(connection, database name)` on the server's `postgres` database."""
    import asyncpg

    from inbox.store.backends import admin_target

    target = admin_target(url)
    if target is None:
        return
    admin, name = target

    async def go() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await run(conn, name)
        finally:
            await conn.close()

    asyncio.run(go())


def create_database(url: str) -> None:
    """CREATE DATABASE for a PostgreSQL URL unless it exists."""

    async def create(conn: Any, name: str) -> None:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')

    _as_admin(url, create)


def drop_database(url: str) -> None:
    """DROP DATABASE for a PostgreSQL URL, closing its sessions (tests, benches)."""

    async def drop(conn: Any, name: str) -> None:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    _as_admin(url, drop)
