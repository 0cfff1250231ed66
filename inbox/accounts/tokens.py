"""API tokens: shown once at creation, stored only as a SHA-256 hash, each with a scope.

Tokens carry 256 random bits, so a fast hash is the right tool (a slow password hash
would only cost every API call); lookup is by the hash, compared inside the database.

A token's scope is the inboxes it may read and write (None: every inbox) and whether it
may write at all. Tokens made before scopes existed have every inbox, read-write.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.store import schema as t

PREFIX = "odk_"

# last_used_at is written when a process checks a token in the store (not on every call,
# see inbox.accounts.token_cache), and at most this often
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a valid token may do."""

    token_id: int
    name: str
    inboxes: frozenset[str] | None  # None: every inbox
    read_only: bool

    def sees(self, inbox: str | None) -> bool:
        return self.inboxes is None or inbox in self.inboxes

    def describe(self) -> str:
        if self.inboxes is None:
            where = "all inboxes"
        else:
            where = "inboxes " + ", ".join(sorted(self.inboxes))
        return f"{where}, {'read-only' if self.read_only else 'read-write'}"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as `omnidesk token list` shows it (never the secret, nor its hash)."""

    scope: Scope
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    conn: Connection,
    name: str,
    *,
    inboxes: Iterable[str] | None = None,
    read_only: bool = False,
) -> str:
    """A new token (returned once). `inboxes` None: every inbox; else at least one."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError("a token's name must be 1-200 characters", field="name")
    if name.isdigit():
        raise ValidationError("a token's name must not be a number (ids are)", field="name")
    chosen = None if inboxes is None else sorted(set(inboxes))
    if chosen is not None and (not chosen or not all(0 < len(i) <= 100 for i in chosen)):
        raise ValidationError("name at least one inbox, each 1-100 characters", field="inboxes")
    token = PREFIX + secrets.token_urlsafe(32)
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


def verify_token(conn: Connection, token: str) -> Scope | None:
    """The token's scope if it is valid and not revoked."""
    found = verify_and_last_used(conn, token)
    return None if found is None else found[0]


def verify_and_last_used(conn: Connection, token: str) -> tuple[Scope, datetime | None] | None:
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    c = t.api_tokens.c
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
    conn.execute(
        sa.update(t.api_tokens).where(t.api_tokens.c.id == token_id).values(last_used_at=now)
    )


def list_tokens(conn: Connection, *, revoked: bool = False) -> list[TokenInfo]:
    """Active tokens (and revoked ones too with `revoked`), oldest first."""
    query = sa.select(t.api_tokens).order_by(t.api_tokens.c.id)
    if not revoked:
        query = query.where(t.api_tokens.c.revoked.is_(False))
    return [
        TokenInfo(_scope(r), r["created_at"], r["last_used_at"], r["revoked_at"])
        for r in conn.execute(query).mappings()
    ]


def revoke_token(conn: Connection, id_or_name: str) -> Scope:
    """Revoke the active token with this id (digits) or name; the revoked token's scope.
    A name two active tokens share is refused: revoke by id then."""
    c = t.api_tokens.c
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
