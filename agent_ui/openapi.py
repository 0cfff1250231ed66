"""The OpenAPI 3 document for /api/v1 (a test checks it against the registered routes)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from inbox.web.untrusted import MAX_ID

_ERROR = {"$ref": "#/components/responses/Error"}


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
            "400": _ERROR,
            "401": _ERROR,
            "404": _ERROR,
            "409": _ERROR,
            "503": _ERROR,
        },
    }
    if body is not None:
        op["responses"]["413"] = _ERROR
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
                "400": _ERROR,
                "401": _ERROR,
                "409": _ERROR,
                "413": _ERROR,
                "422": _ERROR,
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
            "responses": {"200": _ok("ConversationPage"), "400": _ERROR, "401": _ERROR},
        }
    },
    "/api/v1/conversations/{id}": {
        "get": {
            "summary": "One conversation with its messages",
            "security": [{"bearer": []}],
            "parameters": [_id_param()],
            "responses": {
                "200": _ok("ConversationWithMessages"),
                "400": _ERROR,
                "401": _ERROR,
                "404": _ERROR,
            },
        }
    },
    "/api/v1/contacts/{id}": {
        "get": {
            "summary": "One contact with identities and conversations",
            "security": [{"bearer": []}],
            "parameters": [_id_param()],
            "responses": {"200": _ok("Contact"), "400": _ERROR, "401": _ERROR, "404": _ERROR},
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
            "responses": {"200": _ok("Queue"), "400": _ERROR, "401": _ERROR},
        }
    },
    "/api/v1/agents": {
        "get": {
            "summary": "Active agents with presence and current load per channel",
            "security": [{"bearer": []}],
            "responses": {"200": _ok("AgentList"), "401": _ERROR},
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
                "400": _ERROR,
                "401": _ERROR,
                "404": _ERROR,
                "413": _ERROR,
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
                "400": _ERROR,
                "401": _ERROR,
                "404": _ERROR,
                "409": _ERROR,
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

_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_NULL_TIME = {"type": "string", "format": "date-time", "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": _STR, "message": _STR, "field": _STR},
            }
        },
    },
    "InboundMessage": {
        "type": "object",
        "required": ["sender", "text"],
        "properties": {
            "channel": {
                "type": "string",
                "enum": ["api", "email", "chat", "sms", "form"],
                "default": "api",
            },
            "external_id": {"type": "string", "maxLength": 500},
            "sender": {
                "type": "string",
                "minLength": 1,
                "maxLength": 320,
                "description": "email address, phone number or external user id (as the "
                "channel expects; 400 otherwise)",
            },
            "name": {"type": "string", "maxLength": 200},
            "subject": {"type": "string", "maxLength": 998},
            "text": {"type": "string", "pattern": "\\S", "maxLength": 262144},
            "html": {"type": "string", "description": "sanitized on arrival"},
            "inbox": {"type": "string", "maxLength": 100},
            "priority": {"type": "string", "maxLength": 32},
            "skills": {
                "type": "array",
                "maxItems": 20,
                "items": {"type": "string", "minLength": 1, "maxLength": 64},
            },
            "in_reply_to": {"type": "string", "maxLength": 500},
            "received_at": _TIME,
            "metadata": {"type": "object"},
        },
    },
    "IngestResult": {
        "type": "object",
        "properties": {
            "message_id": {"type": "integer"},
            "conversation_id": {"type": "integer"},
            "contact_id": {"type": "integer"},
            "duplicate": {"type": "boolean"},
        },
    },
    "Conversation": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "contact_id": {"type": "integer"},
            "channel": _STR,
            "inbox": _STR,
            "status": _STR,
            "priority": _STR,
            "subject": {"type": "string", "nullable": True},
            "required_skills": {"type": "array", "items": _STR},
            "assignee_id": {"type": "integer", "nullable": True},
            "tags": {"type": "array", "items": _STR},
            "created_at": _TIME,
            "last_message_at": _TIME,
            "first_response_at": _NULL_TIME,
            "resolved_at": _NULL_TIME,
            "waiting_since": _NULL_TIME,
        },
    },
    "Message": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "direction": {"type": "string", "enum": ["inbound", "outbound"]},
            "author_kind": {"type": "string", "enum": ["contact", "agent", "bot", "system"]},
            "author_id": {"type": "integer", "nullable": True},
            "channel": _STR,
            "subject": {"type": "string", "nullable": True},
            "text": _STR,
            "html": {"type": "string", "nullable": True},
            "attachments": {"type": "array", "items": {"type": "object"}},
            "delivery_status": _STR,
            "failure_reason": {"type": "string", "nullable": True},
            "created_at": _TIME,
        },
    },
    "ConversationPage": {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Conversation"}},
            "next_cursor": {"type": "string", "nullable": True},
        },
    },
    "ConversationWithMessages": {
        "allOf": [
            {"$ref": "#/components/schemas/Conversation"},
            {
                "type": "object",
                "properties": {
                    "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}
                },
            },
        ]
    },
    "Queue": {
        "type": "object",
        "properties": {
            "total": {"type": "integer"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "position": {"type": "integer", "description": "1 = next"},
                        "conversation_id": {"type": "integer"},
                        "priority": _STR,
                        "channel": _STR,
                        "inbox": _STR,
                        "skills": {"type": "array", "items": _STR},
                        "waiting_since": _TIME,
                        "wait_seconds": {"type": "number"},
                        "requeued": {"type": "boolean"},
                    },
                },
            },
        },
    },
    "AgentList": {
        "type": "object",
        "properties": {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "name": _STR,
                        "email": _STR,
                        "role": _STR,
                        "presence": {"type": "string", "enum": ["online", "away", "offline"]},
                        "skills": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "capacity": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "load": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "assigned": {"type": "integer"},
                    },
                },
            }
        },
    },
    "PresenceChange": {
        "type": "object",
        "required": ["presence"],
        "properties": {
            "id": {"type": "integer", "readOnly": True},
            "presence": {"type": "string", "enum": ["online", "away", "offline"]},
        },
    },
    "AssignRequest": {
        "type": "object",
        "required": ["agent_id"],
        "properties": {
            "agent_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "force": {"type": "boolean", "default": False},
        },
    },
    "TransferRequest": {
        "type": "object",
        "description": "exactly one of agent_id or skills",
        "properties": {
            "agent_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "skills": {"type": "array", "maxItems": 32, "items": _STR},
        },
    },
    "Contact": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string", "nullable": True},
            "identities": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"kind": _STR, "value": _STR, "verified": {"type": "boolean"}},
                },
            },
            "attributes": {"type": "object"},
            "tags": {"type": "array", "items": _STR},
            "merged_into": {"type": "integer", "nullable": True},
            "created_at": _TIME,
            "conversations": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Conversation"},
            },
        },
    },
}


SCOPES_DESCRIPTION = (
    "An API token from `omnidesk token create NAME [--inbox X ...] [--read-only]`, sent as "
    "`Authorization: Bearer <token>`; a missing, wrong or revoked one is a 401. A token "
    "has a scope. **Inboxes**: every inbox, or the named ones only: conversations of other "
    "inboxes and contacts with no conversation in its inboxes are answered 404, as if "
    "they did not exist; lists and the queue hold only its inboxes; `inbox=` naming "
    "another inbox is a 403; it may post messages into its inboxes only, naming one in "
    "`inbox` (none, or another: 403, `field: inbox`); it sees the agents of its inboxes' "
    "teams, and setting presence needs a token for every inbox (403). **Read-only**: every "
    "call other than GET is a 403 before anything is looked up. `omnidesk token revoke` "
    "takes effect at once in every process."
)


def _with_scopes(paths: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every operation a token authorizes may answer 403 (see SCOPES_DESCRIPTION)."""
    out: dict[str, dict[str, Any]] = {}
    for path, ops in paths.items():
        out[path] = {}
        for method, op in ops.items():
            if op.get("security"):
                op = {**op, "responses": {**op["responses"], "403": _ERROR}}
            out[path][method] = op
    return out


def document(app: web.Application | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "omnidesk API", "version": "1"},
        "paths": _with_scopes(PATHS),
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "Error": {
                    "description": "Error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": SCOPES_DESCRIPTION}
            },
        },
    }
