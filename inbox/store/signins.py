"""The sign-in attempts repository: attempts counted per key in `login_failures`, so every
web process counts the same ones.

The rule is `inbox.accounts.signin_throttle` (`ThrottlePolicy`: growing delays, two keys per
attempt); here it is applied in the database. An attempt is counted BEFORE the password is
checked (`reserve`): one `INSERT .. ON CONFLICT DO UPDATE .. WHERE <allowed> RETURNING`
statement per attempt takes the attempt only when the rule allows it, so parallel requests
cannot all pass a check before any of them is counted. `waiting` reads the same rule
without writing, so a flood of refused attempts costs reads, not write transactions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from inbox.store import schema as t

if TYPE_CHECKING:
    from inbox.accounts.signin_throttle import ThrottlePolicy

__all__ = ["counted", "failed", "release", "reserve", "succeeded", "waiting"]

row = t.login_failures.c


def _wait_sql(failures: Any, policy: ThrottlePolicy) -> Any:
    """`policy.wait_after(failures)` as SQL (a CASE over the few doubling steps)."""
    steps = []
    n = policy.free_attempts
    while (wait := policy.wait_after(n)) < policy.max_delay:
        steps.append((failures == n, sa.literal(wait, sa.Double)))
        n += 1
    cap = sa.literal(float(policy.max_delay), sa.Double)
    return sa.case(*steps, else_=cap) if steps else cap


def _insert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def reserve(
    conn: Connection, keys: Sequence[str], policy: ThrottlePolicy, now: float | None = None
) -> float:
    """Count an attempt on every key if the rule allows it on every key: returns 0.0.
    Otherwise counts nothing and returns the seconds to wait (> 0)."""
    now = time.time() if now is None else now
    savepoint = conn.begin_nested()
    taken = 0
    for rule, group in policy.by_rule(keys):
        taken += len(conn.execute(_upsert(conn, group, rule, now)).scalars().all())
    if taken == len(keys):
        savepoint.commit()
        return 0.0
    savepoint.rollback()  # a key refused: the others keep their counts as they were
    return waiting(conn, keys, policy, now) or 0.001


def _upsert(conn: Connection, keys: Sequence[str], policy: ThrottlePolicy, now: float) -> Any:
    """One statement: count an attempt on each key the rule lets through, return those."""
    stale = row.last_at <= now - policy.forget
    allowed = sa.or_(
        stale,
        row.failures < policy.free_attempts,
        row.last_at + _wait_sql(row.failures, policy) <= now,
    )
    return (
        _insert(conn)(t.login_failures)
        .values([{"key": k, "failures": 1, "last_at": now} for k in keys])
        .on_conflict_do_update(
            index_elements=[row.key],
            set_={"failures": sa.case((stale, 1), else_=row.failures + 1), "last_at": now},
            where=allowed,
        )
        .returning(row.key)
    )


def waiting(
    conn: Connection, keys: Sequence[str], policy: ThrottlePolicy, now: float | None = None
) -> float:
    """Seconds until the rule would let an attempt through on every key (0.0: now). A read
    only: callers use it to refuse cheaply, without a write; `reserve` alone decides."""
    now = time.time() if now is None else now
    waits = [
        # at most the rule's whole wait: an attempt that failed after `now` was taken (a
        # parallel one, committed before this read) does not stretch it
        min(rule_wait, r.last_at + rule_wait - now)
        for r in conn.execute(
            sa.select(row.key, row.failures, row.last_at).where(row.key.in_(list(keys)))
        )
        if r.last_at > now - policy.forget
        for rule_wait in (policy.for_key(r.key).wait_after(r.failures),)
    ]
    return float(max([*waits, 0.0]))


def release(conn: Connection, keys: Sequence[str], attempts: int = 1) -> None:
    """Give back attempts `reserve` counted (one that never checked a password); a count
    never goes below zero."""
    conn.execute(
        sa.update(t.login_failures)
        .where(row.key.in_(list(keys)), row.failures > 0)
        .values(failures=sa.case((row.failures > attempts, row.failures - attempts), else_=0))
    )


def failed(conn: Connection, keys: Sequence[str], now: float | None = None) -> None:
    """A wrong password: the waits count from the end of its check, not from when it was
    reserved (a check slowed by a busy machine must not use up the wait)."""
    now = time.time() if now is None else now
    conn.execute(
        sa.update(t.login_failures)
        .where(row.key.in_(list(keys)), row.last_at < now)
        .values(last_at=now)
    )


def succeeded(
    conn: Connection,
    pair_key: str,
    address_key: str,
    policy: ThrottlePolicy,
    now: float | None = None,
) -> None:
    """A correct password: the pair starts anew; the address gets its attempt back and
    one earlier failure forgiven. Keys forgotten by the rule are deleted as we go."""
    now = time.time() if now is None else now
    conn.execute(sa.delete(t.login_failures).where(row.key == pair_key))
    release(conn, [address_key], attempts=2)
    conn.execute(sa.delete(t.login_failures).where(row.last_at <= now - policy.forget))


def counted(conn: Connection, key: str) -> int:
    """Attempts counted on a key (0 when it has none)."""
    value = conn.execute(sa.select(row.failures).where(row.key == key)).scalar()
    return int(value or 0)
