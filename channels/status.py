"""Delivery status handling shared by the channels: a message's delivery moved (a
provider's status callback, a visitor's read receipt), so it is announced on the bus
(`message.delivery_changed`), which the agent workspace shows live."""

from __future__ import annotations

from inbox.bus.backends import EventBus
from inbox.events import DeliveryChanged, Event, EventName
from inbox.store.backends import Store
from inbox.store.outbox import record_delivery
from inbox.types import DeliveryStatus


async def announce_delivery(
    bus: EventBus, message_id: int, conversation_id: int, status: DeliveryStatus
) -> None:
    await bus.publish(
        Event(
            EventName.MESSAGE_DELIVERY_CHANGED,
            DeliveryChanged(
                message_id=message_id, conversation_id=conversation_id, status=status.value
            ),
        )
    )


class DeliveryReports:
    """A provider's report on a message we sent (`await reports(provider id, status,
    error)`): recorded on the message, then announced if it moved the status (a report
    arriving late or twice changes nothing and is not announced)."""

    def __init__(self, store: Store, bus: EventBus) -> None:
        self._store = store
        self._bus = bus

    async def __call__(
        self, provider_id: str, status: DeliveryStatus, error: str | None = None
    ) -> None:
        changed = await self._store.write(
            lambda conn: record_delivery(conn, provider_id, status, error)
        )
        if changed is not None:
            await announce_delivery(self._bus, changed[0], changed[1], status)
