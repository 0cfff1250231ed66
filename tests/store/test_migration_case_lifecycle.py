"""Migration 0007 on both engines: conversations stored before it read as cases (an
assignment the agent answered since it was made is accepted), the activity log takes
entries at once, the migration goes back and forth, and the migrated schema is the one
`inbox.store.schema` declares."""

from __future__ import annotations

import asyncio
import contextlib

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from inbox.cases import CaseStatus, escalate
from inbox.cases.activity import SYSTEM
from inbox.cases.due import summary
from inbox.store import cases as repo
from inbox.store.backends import open_store
from inbox.store.migrate import alembic_config, upgrade
from inbox.store.schema import metadata
from tests.store.factories import POLICIES, T0, H

NAIVE = T0.replace(tzinfo=None)  # the 0006 tables are reflected: no UTCDateTime


def _seed_as_0006(conn) -> dict[str, int]:
    """As 0006 left them: assignments the agent answered, did not answer, answered before
    they were made; two waiting conversations; a resolved one."""
    old = sa.MetaData()
    old.reflect(conn, only=["agents", "contacts", "conversations", "messages"])
    agents, contacts, convs, messages = (
        old.tables[n] for n in ("agents", "contacts", "conversations", "messages")
    )

    def insert(table, **values):
        return conn.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one()

    ann = insert(
        agents, name="Ann", email="ann@a.test", role="agent", skills={}, capacity={}, teams=[],
        active=True, presence="online", created_at=NAIVE,
    )  # fmt: skip
    ids = {}
    for n, (name, status, assignee) in enumerate(
        [("answered", "open", ann), ("offered", "open", ann), ("earlier", "pending", ann),
         ("waiting", "open", None), ("resolved", "resolved", None), ("held", "open", None)]
    ):  # fmt: skip
        contact = insert(contacts, name=name, attributes={}, tags=[], notes="", created_at=NAIVE)
        ids[name] = insert(
            convs, contact_id=contact, channel="email", inbox="support", status=status,
            priority="high", required_skills=[], token=f"t{n}", tags=[], created_at=NAIVE,
            last_message_at=NAIVE, assignee_id=assignee,
            assigned_at=NAIVE if assignee else None,
        )  # fmt: skip
    for name, shift in (("answered", 1), ("earlier", -1)):
        insert(
            messages, conversation_id=ids[name], direction="outbound", author_kind="agent",
            author_id=ann, channel="email", text="hi", attachments=[], delivery_status="sent",
            meta={}, needs_triage=False, created_at=NAIVE + shift * H,
        )  # fmt: skip
    return ids


@contextlib.asynccontextmanager
async def opened(url: str):
    store = open_store(url)
    try:
        yield store
    finally:
        await store.close()


async def migrated_from_0006(url: str) -> dict[str, int]:
    """Rows written at 0006 (their ids by name), then the migration to head."""
    upgrade(url, "0006")
    async with opened(url) as store:
        ids = await store.write(_seed_as_0006)
    upgrade(url)
    return ids


async def test_rows_from_before_read_as_cases_and_answered_assignments_are_accepted(fresh_url):
    ids = await migrated_from_0006(fresh_url)
    async with opened(fresh_url) as store:
        cases = await store.read(lambda conn: repo.load_cases(conn, ids.values()))
        answered, offered = cases[ids["answered"]], cases[ids["offered"]]
        assert answered.accepted_at == T0 and not answered.offered
        assert offered.accepted_at is None and offered.offered
        assert cases[ids["earlier"]].accepted_at is None  # the reply came before the offer
        assert cases[ids["resolved"]].status is CaseStatus.SOLVED
        for case in cases.values():
            assert case.version == 0 and not case.escalated and case.sla.clocks == ()
            assert case.team is None and case.linked_to is None and case.snoozed_until is None
        # the log takes entries at once, and the version guard works on old rows
        case = cases[ids["waiting"]]
        change = escalate(case, actor=SYSTEM, at=T0 + H, policies=POLICIES, note="help")
        saved = await store.write(
            lambda conn: repo.save_change(
                conn, change, summary(change.case, T0 + H, POLICIES), at=T0 + H
            )
        )
        assert saved
        assert len(await store.read(lambda conn: repo.timeline(conn, case.id))) == 1


async def test_the_migration_goes_back_and_forth(fresh_url):
    ids = await migrated_from_0006(fresh_url)
    async with opened(fresh_url) as store:
        # one on hold (0006 knows no such status), with an entry in the log
        held = await store.read(lambda conn: repo.load_case(conn, ids["held"]))
        change = escalate(held, actor=SYSTEM, at=T0, policies=POLICIES, note="x")
        await store.write(
            lambda conn: conn.execute(
                sa.text("UPDATE conversations SET status = 'on_hold' WHERE id = :id"),
                {"id": held.id},
            )
        )
        assert await store.write(
            lambda conn: repo.save_change(conn, change, summary(change.case, T0, POLICIES), at=T0)
        )
    await asyncio.to_thread(command.downgrade, alembic_config(fresh_url), "0006")
    async with opened(fresh_url) as store:
        query = sa.text("SELECT id, status FROM conversations ORDER BY id")
        status = dict(await store.read(lambda conn: conn.execute(query).all()))
        assert status[ids["held"]] == "pending"  # 0006 knows no on_hold
        assert status[ids["resolved"]] == "resolved"
        tables = await store.read(lambda conn: sa.inspect(conn).get_table_names())
        assert "activity" not in tables
    upgrade(fresh_url)
    async with opened(fresh_url) as store:
        again = await store.read(lambda conn: repo.load_case(conn, ids["held"]))
        assert again.status is CaseStatus.PENDING and again.version == 0


async def test_the_migrated_schema_is_the_declared_one(fresh_url):
    upgrade(fresh_url)
    async with opened(fresh_url) as store:
        diffs = await store.read(
            lambda conn: compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
        )
    assert diffs == []
