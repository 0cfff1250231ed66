"""The API tokens repository: a token is stored only as its hash, with its scope.

Plain functions of a Connection, run by `inbox.store.backends.Store`. What a token is (its
shape, hash and scope) is `inbox.accounts.tokens`; checking tokens without a query per call
is `inbox.accounts.token_cache`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.accounts.tokens import Scope, TokenInfo, checked, hash_token, new_secret, plausible
from inbox.errors import Conflict, NotFound
from inbox.store import schema as t

__all__ = ["create", "list_all", "note_used", "revoke", "verify", "verify_and_last_used"]

c = t.api_tokens.c


def create(
    conn: Connection, name: str, inboxes: Iterable[str] | None = None, read_only: bool = False
) -> str:
    """A new token (returned once, stored as its hash). `inboxes` None: every inbox; else
    at least one. ValidationError for a bad name or inbox list."""
    name, chosen = checked(name, inboxes)
    token = new_secret()
    conn.execute(
        sa.insert(t.api_tokens).values(
            name=name,
            token_hash=hash_token(token),
            created_at=datetime.now(UTC),
            revoked=False,
            inboxes=chosen,
            read_only=read_only,
        )
    )
    return token


def _scope(row: sa.RowMapping) -> Scope:
    inboxes = row["inboxes"]
    return Scope(
        token_id=int(row["id"]),
        name=str(row["name"]),
        inboxes=None if inboxes is None else frozenset(inboxes),
        read_only=bool(row["read_only"]),
    )


def verify(conn: Connection, token: str) -> Scope | None:
    """The token's scope if it is valid and not revoked."""
    found = verify_and_last_used(conn, token)
    return None if found is None else found[0]


def verify_and_last_used(conn: Connection, token: str) -> tuple[Scope, datetime | None] | None:
    """The scope of a valid, unrevoked token and when it was last noted used; else None.
    Looked up by the hash, compared inside the database."""
    if not plausible(token):
        return None
    row = (
        conn.execute(
            sa.select(c.id, c.name, c.inboxes, c.read_only, c.last_used_at).where(
                c.token_hash == hash_token(token), c.revoked.is_(False)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else (_scope(row), row["last_used_at"])


def note_used(conn: Connection, token_id: int, now: datetime) -> None:
    """Record that the token was used at `now`."""
    conn.execute(sa.update(t.api_tokens).where(c.id == token_id).values(last_used_at=now))


def list_all(conn: Connection, revoked: bool = False) -> list[TokenInfo]:
    """Active tokens (and revoked ones too with `revoked`), oldest first."""
    query = sa.select(t.api_tokens).order_by(c.id)
    if not revoked:
        query = query.where(c.revoked.is_(False))
    return [
        TokenInfo(_scope(r), r["created_at"], r["last_used_at"], r["revoked_at"])
        for r in conn.execute(query).mappings()
    ]


def revoke(conn: Connection, id_or_name: str) -> Scope:
    """Revoke the active token with this id (digits) or name; the revoked token's scope.
    NotFound if no active token has it; Conflict for a name two active tokens share
    (revoke by id then)."""
    key = id_or_name.strip()
    where = c.id == int(key) if key.isdigit() and len(key) <= 18 else c.name == key
    rows = list(conn.execute(sa.select(t.api_tokens).where(where, c.revoked.is_(False))).mappings())
    if not rows:
        raise NotFound(f"no active API token with id or name {key[:200]!r}")
    if len(rows) > 1:
        ids = ", ".join(str(r["id"]) for r in rows)
        raise Conflict(f"{len(rows)} active tokens are called {key!r} (ids {ids}): revoke by id")
    scope = _scope(rows[0])
    conn.execute(
        sa.update(t.api_tokens)
        .where(c.id == scope.token_id)
        .values(revoked=True, revoked_at=datetime.now(UTC))
    )
    return scope
