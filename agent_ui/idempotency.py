"""`Idempotency-Key` on agent actions: the page sends one per action attempt and the same
one when it retries, so a resend after a dropped connection or an error page is answered
with the first answer and changes nothing twice (the key and the answer are stored in the
action's own transaction: `inbox.store.action_keys`). A request without the header acts as
before."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from agent_ui.workspace import Workspace
from inbox.errors import StoreError, ValidationError
from inbox.store import action_keys

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,100}")  # printable ASCII, no spaces

Answer = dict[str, Any]
T = TypeVar("T")


def request_key(request: web.Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _KEY.fullmatch(raw.strip()):
        raise ValidationError(f"{HEADER} must be 1-100 printable ASCII characters")
    return raw.strip()


def _action(request: web.Request) -> str:
    return f"{request.method} {request.path}"[:200]


async def write_once(
    ws: Workspace,
    request: web.Request,
    agent_id: int,
    fn: Callable[..., T],
    *args: Any,
    answer: Callable[[T], Answer],
) -> tuple[Answer, bool]:
    """The store function `fn(conn, *args)` in one write transaction, once per key, and
    its result as the action answers it (`answer`): (answer, whether it ran now)."""
    key = request_key(request)
    if key is None:
        return await ws.store.write(lambda conn: answer(fn(conn, *args))), True
    action = _action(request)
    try:
        return await ws.store.write(
            lambda conn: action_keys.once(
                conn, agent_id, key, action, lambda c: answer(fn(c, *args))
            )
        )
    except StoreError:
        # the same key arrived twice at once: the one that committed answers both
        stored = await ws.store.read(lambda conn: action_keys.recall(conn, agent_id, key, action))
        if stored is None:
            raise
        return stored, False


async def call_once(
    ws: Workspace, request: web.Request, agent_id: int, act: Callable[[], Awaitable[Answer]]
) -> tuple[Answer, bool]:
    """For an action that is not one transaction of ours (a router command): the stored
    answer if the key was used, else `act()`, then its answer stored under the key."""
    key = request_key(request)
    if key is None:
        return await act(), True
    action = _action(request)
    stored = await ws.store.read(lambda conn: action_keys.recall(conn, agent_id, key, action))
    if stored is not None:
        return stored, False
    answer = await act()
    try:
        await ws.store.write(lambda conn: action_keys.keep(conn, agent_id, key, action, answer))
    except StoreError:
        pass  # the same key raced in: both did the same thing
    return answer, True
