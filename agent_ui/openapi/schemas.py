"""The component schemas of the /api/v1 OpenAPI document: what each request and answer holds."""

from __future__ import annotations

from typing import Any

from inbox.web.untrusted import MAX_ID

_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_NULL_TIME = {"type": "string", "format": "date-time", "nullable": True}
_TEXT = {"type": "string", "pattern": "\\S", "maxLength": 262144}
# an activity entry's value: an agent id, a status, a level, the tags, true/false, or null
_VALUE = {"nullable": True, "description": "a string, a whole number, true/false or a list"}

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
            "text": _TEXT,
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
    "ReplyRequest": {
        "type": "object",
        "required": ["agent_id", "text"],
        "properties": {
            "agent_id": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_ID,
                "description": "the agent the reply is from: active, and allowed on the "
                "conversation's inbox",
            },
            "text": _TEXT,
            "subject": {
                "type": "string",
                "maxLength": 998,
                "description": "email, forms and API conversations; one line",
            },
        },
    },
    "ReplyQueued": {
        "type": "object",
        "properties": {"message_id": {"type": "integer"}, "conversation_id": {"type": "integer"}},
    },
    "PriorityRequest": {
        "type": "object",
        "required": ["priority"],
        "properties": {
            "priority": {
                "type": "string",
                "minLength": 1,
                "maxLength": 32,
                "description": "one of the configured levels ([priorities].levels; by default "
                "urgent, high, normal, low); 400 otherwise",
            },
            "reason": {
                "type": "string",
                "maxLength": 500,
                "description": "why; kept in the activity log",
            },
        },
    },
    "PriorityChange": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "priority": _STR,
            "previous_priority": _STR,
            "version": {"type": "integer"},
            "activity": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ActivityEntry"},
                "description": "the entries this change appended (an SLA clock that fell "
                "due before it is recorded too)",
            },
        },
    },
    "ActivityEntry": {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "description": "its place in the log"},
            "actor_kind": {
                "type": "string",
                "enum": ["agent", "rule", "router", "api_token", "system"],
            },
            "actor_id": {
                "type": "string",
                "nullable": True,
                "description": "an agent's or token's id, a rule's name",
            },
            "who": {"type": "string", "description": "the actor as a person reads it"},
            "at": _TIME,
            "kind": {
                "type": "string",
                "enum": [
                    "assignee",
                    "status",
                    "priority",
                    "inbox",
                    "team",
                    "tags",
                    "sla",
                    "merge",
                    "escalation",
                ],
            },
            "before": _VALUE,
            "after": _VALUE,
            "reason": {"type": "string", "nullable": True},
        },
    },
    "ActivityPage": {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/ActivityEntry"}},
            "next_cursor": {"type": "string", "nullable": True},
        },
    },
}
