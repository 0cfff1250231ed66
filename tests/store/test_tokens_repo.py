"""The API tokens repository (inbox.store.tokens) on SQLite and PostgreSQL: scopes,
listing, revocation, last use, the migration that gave existing tokens full access."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from inbox.accounts.tokens import PREFIX, Scope, hash_token
from inbox.errors import Conflict, NotFound, ValidationError
from inbox.store import schema as t
from inbox.store.tokens import create as create_token
from inbox.store.tokens import list_all as list_tokens
from inbox.store.tokens import note_used, verify_and_last_used
from inbox.store.tokens import revoke as revoke_token
from inbox.store.tokens import verify as verify_token
from tests.conftest import POSTGRES_URL, admin_sql, require_server


async def test_a_token_carries_its_scope(store):
    full = await store.write(lambda c: create_token(c, "full"))
    narrow = await store.write(
        lambda c: create_token(c, "narrow", inboxes=["b", "a", "a"], read_only=True)
    )
    assert full.startswith(PREFIX) and narrow.startswith(PREFIX)
    got_full = await store.read(lambda c: verify_token(c, full))
    got_narrow = await store.read(lambda c: verify_token(c, narrow))
    assert got_full == Scope(got_full.token_id, "full", None, False)
    assert got_narrow == Scope(got_narrow.token_id, "narrow", frozenset({"a", "b"}), True)
    assert got_narrow.sees("a") and not got_narrow.sees("c") and got_full.sees("c")
    assert got_narrow.describe() == "inboxes a, b, read-only"
    assert await store.read(lambda c: verify_token(c, full + "x")) is None
    assert await store.read(lambda c: verify_token(c, "not-a-token")) is None


async def test_the_secret_is_stored_only_as_its_hash(store):
    secret = await store.write(lambda c: create_token(c, "x"))
    rows = await store.read(
        lambda c: [dict(r) for r in c.execute(sa.select(t.api_tokens)).mappings()]
    )
    assert [r["token_hash"] for r in rows] == [hash_token(secret)]
    assert secret not in repr(rows)


@pytest.mark.parametrize(
    ("name", "inboxes"), [("", None), ("x" * 201, None), ("42", None), ("ok", []), ("ok", [""])]
)
async def test_bad_names_and_scopes_are_refused(store, name, inboxes):
    with pytest.raises(ValidationError):
        await store.write(lambda c: create_token(c, name, inboxes=inboxes))


async def test_list_and_revoke_by_id_or_name(store):
    await store.write(lambda c: create_token(c, "one", inboxes=["a"]))
    two = await store.write(lambda c: create_token(c, "two", read_only=True))
    listed = await store.read(list_tokens)
    assert [(i.scope.name, i.scope.inboxes, i.scope.read_only) for i in listed] == [
        ("one", frozenset({"a"}), False),
        ("two", None, True),
    ]
    assert all(i.last_used_at is None and i.revoked_at is None for i in listed)
    ids = {i.scope.name: i.scope.token_id for i in listed}

    revoked = await store.write(lambda c: revoke_token(c, "two"))
    assert revoked.token_id == ids["two"]
    assert await store.read(lambda c: verify_token(c, two)) is None
    await store.write(lambda c: revoke_token(c, str(ids["one"])))
    assert await store.read(list_tokens) == []
    every = await store.read(lambda c: list_tokens(c, revoked=True))
    assert [i.scope.name for i in every] == ["one", "two"]
    assert all(i.revoked_at is not None for i in every)
    with pytest.raises(NotFound):  # revoked already
        await store.write(lambda c: revoke_token(c, "two"))
    with pytest.raises(NotFound):
        await store.write(lambda c: revoke_token(c, "999999"))


async def test_a_name_two_tokens_share_is_revoked_by_id_only(store):
    await store.write(lambda c: create_token(c, "dup"))
    await store.write(lambda c: create_token(c, "dup"))
    with pytest.raises(Conflict, match="revoke by id"):
        await store.write(lambda c: revoke_token(c, "dup"))
    assert len(await store.read(list_tokens)) == 2


async def test_last_used_is_recorded(store):
    secret = await store.write(lambda c: create_token(c, "used"))
    scope, never = await store.read(lambda c: verify_and_last_used(c, secret))
    assert never is None
    at = datetime.now(UTC) - timedelta(seconds=5)
    await store.call(note_used, scope.token_id, at)
    [info] = await store.read(list_tokens)
    assert abs((info.last_used_at - at).total_seconds()) < 0.01
    again, last = await store.read(lambda c: verify_and_last_used(c, secret))
    assert again == scope and abs((last - at).total_seconds()) < 0.01
    # a revoked token, or one of another shape, is not found at all
    await store.call(revoke_token, str(scope.token_id))
    assert await store.read(lambda c: verify_and_last_used(c, secret)) is None
    assert await store.read(lambda c: verify_and_last_used(c, "odk_" + "x" * 200)) is None


async def test_create_runs_through_call_with_positional_arguments(store):
    secret = await store.call(create_token, "  spaced  ", ["b", "a"], True)
    scope = await store.read(lambda c: verify_token(c, secret))
    assert scope == Scope(scope.token_id, "spaced", frozenset({"a", "b"}), True)


# -- the migration ----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    require_server(POSTGRES_URL, "PostgreSQL")
    name = f"omnidesk_tok_{uuid.uuid4().hex[:10]}"
    admin_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_URL.rpartition('/')[0]}/{name}"
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_tokens_made_before_scopes_keep_full_access(empty_database):
    from alembic import command

    from inbox.store.backends import open_store
    from inbox.store.migrate import alembic_config, upgrade

    upgrade(empty_database, "0002")
    secret = PREFIX + "made-before-scopes"
    old = open_store(empty_database)
    try:  # a token as 0002 stored it
        await old.write(
            lambda c: c.execute(
                sa.text(
                    "INSERT INTO api_tokens (name, token_hash, created_at, revoked) "
                    "VALUES ('old', :h, :now, :f)"
                ),
                {
                    "h": hash_token(secret),
                    "now": datetime.now(UTC).replace(tzinfo=None),
                    "f": False,
                },
            )
        )
    finally:
        await old.close()
    upgrade(empty_database)
    store = open_store(empty_database)
    try:
        scope = await store.read(lambda c: verify_token(c, secret))
        assert scope is not None and scope.inboxes is None and scope.read_only is False
        # and the migration goes back and forth on this engine
        await asyncio.to_thread(command.downgrade, alembic_config(empty_database), "0002")
        upgrade(empty_database)
        assert await store.read(lambda c: verify_token(c, secret)) == scope
    finally:
        await store.close()
