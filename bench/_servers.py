"""Processes the benchmarks measure: a bare aiohttp JSON handler (the baseline) and
omnidesk itself, each started as its own process on 127.0.0.1 and stopped afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


BARE = """
import json, sys
from aiohttp import web
async def handle(request):
    data = await request.json()
    return web.json_response({"ok": True, "n": len(data)}, status=201)
async def health(request):
    return web.Response(text="ok")
app = web.Application()
app.add_routes([web.post("/api/v1/messages", handle), web.get("/healthz", health)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


@contextmanager
def bare_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE, str(port)])
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def omnidesk_server(extra_config: str = "") -> Iterator[tuple[str, str]]:
    """(base URL, API token) of a fresh omnidesk on SQLite in a temp dir."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(
            f'data_dir = "{tmp}"\nsecret_key = "{SECRET}"\n[server]\nport = {port}\n'
            f'log_level = "WARNING"\n{extra_config}\n'
        )
        env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
        cli = [sys.executable, "-m", "omnidesk.cli", "--config", str(cfg)]
        subprocess.run([*cli, "migrate"], check=True, env=env, capture_output=True, cwd=ROOT)
        token = subprocess.run(
            [*cli, "token", "create", "bench"],
            check=True,
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
        proc = subprocess.Popen([*cli, "serve"], env=env, cwd=ROOT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/healthz")
            yield url, token
        finally:
            proc.terminate()
            proc.wait(15)


async def committing_ingest() -> tuple[Any, Any]:
    """omnidesk's real ingest on a fresh SQLite file (WAL, synchronous=FULL) with the
    triage pipeline attached, as `omnidesk serve` runs it: (ingest, async close)."""
    from inbox.bus import MemoryBus
    from inbox.ingest import Ingestor
    from inbox.migrate import upgrade
    from inbox.pipeline import Pipeline
    from inbox.store import open_store

    tmp = tempfile.mkdtemp(prefix="omnidesk-bench-")
    url = f"sqlite:///{tmp}/omnidesk.db"
    upgrade(url)
    store = open_store(url)
    bus = MemoryBus()
    await bus.start()
    pipeline = Pipeline(store, bus)
    pipeline.attach()
    ingest = Ingestor(store, bus)

    async def close() -> None:
        await ingest.close()
        await bus.drain()
        await pipeline.idle()
        await pipeline.close()
        await bus.close()
        await store.close()
        shutil.rmtree(tmp, ignore_errors=True)

    return ingest, close
