"""Two omnidesk instances whose auto-replies are addressed to each other, over real SMTP:
each relays its outbound mail into the other's listener. Exactly one auto-reply is sent."""

from __future__ import annotations

import asyncio
import signal
import smtplib
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.test_crash import free_port, omnidesk, start, wait_ready

pytestmark = pytest.mark.slow

RULES = """
[templates.ack]
subject = "Re: {{ message.subject }}"
text = "Thanks, we received your message and will answer soon."

[[rule]]
name = "acknowledge-every-email"
when = { channel = ["email"] }
then = { reply = "ack" }
"""


def instance(tmp: Path, name: str, http: int, smtp: int, relay: int) -> str:
    tmp.mkdir()
    (tmp / "rules.toml").write_text(RULES)
    config = tmp / "config.toml"
    config.write_text(
        f'data_dir = "{tmp}"\nsecret_key = "{SECRET}"\n'
        f"[server]\nport = {http}\n"
        f'[email]\ndomain = "{name}.test"\ninstance = "{name}"\n'
        f'[email.relay]\nhost = "127.0.0.1"\nport = {relay}\ntls = "none"\n'
        f'[smtp]\nport = {smtp}\n[smtp.recipients]\n"support@{name}.test" = "default"\n'
        f'[autoreply]\nrules = ["rules.toml"]\nfaq = []\ninstance_id = "{name}"\n'
        f'own_domains = ["{name}.test"]\nwatch = false\n'
    )
    omnidesk("migrate", config=str(config))
    return str(config)


def outbound(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT author_kind, delivery_status, channel FROM messages WHERE direction='outbound'"
        ).fetchall()


def inbound_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM messages WHERE direction='inbound'").fetchone()[0]


async def test_two_instances_exchange_exactly_one_auto_reply(tmp_path):
    ports = {k: free_port() for k in ("a_http", "a_smtp", "b_http", "b_smtp")}
    a = instance(tmp_path / "a", "alpha", ports["a_http"], ports["a_smtp"], relay=ports["b_smtp"])
    b = instance(tmp_path / "b", "beta", ports["b_http"], ports["b_smtp"], relay=ports["a_smtp"])
    procs = [start(a), start(b)]
    try:
        await wait_ready(f"http://127.0.0.1:{ports['a_http']}", procs[0], a + ".log")
        await wait_ready(f"http://127.0.0.1:{ports['b_http']}", procs[1], b + ".log")
        # B's support address writes to A (as a misconfigured forwarder would)
        mail = EmailMessage()
        mail["From"] = "support@beta.test"
        mail["To"] = "support@alpha.test"
        mail["Subject"] = "Hello from beta"
        mail["Message-ID"] = "<first@beta.test>"
        mail.set_content("Is anyone there?")
        with smtplib.SMTP("127.0.0.1", ports["a_smtp"]) as client:
            client.send_message(mail)
        db_a, db_b = tmp_path / "a" / "omnidesk.db", tmp_path / "b" / "omnidesk.db"
        # A answers once; B receives the answer and does not answer it
        for _ in range(200):
            if inbound_count(db_b) >= 1 and all(s == "sent" for _, s, _ in outbound(db_a)):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # time for any (wrong) further exchange to show
        assert outbound(db_a) == [("bot", "sent", "email")]
        assert outbound(db_b) == []
        assert inbound_count(db_a) == 1 and inbound_count(db_b) == 1
        with sqlite3.connect(db_b) as conn:
            (triage,) = conn.execute("SELECT triage FROM conversations").fetchone()
        assert "suppressed" in triage and "auto" in triage.lower()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(15)
