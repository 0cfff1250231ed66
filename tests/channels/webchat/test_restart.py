"""A forced server restart (SIGKILL, then start again on the same database): the widget
protocol loses nothing, shows nothing twice and keeps the order."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from webchat_support import ORIGIN, Visitor, wait_for, webchat_toml

from inbox.store.outbox import enqueue
from inbox.types import AuthorKind
from tests.conftest import write_config
from tests.test_crash import free_port, omnidesk, start, wait_ready

pytestmark = pytest.mark.slow


def agent_reply(db: str, conversation_id: int, text: str) -> int:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            return enqueue(
                conn, conversation_id=conversation_id, text=text, author_kind=AuthorKind.AGENT
            )
    finally:
        engine.dispose()


def conversation_of(db: str, message_id: int) -> int:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT conversation_id FROM messages WHERE id = :i")
            return int(conn.execute(query, {"i": message_id}).scalar_one())
    finally:
        engine.dispose()


def transcript(db: str) -> list[tuple[int, str]]:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return [
                tuple(r) for r in conn.execute(sa.text("SELECT id, text FROM messages ORDER BY id"))
            ]
    finally:
        engine.dispose()


async def test_resync_after_a_forced_restart(tmp_path):
    port = free_port()
    config = write_config(tmp_path, webchat_toml(rate_limit=100))
    cfg = Path(config)
    cfg.write_text(cfg.read_text().replace("port = 0", f"port = {port}"))
    db = str(tmp_path / "omnidesk.db")
    omnidesk("migrate", config=config)
    url = f"http://127.0.0.1:{port}"

    shown: dict[int, str] = {}  # what a widget shows: one entry per sequence number
    order: list[int] = []

    def show(items: list[dict]) -> None:
        for m in items:
            if m["seq"] not in shown:
                shown[m["seq"]] = m["text"]
                order.append(m["seq"])

    proc = start(config)
    visitor = Visitor()
    try:
        await wait_ready(url, proc, config + ".log")
        await visitor.sio.connect(
            url,
            headers={"Origin": ORIGIN},
            auth={"widget": "shop"},
            namespaces=["/widget"],
            transports=["websocket"],
        )
        hello = await visitor.hello()
        visitor.sio.connection_auth = {
            "widget": "shop",
            "token": hello["token"],
        }  # what widget.js re-sends
        acks = []
        for n in range(3):
            ack = await visitor.say(str(uuid.uuid4()), f"visitor {n}")
            assert ack["ok"]
            acks.append(ack["seq"])
            show([{"seq": ack["seq"], "text": f"visitor {n}"}])
        conversation_id = conversation_of(db, acks[0])
        first_reply = agent_reply(db, conversation_id, "agent 0")
        await wait_for(lambda: any(m["seq"] == first_reply for m in visitor.pushed()), timeout=15)
        show(visitor.pushed())

        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await wait_for(lambda: not visitor.sio.connected, timeout=10)
        visitor.connected.clear()
        # replies written while the server is down, and one unacked visitor message that
        # the widget keeps retrying
        missed = [agent_reply(db, conversation_id, f"agent {n}") for n in (1, 2)]
        pending_id = str(uuid.uuid4())

        proc = start(config)
        await wait_ready(url, proc, config + ".log")
        await visitor.connected.wait()  # the client reconnected by itself
        last_seen = max(order)
        resync = await visitor.hello(after=last_seen)
        seqs = [m["seq"] for m in resync["messages"]]
        assert seqs == sorted(set(seqs)), "a resync never repeats or reorders"
        assert set(missed) <= set(seqs) and min(seqs) > last_seen
        show(resync["messages"])
        ack = await visitor.say(pending_id, "visitor after restart")
        assert ack["ok"] and ack["seq"] > max(missed)
        show([{"seq": ack["seq"], "text": "visitor after restart"}])
        again = await visitor.say(pending_id, "visitor after restart")  # the widget's retry
        assert again["duplicate"] and again["seq"] == ack["seq"]
        after_reply = agent_reply(db, conversation_id, "agent 3")
        await wait_for(lambda: any(m["seq"] == after_reply for m in visitor.pushed()), timeout=15)
        show(visitor.pushed())  # live pushes may repeat what the resync gave: shown once
    finally:
        await visitor.sio.disconnect()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)

    stored = transcript(db)
    assert order == sorted(order)
    assert [(seq, shown[seq]) for seq in order] == stored  # nothing lost, nothing doubled, in order
    assert [t for _, t in stored] == [
        "visitor 0",
        "visitor 1",
        "visitor 2",
        "agent 0",
        "agent 1",
        "agent 2",
        "visitor after restart",
        "agent 3",
    ]
