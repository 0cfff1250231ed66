"""The durable outbox: an outbound message and its delivery job are written in one
transaction; a worker leases due jobs, sends them through the channel's `Sender`, and
records the provider id. A message that already has a provider id is never sent again.

Delivery is at-least-once towards the provider only in one window (sent, then the process
died before recording the id); senders pass the message id as an idempotency key where the
provider supports one (Twilio, our own SMTP Message-ID) to close it.

What is stored is the outbox repository's (`inbox.store.outbox`), the rules (retries,
leases, reply routes) `inbox.outbox.policy`'s: a reply is enqueued with
`inbox.store.outbox.enqueue` in the caller's own transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from inbox import metrics
from inbox.bus.backends import EventBus
from inbox.errors import BusError, DeliveryError, PermanentDeliveryError, RecipientAway
from inbox.events import DeliveryChanged, Event, EventName
from inbox.outbox.policy import retry_at
from inbox.ports import Outbound, Sender
from inbox.store import outbox as outbox_repo
from inbox.store.backends import Store
from inbox.tasks import Repeating
from inbox.types import Channel

__all__ = ["OutboxWorker"]

log = logging.getLogger("omnidesk.outbox")


class OutboxWorker(Repeating):
    """Leases due jobs and sends them. Several workers may run; leases keep them apart."""

    task_name = "outbox-worker"
    failure = "outbox pass failed"
    log = log

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        senders: Mapping[str, Sender],
        *,
        poll_interval: float = 0.5,
        batch: int = 20,
        send_timeout: float | None = None,
        relay: Callable[..., None] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        # kept, not copied: the composition root adds senders as it wires the channels
        self.senders = senders
        self.poll_interval = poll_interval
        self.batch = batch
        # with a short lease (cluster), a send must end before another worker may claim it
        self.send_timeout = send_timeout
        # cluster mode: pokes go to the RQ relay (inbox.outbox.rq_relay); this loop is not started
        self.relay = relay
        self._wake = asyncio.Event()

    def poke(self, *message_ids: int) -> None:
        """New work was committed (these messages): look now rather than at the next poll,
        or, with a relay set (cluster: RQ), hand it to the relay."""
        if self.relay is not None:
            self.relay(*message_ids)
        else:
            self._wake.set()

    async def pause(self, done: int) -> None:
        """After a round that found work, none; else until poked or the poll interval."""
        if done:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        except TimeoutError:
            pass
        self._wake.clear()

    async def run_once(self) -> int:
        now = datetime.now(UTC)
        ids = await self.store.write(lambda conn: outbox_repo.claim_due(conn, now, self.batch))
        await asyncio.gather(*(self.deliver(i) for i in ids))
        return len(ids)

    async def _send(self, sender: Sender, item: Outbound) -> str:
        """Send; a recipient who is away and left an email address gets it by email too."""
        try:
            return await sender.send(item)
        except RecipientAway as away:
            email = self.senders.get(Channel.EMAIL.value)
            if not item.followup_email or email is None:
                return away.held_id  # kept for when they come back
            followed = await email.send(
                replace(item, channel=Channel.EMAIL.value, to=item.followup_email)
            )
            log.info("message=%d followed up by email (recipient away)", item.message_id)
            return followed

    async def deliver(self, outbox_id: int) -> None:
        """Send one job this worker has leased and record the outcome."""
        item, job = await self.store.read(lambda conn: outbox_repo.build_outbound(conn, outbox_id))
        now = datetime.now(UTC)
        if item is None:  # already has a provider id: never send twice
            await self.store.write(lambda conn: outbox_repo.mark_done(conn, outbox_id))
            return
        sender = self.senders.get(item.channel)
        provider_id: str | None = None
        error: str | None = None
        permanent = False
        if sender is None:
            error, permanent = f"no sender configured for channel {item.channel}", True
        elif not item.to:
            error, permanent = f"the contact has no {item.channel} address", True
        else:
            try:
                async with asyncio.timeout(self.send_timeout):
                    provider_id = await self._send(sender, item)
            except TimeoutError:
                error = f"the {item.channel} provider did not answer in time"
            except PermanentDeliveryError as exc:
                error, permanent = exc.message, True
            except DeliveryError as exc:
                error = exc.message
            except Exception as exc:  # a sender bug must not kill the worker
                log.exception("sender %s crashed on message %d", item.channel, item.message_id)
                error = f"{type(exc).__name__}: {exc}"
        again = retry_at(now, int(job["attempts"]), permanent)
        status = await self.store.write(
            lambda conn: outbox_repo.finish(
                conn, outbox_id, item.message_id, provider_id, error, again
            )
        )
        metrics.count_delivery(item.channel, status.value if status else "retry", job["created_at"])
        if status is not None:
            log.info(
                "outbound message=%d conversation=%d %s%s",
                item.message_id,
                item.conversation_id,
                status.value,
                f" ({error})" if error else "",
            )
            try:
                await self.bus.publish(
                    Event(
                        EventName.MESSAGE_DELIVERY_CHANGED,
                        DeliveryChanged(
                            message_id=item.message_id,
                            conversation_id=item.conversation_id,
                            status=status.value,
                            reason=error,
                        ),
                    )
                )
            except BusError as exc:  # recorded; pages re-read it when the bus resumes
                log.warning("delivery of message=%d not announced: %s", item.message_id, exc)
        else:
            log.warning("outbound message=%d will retry: %s", item.message_id, error)
