"""Checking API tokens without a query per call, and forgetting them at once on revocation.

A process remembers each valid token's scope for TTL seconds, so an API call costs no
extra query. A revoked token must stop working at once anyway, in every process that may
remember it. Whoever revokes (`omnidesk token revoke`, after its commit) tells them in two
ways, and a cache listens to both:

* the **revocation stamp**, a file in the data directory replaced on every revocation: a
  cache compares the file's identity (inode, mtime) with the one it last saw on every
  lookup, one `stat` (about a microsecond). It reaches every process on the host, also
  the embedded server, whose in-process bus a command-line process cannot reach;
* an **`api_token.revoked` event on the bus**: with Redis it reaches every process of a
  scaled-out deployment, on any host, at no cost per call.

Either one empties the cache; the next call of each token checks the store again. A
lookup that was reading the store while the cache was emptied does not put its (possibly
stale) answer back. A process whose Redis subscription was away (on another host) empties
its cache when the bus resumes, so it misses no revocation announced meanwhile.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from inbox.accounts.tokens import LAST_USED_PRECISION, Scope
from inbox.bus.backends import EventBus
from inbox.errors import AuthError
from inbox.events import Event, EventName, TokenRevoked
from inbox.store import tokens as token_repo
from inbox.store.backends import Store

TTL = 30.0
STAMP_NAME = "api_tokens.revoked"
MAX_ENTRIES = 10_000


def stamp_path(data_dir: Path) -> Path:
    return data_dir / STAMP_NAME


def _identity(path: str | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def bump_stamp(path: Path) -> None:
    """Replace the stamp file (a new inode: caches see a change however fast it comes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{datetime.now(UTC).isoformat()}\n")
    os.replace(tmp, path)


async def announce_revoked(bus: EventBus | None, stamp: Path | None, scope: Scope) -> None:
    """Tell every cache that a token was revoked (call after the revocation committed)."""
    if stamp is not None:
        bump_stamp(stamp)
    if bus is not None:
        await bus.publish(
            Event(
                EventName.API_TOKEN_REVOKED, TokenRevoked(token_id=scope.token_id, name=scope.name)
            )
        )


class TokenCache:
    def __init__(self, store: Store, *, stamp: Path | None = None, ttl: float = TTL) -> None:
        self.store = store
        self.stamp = None if stamp is None else os.fspath(stamp)  # a str stats faster
        self.ttl = ttl
        self._entries: dict[str, tuple[Scope, float]] = {}
        self._generation = 0  # bumped whenever the cache is emptied
        self._seen = _identity(self.stamp)

    def listen(self, bus: EventBus) -> None:
        bus.subscribe(EventName.API_TOKEN_REVOKED, self._on_revoked)
        # a revocation announced while the bus was away was missed: forget them all
        bus.subscribe(EventName.BUS_RESUMED, self._on_revoked)

    async def _on_revoked(self, _event: Event) -> None:
        self.forget_all()

    def forget_all(self) -> None:
        self._entries.clear()
        self._generation += 1

    async def check(self, token: str) -> Scope:
        """The scope of a valid, unrevoked token, or AuthError."""
        if self.stamp is not None:
            seen = _identity(self.stamp)
            if seen != self._seen:
                self._seen = seen
                self.forget_all()
        now = time.monotonic()
        cached = self._entries.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        generation = self._generation
        found = await self.store.read(lambda conn: token_repo.verify_and_last_used(conn, token))
        if found is None:
            raise AuthError("invalid or revoked API token")
        scope, last_used = found
        at = datetime.now(UTC)
        if last_used is None or at - last_used >= LAST_USED_PRECISION:
            await self.store.write(lambda conn: token_repo.note_used(conn, scope.token_id, at))
        if generation == self._generation:  # not emptied meanwhile: the answer is current
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[token] = (scope, now + self.ttl)
        return scope
