"""Kill -9 the SMTP role mid-stream: every message answered 250 is stored exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from tests.conftest import SECRET, write_config
from tests.test_crash import free_port, omnidesk

pytestmark = pytest.mark.slow


def start_smtp(config: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    with open(config + ".log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "omnidesk.cli", "--config", config, "serve", "--role", "smtp"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_smtp(port: int, proc: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, Path(log).read_text()[-2000:]
        try:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=2)
            await client.connect()
            await client.quit()
            return
        except (aiosmtplib.SMTPException, OSError):
            await asyncio.sleep(0.1)
    raise AssertionError("SMTP role did not start")


def mail(n: int, i: int) -> EmailMessage:
    m = EmailMessage()
    m["From"] = f"sender{n}@example.org"
    m["To"] = "support@desk.test"
    m["Subject"] = f"message {n}-{i}"
    m["Message-ID"] = f"<c{n}-{i}@example.org>"
    m.set_content(f"body {n}-{i}\n" * 20)
    return m


async def test_sigkill_on_the_smtp_role_loses_no_accepted_mail(tmp_path):
    port = free_port()
    extra = f'[email]\ndomain = "desk.test"\n[smtp]\nport = {port}\n'
    config = write_config(tmp_path, extra)
    omnidesk("migrate", config=config)
    log = config + ".log"
    proc = start_smtp(config)
    accepted: set[str] = set()
    sent: list[str] = []
    try:
        await wait_smtp(port, proc, log)
        stop = asyncio.Event()

        async def sender(n: int) -> None:
            i = 0
            while not stop.is_set():
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=5)
                try:
                    await client.connect()
                    while not stop.is_set():
                        m = mail(n, i)
                        i += 1
                        sent.append(m["Message-ID"])
                        errors, _ = await client.send_message(m)
                        if not errors:  # 250 for the one recipient
                            accepted.add(m["Message-ID"])
                except (aiosmtplib.SMTPException, OSError):
                    await asyncio.sleep(0.02)
                finally:
                    client.close()

        tasks = [asyncio.create_task(sender(n)) for n in range(6)]
        while len(accepted) < 150:
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # sessions are mid-DATA
        proc.wait(10)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(accepted) >= 150

    proc = start_smtp(config)
    try:
        await wait_smtp(port, proc, log)
        with sqlite3.connect(tmp_path / "omnidesk.db") as db:
            rows = dict(
                db.execute(
                    "SELECT external_id, count(*) FROM messages WHERE channel='email' GROUP BY external_id"
                ).fetchall()
            )
        stored = {f"<{key}>" for key in rows}
        missing = accepted - stored
        assert not missing, f"{len(missing)} accepted messages lost"
        assert all(count == 1 for count in rows.values())
        # senders retry what was not acknowledged, and may resend what was: still once each
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=5)
        await client.connect()
        for message_id in sent[-30:]:
            n, i = message_id[2:].split("@")[0].split("-")
            errors, _ = await client.send_message(mail(int(n), int(i)))
            assert not errors
        await client.quit()
        await asyncio.sleep(0.5)
        with sqlite3.connect(tmp_path / "omnidesk.db") as db:
            counts = [
                c
                for (c,) in db.execute(
                    "SELECT count(*) FROM messages WHERE channel='email' GROUP BY external_id"
                )
            ]
        assert counts and all(c == 1 for c in counts)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
