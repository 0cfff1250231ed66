"""The activity log's reader (`inbox.store.activity`), one contract on SQLite and PostgreSQL:
a conversation's entries oldest first, in pages that end with a cursor (the last entry's
id) and together hold each entry once; other conversations' entries never show; the names
of the agents and API tokens who made them."""

from __future__ import annotations

from inbox.cases import Actor, set_priority
from inbox.cases.due import summary
from inbox.store import activity
from inbox.store import cases as repo
from inbox.store.tokens import create as create_token
from tests.store.factories import POLICIES, T0, H, agent, conversation

LEVELS = ["urgent", "low", "normal", "high", "urgent"]


async def _change(store, cid: int, to: str, actor: Actor, at) -> None:
    def write(conn):
        change = set_priority(
            repo.load_case(conn, cid), to, actor=actor, at=at, policies=POLICIES, reason=f"to {to}"
        )
        assert repo.save_change(conn, change, summary(change.case, at, POLICIES), at=at)

    await store.write(write)


async def test_pages_hold_every_entry_once_oldest_first_and_only_their_conversation(store):
    ann = await store.write(lambda conn: agent(conn, "Ann Agent"))
    cid, other = await store.write(conversation), await store.write(conversation)
    for i, level in enumerate(LEVELS):
        await _change(store, cid, level, Actor.agent(ann), T0 + i * H)
    await _change(store, other, "low", Actor.agent(ann), T0)

    seen, after, pages = [], 0, 0
    while True:
        got = await store.read(lambda conn, a=after: activity.page(conn, cid, after=a, limit=2))
        pages += 1
        assert len(got.entries) <= 2
        seen += got.entries
        if got.next_cursor is None:
            break
        assert got.next_cursor == got.entries[-1].id
        after = got.next_cursor
    assert pages == 3
    assert [(log.entry.before, log.entry.after) for log in seen] == list(
        zip(["high", *LEVELS[:-1]], LEVELS, strict=True)
    )
    assert all(log.entry.conversation_id == cid for log in seen)
    assert [log.id for log in seen] == sorted({log.id for log in seen})
    whole = await store.read(lambda conn: activity.page(conn, cid, limit=100))
    assert whole.next_cursor is None and [log.entry for log in whole.entries] == [
        log.entry for log in seen
    ]


async def test_actor_names_name_agents_and_tokens_and_nobody_else(store):
    ann = await store.write(lambda conn: agent(conn, "Ann Agent"))
    await store.write(lambda conn: create_token(conn, "crm-sync"))
    cid = await store.write(conversation)
    await _change(store, cid, "urgent", Actor.agent(ann), T0)
    await _change(store, cid, "low", Actor.api_token(1), T0 + H)
    await _change(store, cid, "normal", Actor.rule("vip"), T0 + 2 * H)
    got = await store.read(lambda conn: activity.page(conn, cid))
    names = await store.read(
        lambda conn: activity.actor_names(conn, [log.entry for log in got.entries])
    )
    assert names == {f"agent:{ann}": "Ann Agent", "api_token:1": "crm-sync"}
