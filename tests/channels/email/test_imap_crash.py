"""Kill -9 the worker role while it fetches from a real Dovecot: after a restart every mail
is ingested exactly once (the IMAP position is committed with each message)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from test_email_imap import PASSWORD, USER, Dovecot, dovecot  # noqa: F401 - the fixture

from tests.conftest import SECRET, write_config
from tests.test_crash import omnidesk

pytestmark = pytest.mark.slow

MAILS = 300


def start_worker(config: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    with open(config + ".log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "omnidesk.cli", "--config", config, "serve", "--role", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stored(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db) as conn:
            return dict(
                conn.execute(
                    "SELECT external_id, count(*) FROM messages WHERE channel='email' GROUP BY external_id"
                ).fetchall()
            )
    except sqlite3.OperationalError:  # not migrated yet
        return {}


def wait(predicate, seconds: float, proc: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, Path(log).read_text()[-3000:]
        assert time.monotonic() < deadline, Path(log).read_text()[-3000:]
        time.sleep(0.02)


def test_worker_killed_mid_fetch_ingests_each_mail_once(tmp_path, dovecot: Dovecot):  # noqa: F811
    client = dovecot.client()
    try:
        for i in range(MAILS):
            m = EmailMessage()
            m["From"] = f"customer{i % 17}@example.org"
            m["To"] = "support@desk.test"
            m["Subject"] = f"mail {i}"
            m["Message-ID"] = f"<imap-{i}@example.org>"
            m.set_content(f"body of mail {i}\n" * 30)
            typ, data = client.append("INBOX", None, None, m.as_bytes())
            assert typ == "OK", data
    finally:
        client.logout()
    extra = (
        '[email]\ndomain = "desk.test"\n[smtp]\nenabled = false\n'
        f'[[imap.mailboxes]]\nname = "support"\nhost = "127.0.0.1"\nport = {dovecot.port}\n'
        f'tls = false\nuser = "{USER}"\npassword = "{PASSWORD}"\nidle = false\npoll_interval = 1\n'
    )
    config = write_config(tmp_path, extra)
    omnidesk("migrate", config=config)
    db, log = tmp_path / "omnidesk.db", config + ".log"

    proc = start_worker(config)
    try:
        wait(lambda: len(stored(db)) >= 40, 60, proc, log)  # mid-fetch
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    before = stored(db)
    assert 40 <= len(before) < MAILS, "the kill should land mid-fetch"

    proc = start_worker(config)
    try:
        wait(lambda: len(stored(db)) == MAILS, 120, proc, log)
        time.sleep(1.5)  # another poll: nothing more may arrive
        after = stored(db)
        assert len(after) == MAILS
        assert all(count == 1 for count in after.values())
        assert set(after) == {f"imap-{i}@example.org" for i in range(MAILS)}
        with sqlite3.connect(db) as conn:
            (position,) = conn.execute(
                "SELECT position FROM cursors WHERE source='imap:support'"
            ).fetchone()
        assert position.endswith(f":{MAILS}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
