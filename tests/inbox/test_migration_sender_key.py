"""Migration 0005 on both backends: messages stored before it get their sender's identity
as sender_key, and the unique key becomes (channel, external_id, sender_key)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import pytest
import sqlalchemy as sa

from inbox.errors import OmnideskError
from inbox.store.backends import open_store
from inbox.store.migrate import upgrade
from tests.conftest import POSTGRES_URL, require_server

NOW = datetime(2026, 1, 1)


def _at(conn) -> object:
    """NOW as each engine's driver takes it in plain SQL."""
    return NOW.isoformat(" ") if conn.dialect.name == "sqlite" else NOW


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    require_server(POSTGRES_URL, "PostgreSQL")
    name = f"omnidesk_m_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _db = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _seed(conn) -> None:
    now = _at(conn)
    run = lambda sql, **kw: conn.execute(sa.text(sql), kw)  # noqa: E731
    run(
        "INSERT INTO contacts (id, name, attributes, tags, notes, created_at) "
        "VALUES (1, 'Ann', '{}', '[]', '', :t), (2, 'Bob', '{}', '[]', '', :t)",
        t=now,
    )
    for cid, kind, value, verified in (
        (1, "email", "ann@example.com", False),
        (1, "phone", "+14155550100", True),
        (2, "visitor", "visitor_0a1b2c3d", False),
        (2, "email", "bob@example.com", True),
    ):
        run(
            "INSERT INTO identities (contact_id, kind, value, verified, opted_out, created_at) "
            "VALUES (:c, :k, :v, :ver, false, :t)",
            c=cid,
            k=kind,
            v=value,
            ver=verified,
            t=now,
        )
    run(
        "INSERT INTO conversations (id, contact_id, channel, inbox, status, priority, "
        "required_skills, token, tags, created_at, last_message_at) VALUES "
        "(1, 1, 'email', 'default', 'open', 'normal', '[]', 'tok1', '[]', :t, :t), "
        "(2, 2, 'chat', 'default', 'open', 'normal', '[]', 'tok2', '[]', :t, :t)",
        t=now,
    )
    for mid, conv, direction, author, channel, external_id in (
        (1, 1, "inbound", 1, "email", "a1@example.com"),
        (2, 1, "inbound", 1, "sms", "SM1"),
        (3, 2, "inbound", 2, "chat", "visitor_0a1b2c3d:c1"),
        (4, 1, "outbound", None, "email", None),
    ):
        run(
            "INSERT INTO messages (id, conversation_id, direction, author_kind, author_id, "
            "channel, external_id, text, attachments, delivery_status, meta, needs_triage, "
            "created_at) VALUES (:id, :conv, :dir, :kind, :author, :channel, :ext, 'x', '[]', "
            "'received', '{}', false, :t)",
            id=mid,
            conv=conv,
            dir=direction,
            kind="contact" if author else "agent",
            author=author,
            channel=channel,
            ext=external_id,
            t=now,
        )


async def test_sender_keys_are_backfilled_and_the_key_is_per_sender(fresh_url) -> None:
    upgrade(fresh_url, "0004")
    store = open_store(fresh_url)
    try:
        await store.write(_seed)
    finally:
        await store.close()
    upgrade(fresh_url)
    store = open_store(fresh_url)
    try:
        keys = await store.read(
            lambda c: c.execute(sa.text("SELECT id, sender_key FROM messages ORDER BY id")).all()
        )
        assert [tuple(k) for k in keys] == [
            (1, "email:ann@example.com"),
            (2, "phone:+14155550100"),
            (3, "visitor:visitor_0a1b2c3d"),
            (4, None),
        ]

        def insert(mid: int, sender_key: str):
            def run(conn):
                conn.execute(
                    sa.text(
                        "INSERT INTO messages (id, conversation_id, direction, author_kind, "
                        "channel, external_id, sender_key, text, attachments, "
                        "delivery_status, meta, needs_triage, created_at) VALUES (:id, 1, "
                        "'inbound', 'contact', 'email', 'a1@example.com', :s, 'y', '[]', "
                        "'received', '{}', false, :t)"
                    ),
                    {"id": mid, "s": sender_key, "t": _at(conn)},
                )

            return run

        await store.write(insert(10, "email:bob@example.com"))  # another sender: a message
        with pytest.raises((OmnideskError, sa.exc.IntegrityError)):
            await store.write(insert(11, "email:ann@example.com"))  # the same sender: refused
    finally:
        await store.close()
