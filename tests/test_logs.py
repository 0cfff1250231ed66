"""Logs: one line per significant event with ids; JSON on request; no bodies or secrets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import SECRET, write_config
from tests.test_crash import free_port, omnidesk, wait_ready

pytestmark = pytest.mark.slow


async def test_json_logs_carry_ids_and_never_bodies_or_tokens(tmp_path):
    port = free_port()
    config = write_config(tmp_path)
    cfg = Path(config)
    cfg.write_text(cfg.read_text().replace("port = 0", f"port = {port}"))
    omnidesk("migrate", config=config)
    token = omnidesk("token", "create", "logs", config=config).stdout.strip()
    log_path = tmp_path / "server.log"
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "omnidesk.cli",
                "--config",
                config,
                "serve",
                "--log-format",
                "json",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    body_text = "my secret card number is 4111-1111-1111-1111"
    try:
        await wait_ready(url, proc, str(log_path))
        async with aiohttp.ClientSession() as session:
            async with session.post(
                url + "/api/v1/messages",
                json={
                    "sender": "logs@example.com",
                    "text": body_text,
                    "subject": "private subject",
                },
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                created = await resp.json()
        await asyncio.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    ingested = [r for r in records if r["message"].startswith("ingested api")]
    assert len(ingested) == 1
    assert f"message={created['message_id']}" in ingested[0]["message"]
    assert f"conversation={created['conversation_id']}" in ingested[0]["message"]
    text = log_path.read_text()
    assert body_text not in text and "private subject" not in text
    assert token not in text and SECRET not in text
