"""The sessions repository on SQLite and PostgreSQL: a session lives until logout, idle
time, expiry, a password change or the agent's disabling; sign-in rotates and clears the
throttle."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from inbox.accounts import signin_throttle
from inbox.store import schema as t
from inbox.store import sessions, signins
from tests.store import seed

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


async def _start(store, agent_id: int, now=seed.T0) -> str:
    return await store.write(
        lambda c: sessions.create_session(
            c, agent_id, lifetime=DAY, ip="10.0.0.1", user_agent="UA", now=now
        )
    )


async def _load(store, sid: str, now):
    return await store.read(lambda c: sessions.load_session(c, sid, idle=HOUR, now=now))


async def test_a_session_is_stored_by_its_hash_and_loads_with_its_agent(store):
    aid = await seed.agent(store, "Ann", presence="away")
    sid = await _start(store, aid)
    rows = await store.read(
        lambda c: [dict(r) for r in c.execute(sa.select(t.agent_sessions)).mappings()]
    )
    assert len(rows) == 1 and sid not in repr(rows)
    assert rows[0]["ip"] == "10.0.0.1" and rows[0]["user_agent"] == "UA"
    got = await _load(store, sid, seed.at(1))
    assert got is not None and got.agent.id == aid and got.agent.name == "Ann"
    assert got.presence == "away" and got.expires_at == seed.T0 + DAY
    assert len(got.csrf_token) > 20
    assert await _load(store, sid + "x", seed.at(1)) is None
    assert await _load(store, "", seed.at(1)) is None
    assert await _load(store, "x" * 200, seed.at(1)) is None


async def test_a_session_ends_when_idle_unless_touched_and_at_expiry(store):
    aid = await seed.agent(store)
    sid = await _start(store, aid)
    assert await _load(store, sid, seed.T0 + HOUR) is None  # idle an hour
    await store.write(lambda c: sessions.touch_session(c, sid, seed.at(50)))
    assert await _load(store, sid, seed.T0 + HOUR) is not None
    await store.write(
        lambda c: sessions.touch_session(c, sid, seed.T0 + DAY - timedelta(minutes=1))
    )
    assert await _load(store, sid, seed.T0 + DAY) is None  # expired, however fresh


async def test_a_disabled_agent_has_no_session(store):
    aid = await seed.agent(store)
    sid = await _start(store, aid)
    await store.write(
        lambda c: c.execute(sa.update(t.agents).where(t.agents.c.id == aid).values(active=False))
    )
    assert await _load(store, sid, seed.at(1)) is None


async def test_end_one_or_all_sessions(store):
    aid = await seed.agent(store)
    other = await seed.agent(store, "Cy")
    first, second = await _start(store, aid), await _start(store, aid)
    kept = await _start(store, other)
    await store.write(lambda c: sessions.end_session(c, first))
    assert await _load(store, first, seed.at(1)) is None
    assert await _load(store, second, seed.at(1)) is not None
    await store.write(lambda c: sessions.end_session(c, "unknown"))
    assert await store.write(lambda c: sessions.end_all_sessions(c, aid)) == 1
    assert await _load(store, second, seed.at(1)) is None
    assert await _load(store, kept, seed.at(1)) is not None
    assert await store.write(lambda c: sessions.end_all_sessions(c, aid)) == 0


async def test_a_new_password_ends_every_session(store):
    aid = await seed.agent(store, password_hash="old-hash")
    sid = await _start(store, aid)
    assert await store.read(lambda c: sessions.password_hash_of(c, "bob@example.com")) == (
        aid,
        "old-hash",
    )
    await store.write(lambda c: sessions.set_password(c, aid, "new-hash"))
    assert await store.read(lambda c: sessions.password_hash_of(c, "bob@example.com")) == (
        aid,
        "new-hash",
    )
    assert (await seed.row(store, t.agents, aid))["password_changed_at"] is not None
    assert await _load(store, sid, seed.at(1)) is None


async def test_password_hash_of_knows_only_active_agents(store):
    await seed.agent(store, "Gone", active=False, password_hash="h")
    assert await store.read(lambda c: sessions.password_hash_of(c, "gone@example.com")) == (
        None,
        None,
    )
    assert await store.read(lambda c: sessions.password_hash_of(c, "nobody@x")) == (None, None)


async def test_sign_in_rotates_the_session_and_clears_the_throttle(store):
    aid = await seed.agent(store)
    before = await _start(store, aid)
    policy = signin_throttle.ThrottlePolicy()
    keys = signin_throttle.keys_for("bob@example.com", "10.0.0.9")
    for _ in range(3):
        await store.write(lambda c: signins.failed(c, keys))
        await store.write(lambda c: signins.reserve(c, keys, policy))
    assert await store.read(lambda c: signins.counted(c, keys[0])) == 3
    sid = await store.write(
        lambda c: sessions.sign_in(
            c,
            aid,
            replaces=before,
            throttle_keys=keys,
            policy=policy,
            lifetime=DAY,
            ip="10.0.0.9",
            user_agent=None,
        )
    )
    assert sid != before
    assert await store.read(lambda c: sessions.load_session(c, before, idle=HOUR)) is None
    assert (await store.read(lambda c: sessions.load_session(c, sid, idle=HOUR))).agent.id == aid
    assert await store.read(lambda c: signins.counted(c, keys[0])) == 0
    assert await store.read(lambda c: signins.counted(c, keys[1])) == 1  # two forgiven
