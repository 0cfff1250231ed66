"""The paths of the /api/v1 OpenAPI document: each operation, its parameters and answers."""

from __future__ import annotations

from typing import Any

from inbox.web.untrusted import MAX_ID

ERROR = {"$ref": "#/components/responses/Error"}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


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


def _json_body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _move(summary: str, body: str | None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": "Carried out by the active router; answered after it committed. "
        "503 router_unavailable: no router answered, nothing changed.",
        "security": [{"bearer": []}],
        "parameters": [_id_param()],
        "responses": {
            "200": _ok("Conversation"),
            "400": ERROR,
            "401": ERROR,
            "404": ERROR,
            "409": ERROR,
            "503": ERROR,
        },
    }
    if body is not None:
        op["responses"]["413"] = ERROR
        op["requestBody"] = _json_body(body)
    return {"post": op}


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/messages": {
        "post": {
            "summary": "Ingest an inbound message (generic channel for integrations)",
            "description": "Answered only after the message is committed. A repeated "
            "Idempotency-Key (or external_id) from the same sender returns the first result "
            "with duplicate=true.",
            "security": [{"bearer": []}],
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/InboundMessage"}}
                },
            },
            "responses": {
                "201": _ok("IngestResult", "Stored"),
                "200": _ok("IngestResult", "Already stored (idempotent replay)"),
                "400": ERROR,
                "401": ERROR,
                "409": ERROR,
                "413": ERROR,
                "422": ERROR,
            },
        }
    },
    "/api/v1/conversations": {
        "get": {
            "summary": "List conversations, newest activity first",
            "security": [{"bearer": []}],
            "parameters": [
                _query(
                    "status",
                    {"type": "string", "enum": ["open", "pending", "resolved", "closed"]},
                    "filter",
                ),
                _query(
                    "channel",
                    {"type": "string", "enum": ["email", "chat", "sms", "form", "api"]},
                    "filter",
                ),
                _query(
                    "assignee",
                    {"type": "string", "pattern": "^(none|[1-9][0-9]{0,17})?$"},
                    "agent id, or 'none' for unassigned",
                ),
                _query("inbox", {"type": "string"}, "filter"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    "page size",
                ),
                _query("cursor", {"type": "string"}, "next_cursor from the previous page"),
            ],
            "responses": {"200": _ok("ConversationPage"), "400": ERROR, "401": ERROR},
        }
    },
    "/api/v1/conversations/{id}": {
        "get": {
            "summary": "One conversation with its messages",
            "security": [{"bearer": []}],
            "parameters": [_id_param()],
            "responses": {
                "200": _ok("ConversationWithMessages"),
                "400": ERROR,
                "401": ERROR,
                "404": ERROR,
            },
        }
    },
    "/api/v1/contacts/{id}": {
        "get": {
            "summary": "One contact with identities and conversations",
            "security": [{"bearer": []}],
            "parameters": [_id_param()],
            "responses": {"200": _ok("Contact"), "400": ERROR, "401": ERROR, "404": ERROR},
        }
    },
    "/api/v1/queue": {
        "get": {
            "summary": (
                "Waiting conversations in routing order (priority, requeued first, longest wait)"
            ),
            "security": [{"bearer": []}],
            "parameters": [
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    "rows",
                )
            ],
            "responses": {"200": _ok("Queue"), "400": ERROR, "401": ERROR},
        }
    },
    "/api/v1/agents": {
        "get": {
            "summary": "Active agents with presence and current load per channel",
            "security": [{"bearer": []}],
            "responses": {"200": _ok("AgentList"), "401": ERROR},
        }
    },
    "/api/v1/agents/{id}/presence": {
        "put": {
            "summary": "Set an agent's presence (away: keeps its work, gets none new; offline: "
            "gives back chats and unaccepted conversations)",
            "security": [{"bearer": []}],
            "parameters": [_id_param()],
            "requestBody": _json_body("PresenceChange"),
            "responses": {
                "200": _ok("PresenceChange"),
                "400": ERROR,
                "401": ERROR,
                "404": ERROR,
                "413": ERROR,
            },
        }
    },
    "/api/v1/conversations/{id}/assign": _move(
        "Supervisor assignment to an agent (over capacity only with force)", "AssignRequest"
    ),
    "/api/v1/conversations/{id}/unassign": _move(
        "Take it from its agent and queue it again ahead of fresh conversations", None
    ),
    "/api/v1/conversations/{id}/transfer": _move(
        "Transfer to an agent (online, skilled, with room) or back to the queue for other skills",
        "TransferRequest",
    ),
    "/api/v1/conversations/{id}/resolve": {
        "post": {
            "summary": "Resolve: it leaves the queue or frees its agent",
            "security": [{"bearer": []}],
            "parameters": [_id_param()],
            "responses": {
                "200": _ok("Conversation"),
                "400": ERROR,
                "401": ERROR,
                "404": ERROR,
                "409": ERROR,
            },
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3 document"}},
        }
    },
    "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
    "/readyz": {
        "get": {
            "summary": "Readiness: the store writes, writer process, bus and mailboxes healthy",
            "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
        }
    },
}
