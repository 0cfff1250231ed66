"""Periodic triage recovery in cluster mode (issue 9), with real processes: two
`omnidesk serve --role worker` on PostgreSQL and Redis, an aiosmtpd relay in this process.

A message is stored with `needs_triage` set and its message.received event never reaches a
worker: it is ingested here, through the real Ingestor against the cluster's database, on
an in-memory bus nobody listens to (a web or smtp process killed right after its commit).
The workers were started, and the duties taken, before it was stored, so no start-up pass
can be what triages it: the duties holder's recovery loop, every
`recover_interval_seconds`, must. Exactly one decision is stored (one auto-reply row, one
mail at the relay), by the lease holder alone, and not before the message is
`recover_interval_seconds` old (younger ones belong to a live worker's batch). Twice, so the
loop is seen to keep running.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from inbox.bus.backends import MemoryBus
from inbox.ingest import Ingestor
from inbox.store.backends import open_store
from inbox.types import Channel, InboundMessage
from omnidesk.cluster import Cluster
from tests.conftest import _TABLES, SECRET, write_config
from tests.processes import Relay, lease_pid, until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(120)]

RECOVER = 2.0  # [outbox] recover_interval_seconds
RULES = """
[templates.ack]
subject = "Re: {{ message.subject }}"
text = "We received: {{ message.subject }}"

[[rule]]
name = "acknowledge-left-behind"
when = { channel = ["email"], subject_any = ["left behind"] }
then = { reply = "ack", stop = false }
"""


async def test_a_running_worker_triages_what_a_killed_process_left(
    tmp_path: Path, postgres_database: str, redis_url: str, relay: tuple[Relay, int]
) -> None:
    sink, relay_port = relay
    store = open_store(postgres_database)
    await store.write(lambda c: c.execute(sa.text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")))
    (tmp_path / "rules.toml").write_text(RULES)
    config = write_config(
        tmp_path,
        f'[redis]\nurl = "{redis_url}"\n'
        f"[outbox]\nrecover_interval_seconds = {RECOVER}\n"
        '[email]\ndomain = "desk.test"\ninstance = "desk-test"\n'
        f'[email.relay]\nhost = "127.0.0.1"\nport = {relay_port}\ntls = "none"\n'
        "[smtp]\nenabled = false\n"
        '[autoreply]\nrules = ["rules.toml"]\nfaq = []\ninstance_id = "desk-test"\n'
        'own_domains = ["desk.test"]\nwatch = false\nfaq_fallback = false\n'
        "per_contact_max = 100\nglobal_max_per_minute = 100000\n",
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
    # the process that stores the messages and dies before anyone hears of them
    ingest = Ingestor(store, MemoryBus())

    async def message(mid: int) -> dict[str, Any]:
        def read(c: Any) -> dict[str, Any]:
            row = c.execute(
                sa.text(
                    "SELECT m.needs_triage, m.created_at, m.conversation_id, c.triage "
                    "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                    "WHERE m.id = :id"
                ),
                {"id": mid},
            ).one()
            replies = c.execute(
                sa.text(
                    "SELECT count(*) FROM messages m JOIN outbox o ON o.message_id = m.id "
                    "WHERE m.conversation_id = :c AND m.direction = 'outbound' "
                    "AND m.author_kind = 'bot'"
                ),
                {"c": row.conversation_id},
            ).scalar()
            triage = row.triage if not isinstance(row.triage, str) else json.loads(row.triage)
            created = row.created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            return {
                "needs_triage": row.needs_triage,
                "created_at": created,
                "triage": triage,
                "replies": int(replies),
            }

        return await store.read(read)

    try:
        await asyncio.to_thread(node.start)
        by_pid = {p.popen.pid: name for name, p in node.procs.items() if p.popen is not None}
        await until(lambda: lease_pid(redis_url) in by_pid, 15, "a worker to take the duties")
        holder = by_pid[lease_pid(redis_url)]  # type: ignore[index]
        standby = next(name for name in by_pid.values() if name != holder)
        await until(lambda: "worker duties taken" in node.log_of(holder), 10, "the duties log")
        # the holder's first recovery pass, at election, is over before anything is stored
        await asyncio.sleep(RECOVER * 1.5)

        for n in (1, 2):
            subject = f"left behind {n}"
            result = await ingest(
                InboundMessage(
                    channel=Channel.EMAIL,
                    external_id=f"<left-behind-{n}@example.org>",
                    sender=f"ann{n}@example.org",
                    text="my parcel never came",
                    subject=subject,
                    received_at=datetime.now(UTC),
                )
            )
            stored_at = time.monotonic()
            mid = result.message_id
            row = await message(mid)
            assert row["needs_triage"] is True and row["replies"] == 0, row
            assert all(node.alive().values()), "both workers run while the message is stored"

            async def triaged(mid: int = mid) -> bool:
                return not (await message(mid))["needs_triage"]

            done = await until(triaged, 2 * RECOVER + 5, f"message {mid} to be triaged")
            # not before it is RECOVER old (recovery leaves younger ones to live batches),
            # and within about two intervals (one to age, at most one to the next pass)
            assert done - stored_at < 2 * RECOVER + 3, done - stored_at
            row = await message(mid)
            decision = row["triage"]
            assert decision["message_id"] == mid and decision["rule"] == "acknowledge-left-behind"
            age = (datetime.fromisoformat(decision["at"]) - row["created_at"]).total_seconds()
            assert age >= RECOVER - 0.05, f"triaged {age:.2f} s after it was stored"

            # exactly one decision: one auto-reply written, one mail delivered, by the holder
            assert row["replies"] == 1, row
            text = f"We received: {subject}"
            await until(lambda: sink.count(text) >= 1, 20, "the reply")  # noqa: B023
            await asyncio.sleep(0.5)
            assert sink.count(text) == 1
            logs = {name: node.log_of(name) for name in (holder, standby)}
            assert logs[holder].count(f"triaged message={mid} ") == 1, logs[holder][-3000:]
            assert f"triaged message={mid} " not in logs[standby]
            assert logs[holder].count("triaged 1 messages a stopped process had left") == n
            assert "a stopped process had left" not in logs[standby]

        assert lease_pid(redis_url) in by_pid and by_pid[lease_pid(redis_url)] == holder  # type: ignore[index]
    finally:
        await ingest.close()
        await asyncio.to_thread(node.stop)
        await store.close()
