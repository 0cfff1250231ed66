"""The IMAP poller against a real Dovecot (apt: dovecot-imapd), started per test."""

from __future__ import annotations

import asyncio
import getpass
import grp
import imaplib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from emailtest_support import DOMAIN, SECRET, RecordingIngest, build_mail, eventually

from channels.email.files import MemoryAttachmentStore
from channels.email.imap import IMAPPoller
from channels.email.parse import ParseOptions
from channels.email.settings import IMAPMailbox
from tests.conftest import IN_CI

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
USER, PASSWORD = "agent", "imap-test-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dovecot:
    port: int
    root: Path
    proc: subprocess.Popen[bytes] | None = None

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            typ, data = client.append(folder, None, None, raw)
            assert typ == "OK", data
        finally:
            client.logout()

    def uidvalidity(self, folder: str) -> int:
        client = self.client()
        try:
            typ, data = client.status(folder, "(UIDVALIDITY)")
            assert typ == "OK", data
            return int(data[0].split(b"UIDVALIDITY ")[1].rstrip(b")"))
        finally:
            client.logout()


def _config(root: Path, port: int) -> str:
    if os.geteuid() == 0:
        # dovecot refuses to run its login and mail processes as root
        users = "uid=dovecot gid=dovecot"
        accounts = ""
    else:
        # unprivileged (CI): every dovecot process runs as us
        me, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
        users = f"uid={os.getuid()} gid={os.getgid()}"
        accounts = (
            f"default_internal_user = {me}\ndefault_login_user = {me}\n"
            f"default_internal_group = {group}\n"
        )
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
{accounts}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = {users} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    if DOVECOT is None:
        reason = "dovecot not installed (apt-get install dovecot-imapd)"
        if IN_CI:
            pytest.fail(f"{reason}: under CI=true the IMAP tests may not skip")
        pytest.skip(reason)
    # not pytest's tmp_path: its 0700 parents keep dovecot's unprivileged processes out
    root = Path(tempfile.mkdtemp(prefix="omnidesk-dovecot-"))
    root.chmod(0o755)
    for sub in ("mail", "home"):
        (root / sub).mkdir()
        if os.geteuid() == 0:
            shutil.chown(root / sub, "dovecot", "dovecot")
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = _free_port()
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port))
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = Dovecot(port=port, root=root, proc=proc)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                server.client().logout()
                break
            except (OSError, imaplib.IMAP4.error):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (root / "dovecot.log").read_text()
                        if (root / "dovecot.log").exists()
                        else ""
                    )
                    pytest.fail(f"dovecot did not start: {log[-2000:]}")
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(root, ignore_errors=True)


def _mailbox(server: Dovecot, **overrides: object) -> IMAPMailbox:
    fields: dict[str, object] = {
        "name": "support",
        "host": "127.0.0.1",
        "port": server.port,
        "tls": False,
        "user": USER,
        "password": PASSWORD,
        "folder": "INBOX",
        "inbox": "support",
        "idle": False,
        "poll_interval": 0.2,
    }
    fields.update(overrides)
    return IMAPMailbox(**fields)  # type: ignore[arg-type]


def _poller(server: Dovecot, ingest: RecordingIngest, **overrides: object) -> IMAPPoller:
    return IMAPPoller(
        _mailbox(server, **overrides),
        ingest,
        ingest.get_cursor,
        MemoryAttachmentStore(),
        ParseOptions(token_secret=SECRET, reply_domain=DOMAIN),
        backoff_base=0.05,
    )


async def test_poller_ingests_each_message_once_across_restarts(dovecot: Dovecot) -> None:
    for n in range(3):
        dovecot.append(
            build_mail(subject=f"first batch {n}", message_id=f"<b1-{n}@customer.example>")
        )
    ingest = RecordingIngest()
    assert await _poller(dovecot, ingest).poll_once() == 3
    assert [m.subject for m in ingest.messages] == [f"first batch {n}" for n in range(3)]
    assert all(m.inbox == "support" for m in ingest.messages)
    validity = dovecot.uidvalidity("INBOX")
    assert ingest.cursors["imap:support"] == f"{validity}:3"

    # nothing new: `UID FETCH 4:*` still answers with UID 3, which must be filtered out
    again = _poller(dovecot, ingest)
    assert await again.poll_once() == 0
    assert ingest.calls == 3

    # a fresh poller (process restart) resumes from the stored cursor
    dovecot.append(build_mail(subject="after restart", message_id="<b2-0@customer.example>"))
    restarted = _poller(dovecot, ingest)
    assert await restarted.poll_once() == 1
    assert ingest.calls == 4
    assert [m.subject for m in ingest.messages][-1] == "after restart"
    assert ingest.cursors["imap:support"] == f"{validity}:4"
    assert restarted.health()["healthy"] is True


async def test_uidvalidity_change_resyncs_without_duplicates(dovecot: Dovecot) -> None:
    client = dovecot.client()
    client.create("Support")
    client.logout()
    mails = [build_mail(subject=f"m{n}", message_id=f"<uv-{n}@customer.example>") for n in range(3)]
    for raw in mails:
        dovecot.append(raw, "Support")
    ingest = RecordingIngest()
    assert await _poller(dovecot, ingest, folder="Support").poll_once() == 3
    old_validity = dovecot.uidvalidity("Support")

    # the folder is recreated (a server migration renumbers it): same mail, new UIDs
    await asyncio.sleep(1.1)  # dovecot derives UIDVALIDITY from the clock
    client = dovecot.client()
    assert client.delete("Support")[0] == "OK"
    assert client.create("Support")[0] == "OK"
    client.logout()
    for raw in [*mails, build_mail(subject="new one", message_id="<uv-new@customer.example>")]:
        dovecot.append(raw, "Support")
    new_validity = dovecot.uidvalidity("Support")
    assert new_validity != old_validity

    poller = _poller(dovecot, ingest, folder="Support")
    await poller.poll_once()
    # all four were offered again; the store's Message-ID dedupe kept one copy of each
    assert ingest.calls == 3 + 4
    assert sorted(m.subject for m in ingest.messages) == ["m0", "m1", "m2", "new one"]
    assert ingest.cursors["imap:support"] == f"{new_validity}:4"


async def test_failed_ingest_is_retried_and_position_not_advanced(dovecot: Dovecot) -> None:
    dovecot.append(build_mail(subject="will fail once", message_id="<f1@customer.example>"))
    ingest = RecordingIngest()
    ingest.fail_next = 1
    poller = _poller(dovecot, ingest)
    with pytest.raises(Exception, match="database unavailable"):
        await poller.poll_once()
    health = poller.health()
    assert health["healthy"] is False and "database unavailable" in health["last_error"]
    assert "imap:support" not in ingest.cursors
    assert await poller.poll_once() == 1
    assert [m.subject for m in ingest.messages] == ["will fail once"]
    assert poller.health()["healthy"] is True


async def test_run_loop_picks_up_new_mail_with_idle_and_moves_it(dovecot: Dovecot) -> None:
    client = dovecot.client()
    client.create("Done")
    client.logout()
    ingest = RecordingIngest()
    poller = _poller(dovecot, ingest, idle=True, idle_timeout=5.0, after="move", move_to="Done")
    await poller.start()
    try:
        await asyncio.wait_for(poller.synced.wait(), 10)
        await asyncio.to_thread(
            dovecot.append, build_mail(subject="pushed", message_id="<idle-1@customer.example>")
        )
        await eventually(lambda: bool(ingest.messages))
        assert [m.subject for m in ingest.messages] == ["pushed"]
    finally:
        await poller.stop()
    client = dovecot.client()
    try:
        assert client.select("INBOX")[1] == [b"0"]
        assert client.select("Done")[1] == [b"1"]
    finally:
        client.logout()


async def test_wrong_password_marks_mailbox_unhealthy_and_keeps_retrying(dovecot: Dovecot) -> None:
    ingest = RecordingIngest()
    poller = _poller(dovecot, ingest, password="wrong")
    await poller.start()
    try:
        await eventually(lambda: poller.status.failures >= 2)
        health = poller.health()
        assert health["healthy"] is False
        assert "LOGIN failed" in health["last_error"]
        assert poller.status.failures >= 2  # it backed off and tried again
    finally:
        await poller.stop()


async def test_hostile_message_in_mailbox_is_skipped_not_fatal(dovecot: Dovecot) -> None:
    hostile = (
        b"From: a@customer.example\r\nMessage-ID: <h@x>\r\n"
        + b"X-Junk: y\r\n" * 400
        + b"\r\nbody\r\n"
    )
    dovecot.append(hostile)
    dovecot.append(build_mail(subject="fine", message_id="<ok@customer.example>"))
    ingest = RecordingIngest()
    poller = _poller(dovecot, ingest)
    assert await poller.poll_once() == 1
    assert [m.subject for m in ingest.messages] == ["fine"]
    assert poller.health()["skipped"] == 1


@pytest.mark.parametrize("wait", ["idle = true", "idle = false"])
async def test_dropped_session_shows_in_readyz_within_10_seconds(
    dovecot: Dovecot, tmp_path: Path, aiohttp_client: object, wait: str
) -> None:
    """The service wired as `serve` wires it, waiting for news from Dovecot in IDLE or
    between polls (5 minutes either way): when the server goes away, /readyz names the
    mailbox within 10 s, not when the IDLE or the wait ends."""
    from inbox import config as config_mod
    from inbox.store.migrate import upgrade
    from omnidesk.app import make_web_app
    from omnidesk.wiring import build_services
    from tests.conftest import write_config
    from tests.processes import children

    extra = (
        f'[email]\ndomain = "{DOMAIN}"\n[smtp]\nenabled = false\n'
        f'[[imap.mailboxes]]\nname = "support"\nhost = "127.0.0.1"\nport = {dovecot.port}\n'
        f'tls = false\nuser = "{USER}"\npassword = "{PASSWORD}"\n{wait}\n'
        "idle_timeout = 300\npoll_interval = 300\n"
    )
    config = config_mod.load(write_config(tmp_path, extra), environ={})
    upgrade(config.database_url)
    services = await build_services(config)
    try:
        for startup in services.parts.startups:
            await startup()
        client = await aiohttp_client(make_web_app(services))  # type: ignore[operator]

        async def readyz() -> tuple[int, dict]:
            resp = await client.get("/readyz")
            return resp.status, await resp.json()

        deadline = time.monotonic() + 15
        while (answer := await readyz())[0] != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert answer[0] == 200, answer
        await asyncio.sleep(1.5)  # in IDLE now, the last answer cached a while ago
        assert dovecot.proc is not None
        # every session dropped at once (a SIGTERM'd Dovecot says BYE only seconds later),
        # and no reconnect possible
        for pid in children(dovecot.proc.pid):
            os.kill(pid, signal.SIGKILL)
        dovecot.proc.kill()
        dropped = time.monotonic()
        while time.monotonic() - dropped < 10:
            status, body = await readyz()
            if status == 503:
                break
            await asyncio.sleep(0.2)
        assert status == 503, body
        assert body["failed"] == ["email"], body
        assert body["checks"]["email"]["detail"].startswith("unhealthy mailboxes: support: "), body
    finally:
        await services.close()
