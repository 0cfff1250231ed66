"""Processes the benchmarks measure: a bare aiohttp JSON handler (the baseline) and
omnidesk itself, each started as its own process on 127.0.0.1 and stopped afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def process_cpu_seconds(pid: int) -> float:
    """CPU time process `pid` has used so far (user + system, all threads; Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Omnidesk:
    """A running omnidesk process (one role) on SQLite in a temp dir."""

    url: str
    token: str
    data_dir: Path
    cli: list[str]
    env: dict[str, str]
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system, all threads)."""
        return process_cpu_seconds(self.pid)

    @property
    def database(self) -> Path:
        return self.data_dir / "omnidesk.db"

    def untriaged(self) -> int:
        """Stored messages the triage pipeline has not handled yet (needs_triage)."""
        with closing(sqlite3.connect(self.database, timeout=30)) as db:
            return int(db.execute("SELECT count(*) FROM messages WHERE needs_triage").fetchone()[0])

    def drain_triage(self, timeout: float = 600) -> tuple[int, float]:
        """Run `omnidesk serve --role worker` on the same database until every stored
        message is triaged (its pipeline.recover() takes the needs_triage backlog in
        batches): (messages triaged, seconds). The clock starts at the first batch
        committed, so the worker's start-up (imports, connections) is not counted."""
        backlog = self.untriaged()
        if backlog == 0:
            return 0, 0.0
        proc = subprocess.Popen([*self.cli, "serve", "--role", "worker"], env=self.env, cwd=ROOT)
        try:
            deadline = time.monotonic() + timeout
            first: tuple[float, int] | None = None
            while time.monotonic() < deadline:
                left = self.untriaged()
                now = time.perf_counter()
                if first is None and left < backlog:
                    first = (now, left)
                if left == 0:
                    assert first is not None
                    started, remaining = first
                    # what was triaged after the first batch, over the time it took
                    return remaining, max(now - started, 1e-6)
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {proc.returncode}")
                time.sleep(0.05)
            raise RuntimeError(f"triage backlog of {backlog} not drained in {timeout} s")
        finally:
            proc.terminate()
            proc.wait(15)


@contextmanager
def omnidesk_process(extra_config: str = "", role: str = "all") -> Iterator[Omnidesk]:
    """A fresh omnidesk on SQLite in a temp dir running `omnidesk serve --role ROLE`
    ("all": every role in one process, the embedded default)."""
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
        proc = subprocess.Popen([*cli, "serve", "--role", role], env=env, cwd=ROOT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/healthz")
            yield Omnidesk(url, token, Path(tmp), cli, env, proc.pid)
        finally:
            proc.terminate()
            proc.wait(15)


@contextmanager
def omnidesk_server(extra_config: str = "", role: str = "all") -> Iterator[tuple[str, str]]:
    """(base URL, API token) of a fresh omnidesk (see omnidesk_process)."""
    with omnidesk_process(extra_config, role) as od:
        yield od.url, od.token


async def committing_ingest(triage: bool = False) -> tuple[Any, Any]:
    """omnidesk's real ingest on a fresh SQLite file (WAL, synchronous=FULL), as the `smtp`
    role runs it: commit, then message.received on the bus, and no triage pipeline in this
    process (the `worker` role triages). Returns (ingest, async close); close() then
    triages the backlog as a worker's pipeline.recover() does, and returns the figures of
    that drain (messages, seconds, per second) so the whole path is reported.

    With triage=True the pipeline runs in this process beside ingest, as the all-in-one
    `omnidesk serve` runs it (see embedded_ingest)."""
    from inbox.bus.backends import MemoryBus
    from inbox.ingest import Ingestor
    from inbox.pipeline import Pipeline
    from inbox.store.backends import open_store
    from inbox.store.migrate import upgrade

    tmp = tempfile.mkdtemp(prefix="omnidesk-bench-")
    url = f"sqlite:///{tmp}/omnidesk.db"
    upgrade(url)
    # as `omnidesk serve` opens it: ingest transactions in the SQLite writer process
    store = open_store(url, write_process=True)
    await store.start()
    bus = MemoryBus()
    await bus.start()
    pipeline = Pipeline(store, bus)
    if triage:
        pipeline.attach()
    ingest = Ingestor(store, bus)

    async def close() -> dict[str, float]:
        await ingest.close()
        await bus.drain()
        await pipeline.idle()
        # what is left untriaged now is the backlog a worker process takes over
        worker = Pipeline(store, bus)
        started = time.perf_counter()
        drained = await worker.recover()
        seconds = time.perf_counter() - started
        await pipeline.close()
        await bus.close()
        await store.close()
        shutil.rmtree(tmp, ignore_errors=True)
        return {
            "triage_backlog": drained,
            "triage_seconds": round(seconds, 3),
            "triage_per_s": round(drained / seconds, 1) if drained else 0.0,
        }

    return ingest, close


def helper_pids(ingest: Any) -> list[int]:
    """Processes working for `ingest` (the SQLite writer process), whose CPU is the
    server's too."""
    process = getattr(getattr(ingest, "store", None), "process", None)
    pid = process.pid() if process is not None else None
    return [pid] if pid else []


async def embedded_ingest() -> tuple[Any, Any]:
    """The all-in-one shape: ingest with the triage pipeline in the same process."""
    return await committing_ingest(triage=True)
