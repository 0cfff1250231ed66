"""The `[webchat]` section: limits for every widget, then one `[webchat.widgets.KEY]`
table per widget (its allowed origins, look, pre-chat form, identity secret, hours).
Read once into frozen dataclasses; errors name the file, line and key."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from channels.webchat.hours import BusinessHours, read_hours
from inbox.config import ConfigSection
from inbox.web.client_address import read_trusted_proxies

PRECHAT_FIELDS = ("name", "email", "consent")
DEFAULT_FILE_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$")


@dataclass(frozen=True, slots=True)
class WidgetSettings:
    key: str
    allowed_origins: tuple[str, ...]
    inbox: str = "default"
    title: str = "Chat with us"
    greeting: str = "Hi! How can we help?"
    color: str = "#2563eb"  # launcher, header and the visitor's bubbles
    text_color: str = "#ffffff"  # text on `color`
    prechat_fields: tuple[str, ...] = ()  # asked before the first message
    prechat_required: bool = False  # the form must be filled to chat
    consent_text: str = "I agree that my messages are stored to answer me."
    offline_message: str = (
        "No one is available right now. Leave your email address and we will answer by email."
    )
    identity_secret: str | None = None  # host-site user ids are verified with HMAC-SHA256
    hours: BusinessHours | None = None  # None: always open (agents' presence still counts)
    sound: bool = True

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        return "*" in self.allowed_origins or origin.rstrip("/") in self.allowed_origins


_D = WidgetSettings(key="", allowed_origins=())  # the defaults


@dataclass(frozen=True, slots=True)
class WebchatSettings:
    widgets: dict[str, WidgetSettings] = field(default_factory=dict)
    max_message_chars: int = 5000
    rate_limit: int = 20  # messages (and uploads) per visitor per window
    rate_window_seconds: float = 60.0
    max_connections_per_ip: int = 50
    max_file_bytes: int = 5 * 1024 * 1024
    allowed_file_types: tuple[str, ...] = DEFAULT_FILE_TYPES
    token_max_age_days: int = 365
    demo_port: int | None = None  # serve a demo host page on this port (another origin)
    demo_widget: str | None = None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


def _origins(section: ConfigSection) -> tuple[str, ...]:
    origins = tuple(o.rstrip("/") for o in section.str_list("allowed_origins"))
    if not origins:
        raise section.error(
            "allowed_origins",
            "a widget needs the origins of the sites that embed it",
            fix='allowed_origins = ["https://www.example.com"]',
        )
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (
            parts.scheme not in ("http", "https") or not parts.netloc or parts.path
        ):
            raise section.error(
                "allowed_origins", f"not an origin: {origin!r}", fix='["https://www.example.com"]'
            )
    return origins


def _color(section: ConfigSection, key: str, default: str) -> str:
    value = section.str(key, default)
    if not _COLOR_RE.match(value):
        raise section.error(
            key, f"expected a #rgb or #rrggbb colour, got {value!r}", fix=f'{key} = "{default}"'
        )
    return str(value)


def _read_widget(section: ConfigSection, key: str, inboxes: Iterable[str] | None) -> WidgetSettings:
    if not _KEY_RE.match(key):
        raise section.error(
            None, f"bad widget key {key!r}", fix="lower-case letters, digits, - and _"
        )
    inbox = section.str("inbox", "default")
    if inboxes is not None and inbox not in set(inboxes):
        raise section.error("inbox", f"unknown inbox {inbox!r}", fix=f"one of {list(inboxes)}")
    prechat = tuple(section.str_list("prechat_fields", []))
    for name in prechat:
        if name not in PRECHAT_FIELDS:
            raise section.error(
                "prechat_fields",
                f"unknown pre-chat field {name!r}",
                fix=f"some of {list(PRECHAT_FIELDS)}",
            )
    secret = section.secret("identity_secret", None)
    if secret is not None and len(secret) < 16:
        raise section.error(
            "identity_secret", "must be at least 16 characters", fix="a long random string"
        )
    hours = read_hours(section.section("business_hours")) if "business_hours" in section else None
    widget = WidgetSettings(
        key=key,
        allowed_origins=_origins(section),
        inbox=inbox,
        title=section.str("title", _D.title),
        greeting=section.str("greeting", _D.greeting),
        color=_color(section, "color", _D.color),
        text_color=_color(section, "text_color", _D.text_color),
        prechat_fields=prechat,
        prechat_required=section.bool("prechat_required", False),
        consent_text=section.str("consent_text", _D.consent_text),
        offline_message=section.str("offline_message", _D.offline_message),
        identity_secret=secret,
        hours=hours,
        sound=section.bool("sound", True),
    )
    section.reject_unknown()
    return widget


def read_webchat_settings(
    section: ConfigSection, *, inboxes: Iterable[str] | None = None
) -> WebchatSettings:
    """Validate `[webchat]`: pass config.section("webchat") and config.inboxes."""
    proxies = read_trusted_proxies(section)
    inboxes = list(inboxes) if inboxes is not None else None
    widgets = {w.str("name"): w for w in section.sections("widgets")}
    parsed = {key: _read_widget(w, key, inboxes) for key, w in widgets.items()}
    demo_port = section.int("demo_port", None, min=1, max=65535)
    demo_widget = section.str("demo_widget", next(iter(parsed), None))
    if demo_port is not None and demo_widget not in parsed:
        raise section.error(
            "demo_widget",
            f"no widget {demo_widget!r} to show on the demo page",
            fix="add a [webchat.widgets.KEY] table",
        )
    settings = WebchatSettings(
        widgets=parsed,
        max_message_chars=section.int("max_message_chars", 5000, min=1, max=100_000),
        rate_limit=section.int("rate_limit", 20, min=1, max=1_000_000),
        rate_window_seconds=section.float("rate_window_seconds", 60.0, min=0.1, max=86_400),
        max_connections_per_ip=section.int("max_connections_per_ip", 50, min=1, max=1_000_000),
        max_file_bytes=section.int("max_file_bytes", 5 * 1024 * 1024, min=1, max=100 * 1024**2),
        allowed_file_types=tuple(section.str_list("allowed_file_types", list(DEFAULT_FILE_TYPES))),
        token_max_age_days=section.int("token_max_age_days", 365, min=1, max=3650),
        demo_port=demo_port,
        demo_widget=demo_widget,
        trusted_proxies=proxies,
    )
    section.reject_unknown()
    return settings
