"""The component schemas of the case actions (issue 17): status, escalation, transfer to an
inbox or team, and bulk actions."""

from __future__ import annotations

from typing import Any

from inbox.web.untrusted import MAX_ID

_STR = {"type": "string"}
_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_REASON = {"type": "string", "maxLength": 500, "description": "why; kept in the activity log"}
_NULL_TIME = {"type": "string", "format": "date-time", "nullable": True}
STATUSES = ["open", "pending", "on_hold", "snoozed", "solved", "resolved", "closed"]

CASE_SCHEMAS: dict[str, Any] = {
    "StatusRequest": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {
                "type": "string",
                "enum": STATUSES,
                "description": "resolved is another name of solved",
            },
            "until": {
                "type": "string",
                "format": "date-time",
                "description": "with snoozed only, and then required: when it comes back to the "
                "queue (an ISO time with its offset)",
            },
            "reason": _REASON,
        },
    },
    "EscalateRequest": {
        "type": "object",
        "required": ["note"],
        "properties": {"note": {"type": "string", "minLength": 1, "maxLength": 500}},
    },
    "CaseState": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "description": "as stored: solved shows as resolved"},
            "snoozed_until": _NULL_TIME,
            "priority": _STR,
            "escalated": {"type": "boolean"},
            "assignee_id": {"type": "integer", "nullable": True},
            "sla_due_at": _NULL_TIME,
            "sla_state": {"type": "string", "nullable": True},
        },
    },
    "TransferRequest": {
        "type": "object",
        "description": "exactly one of agent_id, skills, inbox or team",
        "properties": {
            "agent_id": _ID,
            "skills": {"type": "array", "maxItems": 32, "items": _STR},
            "inbox": {"type": "string", "minLength": 1, "maxLength": 100},
            "team": {"type": "string", "minLength": 1, "maxLength": 100},
            "reason": _REASON,
        },
    },
    "AgentRequest": {
        "type": "object",
        "required": ["agent_id"],
        "properties": {"agent_id": {**_ID, "description": "the agent who takes it"}},
    },
    "BulkRequest": {
        "type": "object",
        "required": ["ids", "action"],
        "description": "what each action needs: assign agent_id; transfer inbox or team; tag "
        "tags; status status (and until for snoozed); priority priority; snooze until",
        "properties": {
            "ids": {"type": "array", "minItems": 1, "maxItems": 200, "items": _ID},
            "action": {
                "type": "string",
                "enum": ["assign", "transfer", "tag", "status", "priority", "snooze", "solve"],
            },
            "agent_id": _ID,
            "inbox": _STR,
            "team": _STR,
            "tags": {"type": "array", "minItems": 1, "maxItems": 20, "items": _STR},
            "status": {"type": "string", "enum": STATUSES},
            "priority": _STR,
            "until": {"type": "string", "format": "date-time"},
            "reason": _REASON,
        },
    },
    "BulkResult": {
        "type": "object",
        "properties": {
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "ok"],
                    "properties": {
                        "id": {"type": "integer"},
                        "ok": {"type": "boolean"},
                        "code": {"type": "string", "description": "why it was refused"},
                        "message": _STR,
                    },
                },
            },
            "ok": {"type": "integer", "description": "how many were done"},
            "failed": {"type": "integer", "description": "how many were refused"},
        },
    },
}
