"""Refusing, when it is submitted, a reply its channel cannot send (issue 17.7): an SMS over
1,600 characters, a number that texted STOP, an email subject with a line break. Before,
the reply was queued (200) and the outbox failed it later.

The reply is routed as the outbox will route it (`inbox.store.messages.reply_route_of`),
and the adapter of the channel it goes through is asked (`ChannelAdapter.check_reply`);
its reason is the answer: 422 `reply_refused`, nothing queued. Here rather than in `inbox`,
which may not import the channels (ARCHITECTURE.md's layering).
"""

from __future__ import annotations

from collections.abc import Sequence

from channels import registry
from channels.protocol import ReplyTarget
from inbox.errors import ReplyRefused
from inbox.store import messages
from inbox.store.backends import Store
from inbox.types import Attachment

__all__ = ["check_reply"]


async def check_reply(
    store: Store,
    conversation_id: int,
    text: str,
    attachments: Sequence[Attachment] = (),
    *,
    subject: str | None = None,
) -> None:
    """Raise `ReplyRefused` with the channel's reason if the reply cannot be sent."""
    route = await store.read(lambda conn: messages.reply_route_of(conn, conversation_id))
    target = ReplyTarget(conversation_id, route.channel, route.to, route.opted_out)
    for adapter in registry.CHANNELS:
        if route.channel in adapter.sends:
            reason = adapter.check_reply(target, text, attachments, subject=subject)
            if reason is not None:
                raise ReplyRefused(reason)
