"""`omnidesk token revoke` takes effect at once in every process that remembers the token:
the embedded server (SQLite, in-process bus) and each web process of a scaled-out
deployment (PostgreSQL + Redis), although each keeps valid tokens in a 30 s cache."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

from inbox import config as config_mod
from inbox.store.migrate import upgrade
from inbox.store.tokens import create as create_token
from inbox.store.tokens import revoke as revoke_token
from omnidesk.app import make_web_app
from omnidesk.wiring import build_services
from tests.conftest import write_config

LIST = "/api/v1/conversations"


async def cli(config_path: str, *args: str) -> tuple[int, str]:
    """The real `omnidesk` command in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIDESK_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "omnidesk.cli",
        "-c",
        config_path,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def status(client, token: str) -> int:
    resp = await client.get(LIST, headers={"Authorization": f"Bearer {token}"})
    await resp.read()
    return resp.status


async def test_embedded_server_forgets_a_token_revoked_by_the_cli_at_once(service, tmp_path):
    store = service.services.store
    kept = await store.write(lambda c: create_token(c, "db-only"))
    gone = await store.write(lambda c: create_token(c, "revoke-me"))
    for token in (kept, gone):  # both warm in the server's cache
        assert await status(service, token) == 200
    # a revocation written to the database alone: the warm cache still answers (this is
    # the cache the CLI has to reach)
    await store.write(lambda c: revoke_token(c, "db-only"))
    assert await status(service, kept) == 200

    code, out = await cli(str(tmp_path / "config.toml"), "token", "revoke", "revoke-me")
    assert code == 0, out
    assert "revoked" in out
    assert await status(service, gone) == 401  # the very next call
    body = await (await service.get(LIST, headers={"Authorization": f"Bearer {gone}"})).json()
    assert body["error"]["message"] == "invalid or revoked API token"
    # and every other cached token is checked again, so the db-only one goes too
    assert await status(service, kept) == 401
    assert await status(service, service.auth["Authorization"].split()[1]) == 200


async def test_every_web_process_forgets_a_revoked_token_at_once(
    tmp_path, postgres_database, redis_url, aiohttp_client
):
    """Two web app instances on one PostgreSQL database and Redis, each with its own data
    directory (no shared stamp file: only the bus can reach them), and the CLI revoking
    in a third process with a data directory of its own."""
    upgrade(postgres_database)
    extra = f'[redis]\nurl = "{redis_url}"\n'
    clients, closers = [], []
    try:
        for n in (1, 2):
            d = tmp_path / f"web{n}"
            d.mkdir()
            config = config_mod.load(
                write_config(d, extra, database_url=postgres_database), environ={}
            )
            services = await build_services(config)
            closers.append(services.close)
            clients.append(await aiohttp_client(make_web_app(services)))
        store = services.store
        name = f"cluster-{uuid.uuid4().hex[:8]}"
        token = await store.write(lambda c: create_token(c, name))
        kept = await store.write(lambda c: create_token(c, name + "-db-only"))
        for client in clients:
            assert await status(client, token) == 200
            assert await status(client, kept) == 200
        await store.write(lambda c: revoke_token(c, name + "-db-only"))
        assert [await status(c, kept) for c in clients] == [200, 200]  # caches are warm

        (tmp_path / "cli").mkdir()
        cli_config = write_config(tmp_path / "cli", extra, database_url=postgres_database)
        code, out = await cli(cli_config, "token", "revoke", name)
        assert code == 0, out
        # the event crosses Redis pub/sub: one hop, allowed a generous second
        started = time.monotonic()
        for client in clients:
            while await status(client, token) != 401:
                assert time.monotonic() - started < 1.0, "a web process still takes the token"
                await asyncio.sleep(0.005)
        assert [await status(c, kept) for c in clients] == [401, 401]
    finally:
        for close in closers:
            await close()
