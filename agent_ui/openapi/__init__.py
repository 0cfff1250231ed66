"""The OpenAPI document of /api/v1: `document()` builds it from the paths and schemas."""

from agent_ui.openapi.spec import document

__all__ = ["document"]
