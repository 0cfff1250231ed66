"""IMAP in cluster mode (issue 9): two `omnidesk serve --role worker` processes on PostgreSQL
and Redis, one real Dovecot. The mailbox is polled by exactly one worker at a time (the
holder of the worker-duties lease); kill -9 it while mail keeps arriving and the other
worker takes over within seconds, from the position the first one committed: every mail
is stored exactly once.

Who polls is read from the kernel, not from our own logs: which worker processes hold an
established TCP connection to Dovecot's port (/proc/<pid>/fd against /proc/net/tcp),
sampled every 20 ms for the whole test. A standby that also polled would hold one too (the
poller keeps its connection open between polls), and dedupe by Message-ID would otherwise
hide the double polling from the messages table.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_email_imap import PASSWORD, USER, Dovecot, dovecot  # noqa: F401 - the fixture

from inbox.store.backends import open_store
from omnidesk.cluster import Cluster
from tests.conftest import _TABLES, IN_CI, SECRET, write_config
from tests.processes import lease_pid, until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(120)]

MAILS = 150
KILL_AT = 30  # stored mails when the owner is killed
DUTIES_TTL = 2.0  # [outbox] duties_lease_seconds: a standby takes over within ~ttl * 4/3


def imap_clients(pids: set[int], port: int) -> set[int]:
    """The processes among `pids` with an established TCP connection to `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    found = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    found.add(pid)
                    break
            except OSError:
                continue
    return found


class Watch(threading.Thread):
    """Samples which workers are connected to Dovecot, every 20 ms."""

    def __init__(self, pids: set[int], port: int) -> None:
        super().__init__(name="imap-watch", daemon=True)
        self.pids, self.port = pids, port
        self.samples: list[tuple[float, frozenset[int]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.monotonic(), frozenset(imap_clients(self.pids, self.port))))
            time.sleep(0.02)

    def first_seen(self, pid: int, after: float = 0.0) -> float | None:
        return next((t for t, s in list(self.samples) if t >= after and pid in s), None)


class Feeder(threading.Thread):
    """Appends MAILS mails to INBOX, one every `pace` seconds, over one IMAP session; holds
    after `hold_at` until `resume` is set (the rest arrive after the kill, whatever the
    machine's speed)."""

    def __init__(self, server: Dovecot, pace: float, hold_at: int) -> None:
        super().__init__(name="imap-feeder", daemon=True)
        self.server, self.pace, self.hold_at = server, pace, hold_at
        self.resume = threading.Event()
        self.appended = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            client = self.server.client()
            try:
                for i in range(MAILS):
                    if i == self.hold_at and not self.resume.wait(60):
                        raise TimeoutError("never resumed")
                    typ, data = client.append("INBOX", None, None, mail(i))
                    assert typ == "OK", data
                    self.appended = i + 1
                    time.sleep(self.pace)
            finally:
                client.logout()
        except BaseException as exc:
            self.error = exc


def mail(i: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"customer{i % 13}@example.org"
    m["To"] = "support@desk.test"
    m["Subject"] = f"cluster mail {i}"
    m["Message-ID"] = f"<cluster-{i}@example.org>"
    m.set_content(f"body of cluster mail {i}\n" * 20)
    return m.as_bytes()


async def test_one_worker_polls_and_the_other_takes_over_after_kill_9(
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811
    postgres_database: str,
    redis_url: str,
) -> None:
    if not Path("/proc/net/tcp").exists():
        reason = "needs Linux /proc to see who connects to Dovecot"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    store = open_store(postgres_database)
    await store.write(lambda c: c.execute(sa.text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")))
    config = write_config(
        tmp_path,
        f'[redis]\nurl = "{redis_url}"\n'
        f"[outbox]\nduties_lease_seconds = {DUTIES_TTL}\n"
        '[email]\ndomain = "desk.test"\n[smtp]\nenabled = false\n'
        f'[[imap.mailboxes]]\nname = "support"\nhost = "127.0.0.1"\nport = {dovecot.port}\n'
        f'tls = false\nuser = "{USER}"\npassword = "{PASSWORD}"\nidle = false\n'
        "poll_interval = 0.2\n",
        database_url=postgres_database,
    )
    node = Cluster(
        config=config,
        database_url=postgres_database,
        redis_url=redis_url,
        secret_key=SECRET,
        web=0,
        routers=0,
        workers=2,
        smtp=0,
        log_dir=tmp_path / "logs",
    )

    async def stored() -> dict[str, int]:
        def read(c: Any) -> dict[str, int]:
            rows = c.execute(
                sa.text(
                    "SELECT external_id, count(*) FROM messages WHERE channel = 'email' "
                    "GROUP BY external_id"
                )
            )
            return {r[0]: int(r[1]) for r in rows}

        return await store.read(read)

    watch: Watch | None = None
    feeder = Feeder(dovecot, pace=0.03, hold_at=MAILS * 2 // 3)
    try:
        await asyncio.to_thread(node.start)
        pids = {name: p.popen.pid for name, p in node.procs.items() if p.popen is not None}
        by_pid = {pid: name for name, pid in pids.items()}
        assert len(by_pid) == 2
        watch = Watch(set(by_pid), dovecot.port)
        watch.start()

        # one of them holds the lease and is connected to Dovecot
        await until(lambda: lease_pid(redis_url) in by_pid, 15, "a worker to take the duties")
        owner_pid = lease_pid(redis_url)
        assert owner_pid is not None
        standby_pid = next(pid for pid in by_pid if pid != owner_pid)
        owner, standby = by_pid[owner_pid], by_pid[standby_pid]
        await until(lambda: watch.first_seen(owner_pid), 15, f"{owner} to connect to Dovecot")

        # mail streams in; kill -9 the owner mid-stream
        feeder.start()
        await until(lambda: _at_least(stored, KILL_AT), 30, f"{KILL_AT} mails stored")
        kill_sent = time.monotonic()
        await asyncio.to_thread(node.kill, owner)  # SIGKILL, and reaped
        killed_at = time.monotonic()
        before = await stored()
        feeder.resume.set()  # and more mail arrives while nobody polls
        assert KILL_AT <= len(before) < MAILS, "the kill should land mid-stream"
        assert not any(standby_pid in s for t, s in list(watch.samples) if t < kill_sent), (
            f"{standby} polled while {owner} held the duties"
        )

        # the standby takes over within a few seconds (lease ttl + ttl/3 + connecting)
        took_over = await until(
            lambda: watch.first_seen(standby_pid, after=kill_sent), 15, f"{standby} to poll"
        )
        assert took_over - kill_sent < DUTIES_TTL * 4 / 3 + 3.0, took_over - kill_sent
        assert lease_pid(redis_url) == standby_pid

        await asyncio.to_thread(feeder.join, 60)
        assert feeder.error is None, feeder.error
        assert feeder.appended == MAILS
        await until(lambda: _at_least(stored, MAILS), 30, f"all {MAILS} mails stored")
        await asyncio.sleep(1.0)  # a few more polls: nothing may arrive twice
        watch.done.set()
        await asyncio.to_thread(watch.join, 5)

        # every mail exactly once, and the position at the last UID
        after = await stored()
        assert set(after) == {f"cluster-{i}@example.org" for i in range(MAILS)}
        assert all(n == 1 for n in after.values()), {k: n for k, n in after.items() if n != 1}
        position = await store.read(
            lambda c: c.execute(
                sa.text("SELECT position FROM cursors WHERE source = 'imap:support'")
            ).scalar()
        )
        assert position is not None and position.endswith(f":{MAILS}"), position

        # one poller at a time: the owner alone until the kill, the standby alone after
        samples = watch.samples
        assert all(len(s) <= 1 for _, s in samples), "two workers connected to Dovecot at once"
        assert all(s <= {owner_pid} for t, s in samples if t < killed_at), (
            f"{standby} polled while {owner} held the duties"
        )
        assert all(s <= {standby_pid} for t, s in samples if t > killed_at)
        polling = [t for t, s in samples if t < killed_at and owner_pid in s]
        assert len(polling) >= 10, "the owner's polling was barely observed"
        assert "IMAP polling 1 mailbox(es) in this worker" in node.log_of(owner)
        assert node.log_of(standby).count("IMAP polling 1 mailbox(es) in this worker") == 1
    finally:
        if watch is not None:
            watch.done.set()
        await asyncio.to_thread(node.stop)
        feeder.resume.set()
        if feeder.is_alive():
            await asyncio.to_thread(feeder.join, 30)
        await store.close()


async def _at_least(stored: Callable[[], Any], n: int) -> bool:
    return len(await stored()) >= n
