"""Kill -9 the server mid-stream: every request that got a 2xx is stored exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import SECRET, write_config
from tests.processes import children, gone, until

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def omnidesk(*args: str, config: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    return subprocess.run(
        [sys.executable, "-m", "omnidesk.cli", "--config", config, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )


def start(config: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    with open(config + ".log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "omnidesk.cli", "--config", config, "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log: str = "") -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, (
                f"server exited: {Path(log).read_text()[-2000:] if log else ''}"
            )
            try:
                async with session.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not become ready")


async def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path):
    port = free_port()
    config = write_config(tmp_path)
    cfg = Path(config)
    cfg.write_text(cfg.read_text().replace("port = 0", f"port = {port}"))
    omnidesk("migrate", config=config)
    token = omnidesk("token", "create", "crash-test", config=config).stdout.strip()
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}

    proc = start(config)
    acked: set[str] = set()
    sent: list[str] = []
    try:
        await wait_ready(url, proc, config + ".log")
        stop = asyncio.Event()

        async def client(n: int, session: aiohttp.ClientSession) -> None:
            i = 0
            while not stop.is_set():
                key = f"c{n}-{i}"
                i += 1
                sent.append(key)
                try:
                    async with session.post(
                        url + "/api/v1/messages",
                        json={"sender": f"crash{n}@example.com", "text": f"message {key}"},
                        headers={**headers, "Idempotency-Key": key},
                    ) as resp:
                        if 200 <= resp.status < 300:
                            acked.add(key)
                except (TimeoutError, aiohttp.ClientError):
                    await asyncio.sleep(0.01)

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            tasks = [asyncio.create_task(client(n, session)) for n in range(16)]
            while len(acked) < 300:
                await asyncio.sleep(0.02)
            writers = children(proc.pid)  # the SQLite writer process
            assert len(writers) == 1, writers
            proc.send_signal(signal.SIGKILL)  # mid-stream: requests are in flight
            proc.wait(10)
            # the writer sees its parent gone (EOF), ends its transaction and exits
            await until(lambda: gone(writers[0]), 10, "the orphaned writer to exit")
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*tasks)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(acked) >= 300

    # restart on the same database: everything acknowledged is there, exactly once
    proc = start(config)
    try:
        await wait_ready(url, proc, config + ".log")
        db = sqlite3.connect(str(tmp_path / "omnidesk.db"))
        rows = dict(
            db.execute(
                "SELECT external_id, count(*) FROM messages WHERE channel='api' GROUP BY external_id"
            ).fetchall()
        )
        db.close()
        missing = acked - rows.keys()
        assert not missing, f"{len(missing)} acknowledged messages lost"
        assert all(count == 1 for count in rows.values())
        # clients retry what they did not get an answer for: still exactly once
        async with aiohttp.ClientSession() as session:
            for key in sent[-40:]:
                async with session.post(
                    url + "/api/v1/messages",
                    json={"sender": "retry@example.com", "text": key},
                    headers={**headers, "Idempotency-Key": key},
                ) as resp:
                    assert resp.status in (200, 201)
                    assert (await resp.json())["duplicate"] is (key in rows)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert proc.returncode == 0
