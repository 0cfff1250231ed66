"""The OpenAPI 3 document for /api/v1 (a test checks it against the registered routes)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_ui.openapi.case_schemas import CASE_SCHEMAS
from agent_ui.openapi.paths import ERROR, PATHS
from agent_ui.openapi.schemas import SCHEMAS

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
                op = {**op, "responses": {**op["responses"], "403": ERROR}}
            out[path][method] = op
    return out


def document(app: web.Application | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "omnidesk API", "version": "1"},
        "paths": _with_scopes(PATHS),
        "components": {
            "schemas": SCHEMAS | CASE_SCHEMAS,
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
