"""The paths of the /api/v1 OpenAPI document: each operation, its parameters and answers.

Every operation is built by `operation`, so the answers an operation may give are named
once: its success, and the error codes it can answer (each with the one error shape).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inbox.web.untrusted import MAX_ID

ERROR = {"$ref": "#/components/responses/Error"}
ROUTER_NOTE = (
    "Carried out by the active router; answered after it committed. "
    "503 router_unavailable: no router answered, nothing changed."
)


def _content(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": _content(schema)}


def _id_param(name: str = "id") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def operation(
    summary: str,
    ok: dict[str, dict[str, Any]],
    errors: Sequence[int] = (),
    *,
    params: Sequence[dict[str, Any]] = (),
    body: str | None = None,
    description: str | None = None,
    token: bool = True,
) -> dict[str, Any]:
    """One operation: `ok` maps success codes to answers; `errors` the codes it may refuse
    with; a JSON `body` schema adds 413 (too large). With `token`, a bearer token is needed
    (401, and 403 by its scope: see spec.SCOPES_DESCRIPTION)."""
    responses: dict[str, Any] = dict(ok)
    codes = set(errors) | ({401} if token else set()) | ({413} if body else set())
    responses |= {str(code): ERROR for code in sorted(codes)}
    op: dict[str, Any] = {"summary": summary}
    if description:
        op["description"] = description
    if token:
        op["security"] = [{"bearer": []}]
    if params:
        op["parameters"] = list(params)
    if body:
        op["requestBody"] = {"required": True, "content": _content(body)}
    op["responses"] = responses
    return op


def _move(summary: str, body: str | None) -> dict[str, Any]:
    """A change the router carries out (assign, unassign, transfer)."""
    return {
        "post": operation(
            summary,
            {"200": _ok("Conversation")},
            (400, 404, 409, 503),
            params=[_id_param()],
            body=body,
            description=ROUTER_NOTE,
        )
    }


_FILTER_STATUS = {"type": "string", "enum": ["open", "pending", "resolved", "closed"]}
_FILTER_CHANNEL = {"type": "string", "enum": ["email", "chat", "sms", "form", "api"]}
_FILTER_ASSIGNEE = {"type": "string", "pattern": "^(none|[1-9][0-9]{0,17})?$"}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/messages": {
        "post": operation(
            "Ingest an inbound message (generic channel for integrations)",
            {
                "201": _ok("IngestResult", "Stored"),
                "200": _ok("IngestResult", "Already stored (idempotent replay)"),
            },
            (400, 409, 422),
            params=[_IDEMPOTENCY_KEY],
            body="InboundMessage",
            description="Answered only after the message is committed. A repeated "
            "Idempotency-Key (or external_id) from the same sender returns the first result "
            "with duplicate=true.",
        )
    },
    "/api/v1/conversations": {
        "get": operation(
            "List conversations, newest activity first",
            {"200": _ok("ConversationPage")},
            (400,),
            params=[
                _query("status", _FILTER_STATUS, "filter"),
                _query("channel", _FILTER_CHANNEL, "filter"),
                _query("assignee", _FILTER_ASSIGNEE, "agent id, or 'none' for unassigned"),
                _query("inbox", {"type": "string"}, "filter"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    "page size",
                ),
                _query("cursor", {"type": "string"}, "next_cursor from the previous page"),
            ],
        )
    },
    "/api/v1/conversations/{id}": {
        "get": operation(
            "One conversation with its messages",
            {"200": _ok("ConversationWithMessages")},
            (400, 404),
            params=[_id_param()],
        )
    },
    "/api/v1/contacts/{id}": {
        "get": operation(
            "One contact with identities and conversations",
            {"200": _ok("Contact")},
            (400, 404),
            params=[_id_param()],
        )
    },
    "/api/v1/queue": {
        "get": operation(
            "Waiting conversations in routing order (priority, requeued first, longest wait)",
            {"200": _ok("Queue")},
            (400,),
            params=[
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    "rows",
                )
            ],
        )
    },
    "/api/v1/agents": {
        "get": operation(
            "Active agents with presence and current load per channel", {"200": _ok("AgentList")}
        )
    },
    "/api/v1/agents/{id}/presence": {
        "put": operation(
            "Set an agent's presence (away: keeps its work, gets none new; offline: "
            "gives back chats and unaccepted conversations)",
            {"200": _ok("PresenceChange")},
            (400, 404),
            params=[_id_param()],
            body="PresenceChange",
        )
    },
    "/api/v1/conversations/{id}/assign": _move(
        "Supervisor assignment to an agent (over capacity only with force)", "AssignRequest"
    ),
    "/api/v1/conversations/{id}/unassign": _move(
        "Take it from its agent and queue it again ahead of fresh conversations", None
    ),
    "/api/v1/conversations/{id}/transfer": _move(
        "Transfer to an agent (online, skilled, with room), back to the queue for other "
        "skills, or to another inbox or team",
        "TransferRequest",
    ),
    "/api/v1/conversations/{id}/resolve": {
        "post": operation(
            "Resolve: it leaves the queue or frees its agent",
            {"200": _ok("Conversation")},
            (400, 404, 409),
            params=[_id_param()],
        )
    },
    "/api/v1/conversations/{id}/reply": {
        "post": operation(
            "Reply to the customer through the conversation's channel, as an agent",
            {"200": _ok("ReplyQueued", "Queued for delivery")},
            (400, 404, 409, 422),
            params=[_id_param()],
            body="ReplyRequest",
            description="422 reply_refused: the channel cannot send it (an SMS over 1,600 "
            "characters, a number that texted STOP, a subject with a line break); nothing "
            "is queued. 409: the conversation is closed.",
        )
    },
    "/api/v1/conversations/{id}/priority": {
        "post": operation(
            "Set the priority, with the reason (kept in the activity log)",
            {"200": _ok("PriorityChange")},
            (400, 404, 409),
            params=[_id_param()],
            body="PriorityRequest",
            description="The SLA clocks still running take the new level's targets; the "
            "router re-ranks the conversation while it waits. 409: it already has that "
            "priority, or it is closed.",
        )
    },
    "/api/v1/conversations/{id}/status": {
        "post": operation(
            "Set the status: open, pending (waiting on the customer), on hold (waiting on a "
            "third party), snoozed until a time, solved, closed",
            {"200": _ok("CaseState")},
            (400, 404, 409),
            params=[_id_param()],
            body="StatusRequest",
            description="A snoozed conversation comes back to the queue at `until`, after a "
            "restart too. 409: the move is not allowed from its status (the message says "
            "what is).",
        )
    },
    "/api/v1/conversations/{id}/escalate": {
        "post": operation(
            "Ask a supervisor for help, with a note (it is listed on their escalations page)",
            {"200": _ok("CaseState")},
            (400, 404, 409),
            params=[_id_param()],
            body="EscalateRequest",
        )
    },
    "/api/v1/conversations/{id}/accept": {
        "post": operation(
            "Accept the conversation the router offered to the agent: it stays theirs",
            {"200": _ok("Conversation")},
            (400, 404, 409),
            params=[_id_param()],
            body="AgentRequest",
            description="An offer not accepted within the accept timeout goes back to the "
            "queue. 409: it is not offered to this agent (any more), with who holds it.",
        )
    },
    "/api/v1/conversations/{id}/claim": {
        "post": operation(
            "Claim a waiting conversation for the agent",
            {"200": _ok("Conversation")},
            (400, 404, 409),
            params=[_id_param()],
            body="AgentRequest",
            description="Exactly one of two agents claiming at once wins; the other is "
            "answered 409 with the holder's name.",
        )
    },
    "/api/v1/queue/next": {
        "post": operation(
            "Take next: the best waiting conversation the agent may take, accepted",
            {"200": _ok("Conversation")},
            (400, 404, 409, 503),
            body="AgentRequest",
            description="409: nothing waiting that the agent can take now. " + ROUTER_NOTE,
        )
    },
    "/api/v1/conversations/bulk": {
        "post": operation(
            "One action on many conversations; each is checked and done on its own",
            {"200": _ok("BulkResult")},
            (400,),
            body="BulkRequest",
            description="One transaction per conversation: a refused one (not yours to "
            "change, a move its status does not allow) does not stop the others; the answer "
            "says per conversation what was done or why not. More than 200 ids: 413.",
        )
    },
    "/api/v1/conversations/{id}/activity": {
        "get": operation(
            "The conversation's activity log, oldest first: who changed what, when, from "
            "what to what, and why",
            {"200": _ok("ActivityPage")},
            (400, 404),
            params=[
                _id_param(),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    "page size",
                ),
                _query(
                    "cursor",
                    {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
                    "next_cursor from the previous page",
                ),
            ],
        )
    },
    "/api/v1/openapi.json": {
        "get": operation(
            "This document", {"200": {"description": "OpenAPI 3 document"}}, token=False
        )
    },
    "/healthz": {"get": operation("Liveness", {"200": {"description": "alive"}}, token=False)},
    "/readyz": {
        "get": operation(
            "Readiness: the store writes, writer process, bus and mailboxes healthy",
            {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            token=False,
        )
    },
}
