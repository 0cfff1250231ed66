"""SIGTERM during load: `omnidesk serve` stops accepting, answers or hands back what is in
flight, and exits within 10 s with its ports free; a start on a port in use says so in one
line."""

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
import aiosmtplib
import pytest

from tests.conftest import SECRET, write_config
from tests.processes import children, gone, until
from tests.test_crash import free_port, omnidesk, wait_ready
from tests.test_smtp_crash import mail

pytestmark = pytest.mark.slow

EXIT_WITHIN = 10.0  # seconds, from SIGTERM to the process gone (the bound)


def serve(config: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "omnidesk.cli", "--config", config, "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def shutdown_config(tmp_path: Path) -> tuple[str, int, int]:
    http, smtp = free_port(), free_port()
    extra = f'[email]\ndomain = "desk.test"\n[smtp]\nport = {smtp}\ntimeout = 300\n'
    config = write_config(tmp_path, extra)
    cfg = Path(config)
    cfg.write_text(cfg.read_text().replace("port = 0", f"port = {http}"))
    omnidesk("migrate", config=config)
    return config, http, smtp


async def test_sigterm_under_load_exits_in_time_keeps_every_ack_and_frees_the_ports(tmp_path):
    config, http, smtp = shutdown_config(tmp_path)
    token = omnidesk("token", "create", "shutdown", config=config).stdout.strip()
    url = f"http://127.0.0.1:{http}"
    headers = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "serve.log"
    proc = serve(config, log)
    acked_api: set[str] = set()
    acked_mail: set[str] = set()
    idle: list[socket.socket] = []
    sockets = aiohttp.ClientSession()
    try:
        await wait_ready(url, proc, str(log))
        writer = children(proc.pid)
        # clients that would hold a naive shutdown open: an SMTP session idle after EHLO
        # (its timeout is 300 s), an HTTP keep-alive connection, half an HTTP request
        s = socket.create_connection(("127.0.0.1", smtp))
        s.recv(512)
        s.sendall(b"EHLO idle.example.org\r\n")
        idle.append(s)
        s = socket.create_connection(("127.0.0.1", http))
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{http}\r\n\r\n".encode())
        s.recv(4096)
        idle.append(s)
        s = socket.create_connection(("127.0.0.1", http))
        s.sendall(b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        idle.append(s)

        # and a socket.io connection (a request in flight for as long as it is open)
        engine = await sockets.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
        assert (await engine.receive_str()).startswith("0{")  # engine.io's open packet

        stop = asyncio.Event()

        async def api_client(n: int, session: aiohttp.ClientSession) -> None:
            i = 0
            while not stop.is_set():
                key = f"a{n}-{i}"
                i += 1
                try:
                    async with session.post(
                        url + "/api/v1/messages",
                        json={"sender": f"term{n}@example.com", "text": f"message {key}"},
                        headers={**headers, "Idempotency-Key": key},
                    ) as resp:
                        if 200 <= resp.status < 300:
                            acked_api.add(key)
                except (TimeoutError, aiohttp.ClientError):
                    await asyncio.sleep(0.05)

        async def smtp_client(n: int) -> None:
            i = 0
            while not stop.is_set():
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp, timeout=5)
                try:
                    await client.connect()
                    while not stop.is_set():
                        m = mail(n, i)
                        i += 1
                        errors, _ = await client.send_message(m)
                        if not errors:
                            acked_mail.add(m["Message-ID"])
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    await asyncio.sleep(0.05)
                finally:
                    client.close()

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            tasks = [asyncio.create_task(api_client(n, session)) for n in range(8)]
            tasks += [asyncio.create_task(smtp_client(n)) for n in range(4)]
            while len(acked_api) < 200 or len(acked_mail) < 40:
                assert proc.poll() is None, log.read_text()[-2000:]
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGTERM)  # requests and mail are in flight
            sent_at = time.monotonic()
            exited = await asyncio.to_thread(proc.wait, 60)
            took = time.monotonic() - sent_at
            stop.set()
            await asyncio.gather(*tasks)
    finally:
        await sockets.close()
        for s in idle:
            s.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert took < EXIT_WITHIN, f"exit took {took:.1f} s\n{text[-3000:]}"
    assert exited == 0, text[-3000:]
    assert "shutting down" in text
    assert "Traceback" not in text, text[-3000:]
    for pid in writer:  # the SQLite writer child is gone too
        await until(lambda pid=pid: gone(pid), 5, f"child {pid} to exit")

    # everything acknowledged is stored, once
    with sqlite3.connect(tmp_path / "omnidesk.db") as db:
        api = dict(
            db.execute(
                "SELECT external_id, count(*) FROM messages WHERE channel='api' GROUP BY external_id"
            ).fetchall()
        )
        email = dict(
            db.execute(
                "SELECT external_id, count(*) FROM messages WHERE channel='email'"
                " GROUP BY external_id"
            ).fetchall()
        )
    assert not acked_api - api.keys(), f"{len(acked_api - api.keys())} API messages lost"
    lost_mail = acked_mail - {f"<{k}>" for k in email}
    assert not lost_mail, f"{len(lost_mail)} accepted mails lost"
    assert all(c == 1 for c in [*api.values(), *email.values()])

    # the same ports again, at once
    started = time.monotonic()
    proc = serve(config, log)
    try:
        await wait_ready(url, proc, str(log))
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp, timeout=5)
        await client.connect()
        await client.quit()
        assert time.monotonic() - started < 30
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0
    assert "already in use" not in log.read_text()


@pytest.mark.parametrize("taken", ["http", "smtp"])
def test_a_port_in_use_is_one_line_naming_it(tmp_path, taken):
    config, http, smtp = shutdown_config(tmp_path)
    port = http if taken == "http" else smtp
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        proc = subprocess.run(
            [sys.executable, "-m", "omnidesk.cli", "--config", config, "serve"],
            env={**os.environ, "OMNIDESK_SECRET_KEY": SECRET},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("omnidesk: ")]
    assert len(errors) == 1, proc.stderr
    assert " ERROR " not in proc.stderr, proc.stderr
    assert f"127.0.0.1:{port}" in errors[0] and "already in use" in errors[0]


async def test_sigterm_stops_the_rq_worker_role_in_time(tmp_path, postgres_database, redis_url):
    """The scaled-out delivery worker (an RQ worker thread in `serve --role worker`) is gone
    within the bound too, with an outbox job of its own in flight."""
    from tests.scale.sockets import empty_database

    await empty_database(postgres_database)
    config = write_config(
        tmp_path, f'[redis]\nurl = "{redis_url}"\n', database_url=postgres_database
    )
    omnidesk("migrate", config=config)
    log = tmp_path / "worker.log"
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omnidesk.cli", "--config", config, "serve", "--role", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await until(lambda: b"RQ worker" in log.read_bytes(), 30, "the RQ worker to listen")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        took = time.monotonic() - started
        text = log.read_text()
        assert took < EXIT_WITHIN, f"worker took {took:.1f} s to stop:\n{text[-2000:]}"
        assert code == 0, text[-2000:]
        assert "Traceback" not in text, text[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
