"""IMAP mailbox poller (aioimaplib): fetch new mail by UID and ingest it exactly once.

Position: `cursor = ("imap:<mailbox>", "<uidvalidity>:<uid>")` is passed to `ingest`, which
records it in the same transaction as the message; at start the poller asks
`get_cursor("imap:<mailbox>")`. A changed UIDVALIDITY means the server renumbered the
folder: the poller starts again from UID 1 and relies on Message-ID dedupe in the store.
`UID SEARCH UID n:*` always returns the last message even when n is past it, so UIDs at
or below the last seen one are filtered out.

IDLE is used when the server offers it, else the folder is polled every poll_interval.
Failures reconnect with exponential backoff (jittered, capped); `health()` reports the
mailbox so /readyz can show one broken mailbox while the others keep running. A session
the server or the network drops is seen at once (the socket's close, not the next poll or
the end of an IDLE that may be minutes away): the mailbox turns unhealthy and reconnects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aioimaplib

from channels.email.files import StoreFn, store_attachments
from channels.email.parse import ParseOptions, parse_message
from channels.email.settings import IMAPMailbox
from inbox.errors import ValidationError
from inbox.ports import IngestFn
from inbox.tasks import cancel_and_wait

log = logging.getLogger(__name__)

GetCursor = Callable[[str], "Awaitable[str | None] | str | None"]
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.I)
_FETCH_SIZE = re.compile(rb"UID (\d+).*RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+).*UID (\d+)")
_THREAD_PARSE_BYTES = 256 * 1024


class IMAPError(Exception):
    """The server refused or broke a step (login, select, fetch)."""


@dataclass
class MailboxHealth:
    name: str
    healthy: bool = False
    connected: bool = False
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_sync_at: datetime | None = None
    uidvalidity: int | None = None
    last_uid: int = 0
    ingested: int = 0
    skipped: int = 0
    failures: int = 0  # consecutive

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "healthy": self.healthy,
            "connected": self.connected,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "last_sync_at": self.last_sync_at.isoformat() if self.last_sync_at else None,
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
            "ingested": self.ingested,
            "skipped": self.skipped,
        }


def parse_cursor(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    validity, _, uid = value.partition(":")
    try:
        return int(validity), int(uid)
    except ValueError:
        return None


def _ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        detail = b" ".join(bytes(line) for line in response.lines)[:300].decode("ascii", "replace")
        raise IMAPError(f"{what} failed: {response.result} {detail}")
    return response


class IMAPPoller:
    """One mailbox. `await start()` runs it in a task; `await stop()` ends it."""

    def __init__(
        self,
        mailbox: IMAPMailbox,
        ingest: IngestFn,
        get_cursor: GetCursor,
        store: StoreFn | None,
        options: ParseOptions,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backoff_base: float = 1.0,
        timeout: float = 30.0,
    ) -> None:
        self.mailbox = mailbox
        self.ingest = ingest
        self.get_cursor = get_cursor
        self.store = store
        if options.limits.max_bytes != mailbox.max_message_bytes:
            limits = dataclasses.replace(options.limits, max_bytes=mailbox.max_message_bytes)
            options = dataclasses.replace(options, limits=limits)
        self.options = options
        self.ssl_context = ssl_context
        self.backoff_base = backoff_base
        self.timeout = timeout
        self.cursor_key = f"imap:{mailbox.name}"
        self.status = MailboxHealth(name=mailbox.name)
        self._task: asyncio.Task[None] | None = None
        self._position: tuple[int, int] | None = None  # (uidvalidity, last uid)
        self._position_loaded = False
        self.synced = asyncio.Event()  # set after every completed sync pass (for tests)
        self._dropped = asyncio.Event()  # the current session's connection was lost

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"imap:{self.mailbox.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    def health(self) -> dict[str, Any]:
        return self.status.as_dict()

    async def run(self) -> None:
        """Forever: connect, sync, wait for news; back off and reconnect on failure."""
        while True:
            try:
                await self._session(forever=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
                delay = min(
                    self.mailbox.backoff_max,
                    self.backoff_base * 2 ** min(self.status.failures - 1, 20),
                )
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))

    async def poll_once(self) -> int:
        """Connect, ingest what is new, disconnect. Returns how many were ingested."""
        before = self.status.ingested
        try:
            await self._session(forever=False)
        except Exception as exc:
            self._failed(exc)
            raise
        return self.status.ingested - before

    def _failed(self, exc: BaseException) -> None:
        s = self.status
        s.healthy = False
        s.connected = False
        s.failures += 1
        s.last_error = f"{type(exc).__name__}: {exc}"[:500]
        s.last_error_at = datetime.now(UTC)
        log.warning("imap %s: %s (attempt %d)", self.mailbox.name, s.last_error, s.failures)

    # -- one connection ----------------------------------------------------------------
    async def _connect(self) -> aioimaplib.IMAP4:
        box = self.mailbox
        if box.tls:
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                box.host, box.port, timeout=self.timeout, ssl_context=self.ssl_context
            )
        else:
            client = aioimaplib.IMAP4(box.host, box.port, timeout=self.timeout)
        # (IMAP4_SSL takes no callback argument; its protocol connects in a task, later)
        self._dropped = dropped = asyncio.Event()
        client.protocol.conn_lost_cb = lambda exc: self._connection_lost(dropped, exc)
        try:
            await client.wait_hello_from_server()
            _ok(await client.login(box.user, box.password), "LOGIN")
        except BaseException:
            await self._logout(client)
            raise
        return client

    def _connection_lost(self, dropped: asyncio.Event, exc: Exception | None) -> None:
        """aioimaplib's callback when the socket closes (ours too, at logout: the session
        is marked disconnected before that, and such a close is no news; so is a late
        close of an earlier session's connection)."""
        if not self.status.connected or dropped is not self._dropped:
            return
        s = self.status
        s.connected = s.healthy = False
        s.last_error = f"connection lost ({exc or 'closed by the server'})"[:500]
        s.last_error_at = datetime.now(UTC)
        self._dropped.set()
        log.warning("imap %s: %s", self.mailbox.name, s.last_error)

    async def _unless_dropped(self, step: Awaitable[Any]) -> Any:
        """`step`'s result, or IMAPError as soon as the connection is lost meanwhile."""
        task = asyncio.ensure_future(step)
        dropped = asyncio.ensure_future(self._dropped.wait())
        try:
            await asyncio.wait({task, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dropped.cancel()
            if not task.done():
                task.cancel()
        if self._dropped.is_set() and not (task.done() and not task.cancelled()):
            raise IMAPError("connection lost")
        return task.result()

    async def _session(self, *, forever: bool) -> None:
        if not self._position_loaded:
            value = self.get_cursor(self.cursor_key)
            if inspect.isawaitable(value):
                value = await value
            self._position = parse_cursor(value)
            self._position_loaded = True
        client = await self._connect()
        try:
            selected = _ok(await client.select(aioimaplib.quoted(self.mailbox.folder)), "SELECT")
            validity = self._uidvalidity(selected.lines)
            if self._position is None or self._position[0] != validity:
                if self._position is not None:
                    log.warning(
                        "imap %s: UIDVALIDITY changed %s -> %s, resyncing (Message-ID dedupe)",
                        self.mailbox.name,
                        self._position[0],
                        validity,
                    )
                self._position = (validity, 0)
            s = self.status
            s.connected, s.uidvalidity = True, validity
            while True:
                await self._sync(client)
                s.healthy, s.failures, s.last_sync_at = True, 0, datetime.now(UTC)
                self.synced.set()
                if not forever:
                    return
                await self._wait_for_news(client)
        finally:
            self.status.connected = False
            await self._logout(client)

    @staticmethod
    def _uidvalidity(lines: list[Any]) -> int:
        for line in lines:
            found = _UIDVALIDITY.search(bytes(line))
            if found:
                return int(found.group(1))
        raise IMAPError("SELECT did not report UIDVALIDITY")

    async def _logout(self, client: aioimaplib.IMAP4) -> None:
        try:
            if client.get_state() in ("AUTH", "SELECTED"):
                await asyncio.wait_for(client.logout(), 5)
        except Exception as exc:  # the connection may already be gone
            log.debug("imap %s: logout failed: %s", self.mailbox.name, exc)
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()
        elif not client._client_task.done():  # still connecting: stop that
            client._client_task.cancel()

    async def _wait_for_news(self, client: aioimaplib.IMAP4) -> None:
        box = self.mailbox
        if box.idle and "IDLE" in client.protocol.capabilities:
            idle = await client.idle_start(timeout=box.idle_timeout)
            try:
                await self._unless_dropped(client.wait_server_push(timeout=box.idle_timeout + 10))
            finally:
                if self._dropped.is_set():
                    idle.cancel()
                else:
                    client.idle_done()
                    _ok(await asyncio.wait_for(idle, self.timeout), "IDLE")
        else:
            await self._unless_dropped(asyncio.sleep(box.poll_interval))
            _ok(await client.noop(), "NOOP")

    # -- fetching ----------------------------------------------------------------------
    async def _new_uids(self, client: aioimaplib.IMAP4, after: int) -> list[tuple[int, int]]:
        """(uid, size) of messages with UID > after, ascending."""
        response = _ok(await client.uid("fetch", f"{after + 1}:*", "(UID RFC822.SIZE)"), "FETCH")
        found: list[tuple[int, int]] = []
        for line in response.lines:
            match = _FETCH_SIZE.search(bytes(line))
            if match:
                if match.group(1):
                    uid, size = int(match.group(1)), int(match.group(2))
                else:
                    uid, size = int(match.group(4)), int(match.group(3))
                if uid > after:  # `n:*` always includes the last message
                    found.append((uid, size))
        return sorted(found)

    async def _sync(self, client: aioimaplib.IMAP4) -> None:
        assert self._position is not None
        validity = self._position[0]
        for uid, size in await self._new_uids(client, self._position[1]):
            if size > self.mailbox.max_message_bytes:
                self._skip(uid, f"{size} bytes is over max_message_bytes")
            else:
                raw = await self._fetch(client, uid)
                if raw is None:
                    self._skip(uid, "message vanished before it was fetched")
                elif await self._ingest(raw, validity, uid):
                    await self._after(client, uid)
            self._position = (validity, uid)
            self.status.last_uid = uid

    async def _fetch(self, client: aioimaplib.IMAP4, uid: int) -> bytes | None:
        response = _ok(await client.uid("fetch", str(uid), "(UID BODY.PEEK[])"), "FETCH")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None

    async def _ingest(self, raw: bytes, validity: int, uid: int) -> bool:
        kwargs: dict[str, Any] = {
            "inbox": self.mailbox.inbox,
            "extra_metadata": {"imap": {"mailbox": self.mailbox.name, "uid": uid}},
        }
        try:
            if len(raw) > _THREAD_PARSE_BYTES:  # off the loop; one mailbox parses serially
                parsed = await asyncio.to_thread(parse_message, raw, self.options, **kwargs)
            else:
                parsed = parse_message(raw, self.options, **kwargs)
        except ValidationError as exc:
            self._skip(uid, exc.message)
            return False
        message = await store_attachments(parsed, self.store)
        started = time.monotonic()
        try:
            await self.ingest(message, cursor=(self.cursor_key, f"{validity}:{uid}"))
        except ValidationError as exc:
            self._skip(uid, exc.message)
            return False
        log.debug(
            "imap %s: uid %s ingested in %.3fs", self.mailbox.name, uid, time.monotonic() - started
        )
        self.status.ingested += 1
        return True

    def _skip(self, uid: int, reason: str) -> None:
        self.status.skipped += 1
        log.warning("imap %s: uid %s skipped: %s", self.mailbox.name, uid, reason)

    async def _after(self, client: aioimaplib.IMAP4, uid: int) -> None:
        box = self.mailbox
        if box.after == "seen":
            _ok(await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)"), "STORE")
        elif box.after == "flag":
            _ok(await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Flagged)"), "STORE")
        elif box.after == "move" and box.move_to:
            target = aioimaplib.quoted(box.move_to)
            if "MOVE" in client.protocol.capabilities:
                _ok(await client.uid("move", str(uid), target), "MOVE")
            else:
                _ok(await client.uid("copy", str(uid), target), "COPY")
                _ok(await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
                if "UIDPLUS" in client.protocol.capabilities:
                    _ok(await client.uid("expunge", str(uid)), "EXPUNGE")
