"""`ingest`: the only entry channels call. Dedupe -> contact -> thread -> persist, in one
transaction; events are published only after the commit.

Concurrent calls are grouped: while one transaction commits, the calls that arrive wait
and then go together in the next one (group commit). Should the batch fail, it runs again
with each message inside its own SAVEPOINT, so a bad message cannot fail its neighbours.
A caller's await returns only after its message is durable, so it may acknowledge to the
sender then. The transaction itself is the store's (`inbox.store.ingest_writes`, with its
reads in `inbox.store.ingest_reads`); `IngestSettings` is its, named here too.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from inbox import metrics
from inbox.bus.backends import EventBus, Scalar, received_event
from inbox.errors import BusError, OmnideskError, StoreError, ValidationError
from inbox.events import Event, EventName
from inbox.identity import normalize, sender_identity
from inbox.store.backends import Store
from inbox.store.ingest_reads import Prepared
from inbox.store.ingest_writes import IngestSettings, write_batch, write_carefully
from inbox.tasks import cancel_and_wait
from inbox.types import InboundMessage, IngestResult

__all__ = ["MAX_EXTERNAL_ID", "MAX_TEXT", "IngestSettings", "Ingestor", "events_for", "prepare"]

log = logging.getLogger("omnidesk.ingest")


MAX_TEXT = 256 * 1024
MAX_EXTERNAL_ID = 500


def prepare(
    msg: InboundMessage,
    settings: IngestSettings,
    cursor: tuple[str, str] | None = None,
    senders: dict[tuple[str, str], tuple[str, str, str]] | None = None,
) -> Prepared:
    """Validate and normalize outside the transaction; raises ValidationError.

    `senders` remembers normalized sender addresses (a sender writes again and again)."""
    if not msg.external_id or len(msg.external_id) > MAX_EXTERNAL_ID:
        raise ValidationError(
            f"external id must be 1-{MAX_EXTERNAL_ID} characters", field="external_id"
        )
    if len(msg.text) > MAX_TEXT:
        raise ValidationError(f"text is longer than {MAX_TEXT} characters", field="text")
    if msg.received_at.tzinfo is None:
        raise ValidationError("received_at must carry a timezone", field="received_at")
    # str() of a StrEnum member is its value, read in C (`.value` is a Python property)
    channel = str(msg.channel)
    key = (channel, msg.sender)
    known = senders.get(key) if senders is not None else None
    if known is None:
        found_kind, value = sender_identity(msg.channel, msg.sender, settings.default_country)
        known = (found_kind.value, value, f"{found_kind.value}:{value}")
        if senders is not None:
            if len(senders) >= 10_000:
                senders.clear()
            senders[key] = known
    kind, value, sender_key = known
    idents = [(kind, value, False)]
    for extra_kind, extra_value in msg.extra_identities:
        norm = normalize(extra_kind, extra_value, settings.default_country)
        if (extra_kind.value, norm) != (kind, value):
            idents.append((extra_kind.value, norm, True))
    return Prepared(msg, channel, tuple(idents), cursor, sender_key)


_CREATED = str(EventName.CONVERSATION_CREATED)
_REOPENED = str(EventName.CONVERSATION_REOPENED)
_RECEIVED = str(EventName.MESSAGE_RECEIVED)


def events_for(msg: InboundMessage, result: IngestResult, at: datetime) -> list[Event]:
    """What one stored message announces, in the shape bus listeners get (no copy on the
    in-process bus)."""
    if result.duplicate:
        return []
    ids: dict[str, Scalar] = {
        "message_id": result.message_id,
        "conversation_id": result.conversation_id,
        "contact_id": result.contact_id,
        "channel": str(msg.channel),
        "inbox": msg.inbox,
    }
    out = []
    if result.conversation_created:
        out.append(received_event(_CREATED, ids, at))
    if result.conversation_reopened:
        out.append(received_event(_REOPENED, ids, at))
    out.append(received_event(_RECEIVED, ids, at))
    return out


_Pending = tuple[Prepared, "asyncio.Future[IngestResult]"]


class Ingestor:
    """The `ingest` callable: group commit over a Store, events after commit."""

    def __init__(self, store: Store, bus: EventBus, settings: IngestSettings | None = None) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings or IngestSettings()
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._senders: dict[tuple[str, str], tuple[str, str, str]] = {}

    async def idle(self) -> None:
        """Wait until every accepted message is committed and its events published."""
        await self._idle.wait()

    async def __call__(
        self, msg: InboundMessage, *, cursor: tuple[str, str] | None = None
    ) -> IngestResult:
        item = prepare(msg, self.settings, cursor, self._senders)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ingest-batcher")
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._idle.clear()
        self._wake.set()
        started = metrics.clock()
        result = await future
        metrics.INGEST_LATENCY.observe(metrics.clock() - started)
        return result

    async def close(self) -> None:
        if self._task is not None:
            await self.idle()
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self.settings.batch_max]
                del self._pending[: len(batch)]
                try:
                    await self._write(batch)
                except Exception as exc:  # the batcher must outlive any batch
                    log.exception("ingest batch of %d failed", len(batch))
                    err = exc if isinstance(exc, OmnideskError) else StoreError(str(exc))
                    for _item, future in batch:
                        if not future.done():
                            future.set_exception(err)
            self._idle.set()

    async def _write(self, batch: list[_Pending]) -> None:
        now = datetime.now(UTC)
        items = [item for item, _future in batch]
        try:
            try:
                results = await self.store.call(write_batch, items, self.settings, now)
            except Exception as exc:
                if len(items) == 1 and not isinstance(exc, StoreError):
                    raise
                results = await self.store.call(write_carefully, items, self.settings, now)
        except Exception as exc:
            refused = isinstance(exc, ValidationError)  # the sender's mistake, not ours
            (log.warning if refused else log.error)(
                "ingest batch of %d failed: %s", len(batch), exc
            )
            err = exc if isinstance(exc, OmnideskError) else StoreError(str(exc))
            for _item, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        at = datetime.now(UTC)
        events: list[Event] = []
        info = log.isEnabledFor(logging.INFO)
        for (item, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                log.warning(
                    "ingest of %s/%s failed: %s",
                    item.msg.channel,
                    item.msg.external_id[:60],
                    result,
                )
                err = result if isinstance(result, OmnideskError) else StoreError(str(result))
                if not future.done():
                    future.set_exception(err)
                continue
            if not future.done():
                future.set_result(result)
            if not result.duplicate:
                events += events_for(item.msg, result, at)
            if not info:  # (checked once a batch: a log call costs even when it drops)
                continue
            if result.duplicate:
                log.info(
                    "duplicate %s message %s -> message=%d conversation=%d",
                    item.msg.channel,
                    item.msg.external_id[:60],
                    result.message_id,
                    result.conversation_id,
                )
            else:
                log.info(
                    "ingested %s message=%d conversation=%d contact=%d%s",
                    item.msg.channel,
                    result.message_id,
                    result.conversation_id,
                    result.contact_id,
                    " (new conversation)" if result.conversation_created else "",
                )
        metrics.count_ingested(batch, results)
        # every caller has its answer first; then the batch's events, in message order, as
        # one unit (one message on Redis, one handler call per subscriber in-process)
        try:
            await self.bus.publish_many(events)
        except BusError as exc:
            # committed and answered: the messages keep needs_triage, which the bus's
            # resume (and the periodic recovery) triage from the store. The batcher goes on.
            log.warning("ingest: %d events not published: %s", len(events), exc.message)
