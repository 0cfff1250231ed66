"""Web forms: config-defined forms, `POST /forms/{name}`, and an embeddable snippet."""

from channels.webform.endpoint import AttachmentStore, Confirm, FormEndpoint
from channels.webform.render import snippet
from channels.webform.settings import FieldSpec, FormSettings, FormsSettings, read_forms_settings
from inbox.web.ratelimit import RateLimiter

__all__ = [
    "AttachmentStore",
    "Confirm",
    "FieldSpec",
    "FormEndpoint",
    "FormSettings",
    "FormsSettings",
    "RateLimiter",
    "read_forms_settings",
    "snippet",
]
