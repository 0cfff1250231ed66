"""What the widget reads and writes in the store, under the names the widget uses: a
visitor's chat conversations, their messages after a sequence number (message ids:
monotonic and durable, so a restart never resets them), read receipts, the follow-up
address, how many agents are online. Each is a function of the store's repositories, run
through `Store.read/write`; this module adds the wire shape of a message
(`wire_message`), which live messages and resyncs share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ParamSpec

from inbox.store import messages
from inbox.store.agents import count_online as agents_online
from inbox.store.contacts import save_followup
from inbox.store.conversations import VisitorChats, token_of
from inbox.store.conversations import of_visitor as conversations_of
from inbox.store.messages import mark_read

__all__ = [
    "VisitorChats",
    "agents_online",
    "conversations_of",
    "mark_read",
    "messages_after",
    "save_followup",
    "token_of",
    "wire_message",
]

P = ParamSpec("P")
Wire = dict[str, Any]


def wire_message(
    *,
    seq: int,
    author: str,
    name: str | None,
    text: str,
    at: datetime,
    attachments: Sequence[Any] = (),
    status: str = "",
) -> Wire:
    """One message as the widget receives it (live or by resync): `seq` orders and dedupes."""
    files = [
        {k: a.get(k) for k in ("filename", "content_type", "size", "storage_key")}
        for a in attachments
        if isinstance(a, dict)
    ]
    return {
        "seq": seq,
        "author": author,
        "name": name,
        "text": text,
        "at": at.isoformat(),
        "files": files,
        "status": status,
    }


def _on_the_wire(
    read: Callable[P, tuple[list[messages.ChatLine], bool]],
) -> Callable[P, tuple[list[Wire], bool]]:
    """`read`, its messages in the widget's shape."""

    def wired(*args: P.args, **kwargs: P.kwargs) -> tuple[list[Wire], bool]:
        lines, more = read(*args, **kwargs)
        return [
            wire_message(
                seq=line.seq,
                author=line.author,
                name=line.name,
                text=line.text,
                at=line.at,
                attachments=line.attachments,
                status=line.status,
            )
            for line in lines
        ], more

    return wired


# (conn, conversation ids, after) -> (messages with seq > after, oldest first; more remain)
messages_after = _on_the_wire(messages.chat_after)
