"""API tokens: shown once at creation, stored only as a SHA-256 hash.

Tokens carry 256 random bits, so a fast hash is the right tool (a slow password hash
would only cost every API call); lookup is by the hash, compared inside the database.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox import schema as t

PREFIX = "odk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(conn: Connection, name: str) -> str:
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        sa.insert(t.api_tokens).values(
            name=name, token_hash=hash_token(token), created_at=datetime.now(UTC), revoked=False
        )
    )
    return token


def verify_token(conn: Connection, token: str) -> str | None:
    """The token's name if it is valid and not revoked."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        sa.select(t.api_tokens.c.name).where(
            t.api_tokens.c.token_hash == hash_token(token), t.api_tokens.c.revoked.is_(False)
        )
    ).first()
    return None if row is None else str(row.name)
