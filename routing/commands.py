"""What other processes say to the active router over the event bus.

A web process cannot call the router: the active one may live in another process (or
change after a failover). It publishes a `routing.command` event; the active router
applies it, persists what it decided, and publishes `routing.reply` with the same
`request_id` (ok, or the error's status/code/message). Standbys ignore commands.

Socket layers report agent connections as `agent.connection` events
({"agent_id": n, "connected": bool}) after recording them in `inbox.bus.presence`. A router
given that presence (`sockets=`, as `omnidesk` wires it) reads the counts from it (over
every live web process with Redis) and takes the event as "re-read now"; one without it
counts the events. Either way it sets an agent offline when the last socket has been gone
for `offline_grace_seconds`.
"""

from __future__ import annotations

from inbox.events import RoutingReply

ASSIGN = "assign"  # {"conversation_id", "agent_id", "force"}
UNASSIGN = "unassign"  # {"conversation_id"}
TRANSFER = "transfer"  # {"conversation_id", "agent_id"} or {"conversation_id", "skills"}
ACCEPT = "accept"  # {"conversation_id"}
# {"agent_id", "conversation_id": 0}: the router picks; its reply names the conversation
TAKE_NEXT = "take_next"
OPS = frozenset({ASSIGN, UNASSIGN, TRANSFER, ACCEPT, TAKE_NEXT})

# events this service publishes carry this marker, so it does not consume its own
SOURCE = "router"


def reply(
    request_id: str, error: Exception | None = None, conversation_id: int | None = None
) -> RoutingReply:
    if error is None:
        answer = RoutingReply(request_id=request_id, ok=True)
        if conversation_id is not None:
            answer["conversation_id"] = conversation_id
        return answer
    return RoutingReply(
        request_id=request_id,
        ok=False,
        status=int(getattr(error, "status", 500)),
        code=str(getattr(error, "code", "internal_error")),
        message=str(getattr(error, "message", None) or error),
        field=getattr(error, "field", None),
    )
