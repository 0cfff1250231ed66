"""The [agent_ui] and [canned_responses] config sections, read once into plain data.

    [agent_ui]
    session_idle_minutes = 480        # a session unused this long ends
    session_max_hours = 168           # a session ends this long after sign-in, used or not
    allowed_origins = []              # extra origins the /agent socket accepts

    [canned_responses]                # shortcut = text; typed as /shortcut in the reply box
    greeting = "Hello {contact_name}, this is {agent_name}. How can I help?"
    thanks = "Thank you for contacting {brand}!"

Variables in canned responses: {contact_name}, {agent_name}, {conversation_id}, {brand}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from inbox.config import Config
from routing.settings import RoutingSettings

_SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
VARIABLES = ("contact_name", "agent_name", "conversation_id", "brand")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True, slots=True)
class UiSettings:
    public_origin: str
    secure_cookies: bool
    session_idle: timedelta = timedelta(hours=8)
    session_lifetime: timedelta = timedelta(days=7)
    allowed_origins: frozenset[str] = frozenset()
    canned: dict[str, str] = field(default_factory=dict)
    sla_seconds: dict[str, float] = field(default_factory=dict)
    priorities: tuple[str, ...] = ()
    brand: str = "omnidesk"

    @property
    def cookie_name(self) -> str:
        # __Host- cookies must be Secure, Path=/ and host-only: browsers enforce it
        return "__Host-od_session" if self.secure_cookies else "od_session"


def read_ui_settings(config: Config) -> UiSettings:
    ui = config.section("agent_ui")
    idle = ui.int("session_idle_minutes", 480, min=1, max=7 * 24 * 60)
    max_hours = ui.int("session_max_hours", 168, min=1, max=24 * 90)
    extra = ui.str_list("allowed_origins", [])
    ui.reject_unknown({"session_idle_minutes", "session_max_hours", "allowed_origins"})

    canned_section = config.section("canned_responses")
    canned: dict[str, str] = {}
    for key in canned_section.keys():
        if not _SHORTCUT.fullmatch(key):
            raise canned_section.error(
                key, "a shortcut is lower-case letters, digits, - and _", fix='greeting = "Hello!"'
            )
        text = canned_section.str(key)
        for name in re.findall(r"\{([^{}]*)\}", text):
            if name not in VARIABLES:
                raise canned_section.error(
                    key, f"unknown variable {{{name}}}", fix=f"use one of {', '.join(VARIABLES)}"
                )
        canned[key] = text

    routing = RoutingSettings.from_section(config.section("routing"), config.priorities)
    brand = "omnidesk"
    if "autoreply" in config.root:
        value = config.section("autoreply").raw("brand")
        if isinstance(value, str) and value:
            brand = value
    public = origin_of(config.server.public_url)
    return UiSettings(
        public_origin=public,
        secure_cookies=public.startswith("https://"),
        session_idle=timedelta(minutes=idle),
        session_lifetime=timedelta(hours=max_hours),
        allowed_origins=frozenset(origin_of(o) for o in extra),
        canned=canned,
        sla_seconds=dict(routing.sla_seconds),
        priorities=tuple(config.priorities),
        brand=brand,
    )


def fill_canned(text: str, **values: str) -> str:
    """Substitute the known variables; anything else stays as written."""
    return re.sub(
        r"\{(" + "|".join(VARIABLES) + r")\}", lambda m: values.get(m.group(1), "") or "", text
    )
