"""API tokens: shown once at creation, stored only as a SHA-256 hash, each with a scope.

Tokens carry 256 random bits, so a fast hash is the right tool (a slow password hash
would only cost every API call); lookup is by the hash, compared inside the database.

A token's scope is the inboxes it may read and write (None: every inbox) and whether it
may write at all. Tokens made before scopes existed have every inbox, read-write.

Stored by the tokens repository (`inbox.store.tokens`: create, verify, list, revoke); this
module holds what needs no store: the token's shape, its hash and the checks of a new one.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from inbox.errors import ValidationError

__all__ = [
    "LAST_USED_PRECISION",
    "PREFIX",
    "Scope",
    "TokenInfo",
    "checked",
    "hash_token",
    "new_secret",
    "plausible",
]

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
    """What the store keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def checked(name: str, inboxes: Iterable[str] | None) -> tuple[str, list[str] | None]:
    """A new token's name (stripped) and inboxes (sorted, once each; None: every inbox), or
    ValidationError naming the field."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError("a token's name must be 1-200 characters", field="name")
    if name.isdigit():
        raise ValidationError("a token's name must not be a number (ids are)", field="name")
    chosen = None if inboxes is None else sorted(set(inboxes))
    if chosen is not None and (not chosen or not all(0 < len(i) <= 100 for i in chosen)):
        raise ValidationError("name at least one inbox, each 1-100 characters", field="inboxes")
    return name, chosen


def new_secret() -> str:
    """A new token: the prefix and 256 random bits."""
    return PREFIX + secrets.token_urlsafe(32)


def plausible(token: str) -> bool:
    """Whether `token` has a token's shape (else it is refused without a query)."""
    return token.startswith(PREFIX) and len(token) <= 200
