"""Shared fixtures. Backend servers: a missing PostgreSQL or Redis skips the test with a
visible reason outside CI and fails it under CI=true."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get(
    "OMNIDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("OMNIDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _per_worker(url: str) -> str:
    """Under pytest-xdist (`make test` runs the suite in parallel) each worker flushes a
    Redis database of its own: gw0 the configured one, gw1 the next, and so on (mod 16)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        return url
    head, _, db = url.rpartition("/")
    base = int(db) if db.isdigit() else 0
    return f"{head}/{(base + int(worker[2:])) % 16}"


REDIS_URL = _per_worker(REDIS_URL)


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=1
        ):
            return True
    except OSError:
        return False


def require_server(url: str, what: str) -> None:
    """Skip (or fail under CI) when a backend server is not reachable."""
    if _reachable(url):
        return
    reason = f"{what} not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{reason}: under CI=true a backend test may not skip")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A spare Redis database, flushed before and after the test."""
    require_server(REDIS_URL, "Redis")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def postgres_url() -> str:
    require_server(POSTGRES_URL, "PostgreSQL")
    return POSTGRES_URL


# -- stores ------------------------------------------------------------------------------

_TABLES = (
    "outbox, assignments, messages, activity, conversations, identities, contacts, "
    "agent_sessions, login_failures, agents, api_tokens, cursors"
)


def admin_sql(sql: str) -> None:
    """Run one statement on the server's admin database (create or drop a database)."""
    import asyncio
    import concurrent.futures

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # may be first requested from inside a running loop: use a thread of its own
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session, migrated to head."""
    require_server(POSTGRES_URL, "PostgreSQL")
    import uuid

    from inbox.store.migrate import upgrade

    name = f"omnidesk_t_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")

    admin_sql(f'CREATE DATABASE "{name}"')
    base, _, _db = admin.rpartition("/")
    url = f"{base}/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    from inbox.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'omnidesk.db'}"
    upgrade(url)
    return url


STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# and SQLite with the ingest writes in the writer process, as `omnidesk serve` runs them
# (a suite opts in: `pytestmark = pytest.mark.parametrize("store", WITH_WRITE_PROCESS,
# indirect=True)`; each test starts a child)
WITH_WRITE_PROCESS = [
    "sqlite",
    "sqlite-process",
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=STORES)
async def store(request):
    """Each store backend, empty and migrated: one contract suite runs on both."""
    from inbox.store.backends import open_store

    if request.param.startswith("sqlite"):
        url = request.getfixturevalue("sqlite_url")
        s = open_store(url, write_process=request.param == "sqlite-process")
    else:
        url = request.getfixturevalue("postgres_database")
        s = open_store(url)
        import sqlalchemy as sa

        await s.write(lambda c: c.execute(sa.text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")))
    s.url = url  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        await s.close()


# -- the service ------------------------------------------------------------------------

SECRET = "test-secret-key-0123456789abcdef"


def write_config(tmp_path, extra: str = "", database_url: str | None = None) -> str:
    """A config file for one test, on its own SQLite file unless told otherwise."""
    db = database_url or f"sqlite:///{tmp_path / 'omnidesk.db'}"
    path = tmp_path / "config.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\nsecret_key = "{SECRET}"\n'
        f'[database]\nurl = "{db}"\n[server]\nport = 0\n{extra}\n'
    )
    return str(path)


@pytest.fixture
async def service(tmp_path, aiohttp_client):
    """The web app wired as `omnidesk serve` wires it, with a test client and an API token."""
    from inbox import config as config_mod
    from inbox.store.migrate import upgrade
    from inbox.store.tokens import create as create_token
    from omnidesk.app import make_web_app
    from omnidesk.wiring import build_services

    config = config_mod.load(write_config(tmp_path), environ={})
    upgrade(config.database_url)
    services = await build_services(config)
    services.pipeline.attach()
    client = await aiohttp_client(make_web_app(services))
    token = await services.store.write(lambda conn: create_token(conn, "test"))
    client.services = services
    client.auth = {"Authorization": f"Bearer {token}"}
    try:
        yield client
    finally:
        await services.close()
