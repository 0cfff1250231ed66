"""Read API for integrations and the agent UI: conversations, contacts, health, OpenAPI."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from inbox.errors import ValidationError
from inbox.health import Readiness
from inbox.store import conversations, pages
from inbox.types import Channel, Contact, Conversation, ConversationStatus, Message
from inbox.web.http import STORE_KEY, require_inbox, require_token
from inbox.web.untrusted import parse_id

# what /readyz asks: the store's writes, the writer process, the bus, IMAP mailboxes, ...
READINESS_KEY: web.AppKey[Readiness] = web.AppKey("readiness", Readiness)


def conversation_json(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "contact_id": c.contact_id,
        "channel": c.channel.value,
        "inbox": c.inbox,
        "status": c.status.value,
        "priority": c.priority,
        "subject": c.subject,
        "required_skills": list(c.required_skills),
        "assignee_id": c.assignee_id,
        "tags": list(c.tags),
        "created_at": c.created_at.isoformat(),
        "last_message_at": c.last_message_at.isoformat(),
        "first_response_at": c.first_response_at and c.first_response_at.isoformat(),
        "resolved_at": c.resolved_at and c.resolved_at.isoformat(),
        "waiting_since": c.waiting_since and c.waiting_since.isoformat(),
    }


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction.value,
        "author_kind": m.author_kind.value,
        "author_id": m.author_id,
        "channel": m.channel.value,
        "subject": m.subject,
        "text": m.text,
        "html": m.html,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in m.attachments
        ],
        "delivery_status": m.delivery_status.value,
        "failure_reason": m.failure_reason,
        "created_at": m.created_at.isoformat(),
    }


def contact_json(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "identities": [
            {"kind": i.kind.value, "value": i.value, "verified": i.verified} for i in c.identities
        ],
        "attributes": dict(c.attributes),
        "tags": list(c.tags),
        "merged_into": c.merged_into,
        "created_at": c.created_at.isoformat(),
    }


def _int(value: str, name: str) -> int:
    return parse_id(value, name)


async def list_conversations(request: web.Request) -> web.Response:
    scope = await require_token(request)
    q = request.query
    filters: dict[str, Any] = {}
    if "status" in q:
        if q["status"] not in {s.value for s in ConversationStatus}:
            raise ValidationError(f"unknown status {q['status'][:30]!r}", field="status")
        filters["status"] = q["status"]
    if "channel" in q:
        if q["channel"] not in {c.value for c in Channel}:
            raise ValidationError(f"unknown channel {q['channel'][:30]!r}", field="channel")
        filters["channel"] = q["channel"]
    if "assignee" in q:
        filters["assignee"] = (
            None if q["assignee"] in {"none", ""} else _int(q["assignee"], "assignee")
        )
    if "inbox" in q:
        require_inbox(scope, q["inbox"])
        filters["inbox"] = q["inbox"][:100]
    if scope.inboxes is not None:
        filters["inboxes"] = scope.inboxes
    limit = _int(q.get("limit", "50"), "limit")
    if not 1 <= limit <= 200:
        raise ValidationError("'limit' must be between 1 and 200", field="limit")
    cursor = q.get("cursor") or None
    rows, next_cursor = await request.app[STORE_KEY].read(
        lambda conn: conversations.list_page(conn, filters=filters, limit=limit, cursor=cursor)
    )
    return web.json_response(
        {"data": [conversation_json(c) for c in rows], "next_cursor": next_cursor}
    )


async def get_conversation(request: web.Request) -> web.Response:
    scope = await require_token(request)
    cid = _int(request.match_info["id"], "id")

    # outside the token's inboxes, as if it did not exist: a token learns nothing
    conv, msgs = await request.app[STORE_KEY].read(
        lambda conn: pages.api_conversation(conn, cid, scope.inboxes)
    )
    body = conversation_json(conv)
    body["messages"] = [message_json(m) for m in msgs]
    return web.json_response(body)


async def get_contact(request: web.Request) -> web.Response:
    scope = await require_token(request)
    cid = _int(request.match_info["id"], "id")

    # a token limited to some inboxes sees the contacts who wrote to them
    contact, convs = await request.app[STORE_KEY].read(
        lambda conn: pages.api_contact(conn, cid, scope.inboxes)
    )
    body = contact_json(contact)
    body["conversations"] = [conversation_json(c) for c in convs]
    return web.json_response(body)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when every check passes; the body names each check, and those that failed."""
    checks = await request.app[READINESS_KEY].results()
    failed = [name for name, check in checks.items() if not check["ok"]]
    return web.json_response(
        {"status": "unready" if failed else "ready", "failed": failed, "checks": checks},
        status=503 if failed else 200,
    )


async def openapi(request: web.Request) -> web.Response:
    from agent_ui.openapi import document

    return web.json_response(document(request.app))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/conversations", list_conversations),
        web.get("/api/v1/conversations/{id}", get_conversation),
        web.get("/api/v1/contacts/{id}", get_contact),
        web.get("/api/v1/openapi.json", openapi),
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
    ]
