"""The [agent_ui] and [canned_responses] config sections, read once into plain data.

    [agent_ui]
    session_idle_minutes = 480        # a session unused this long ends
    session_max_hours = 168           # a session ends this long after sign-in, used or not
    allowed_origins = []              # extra origins the /agent socket accepts
    trusted_proxies = []              # proxies whose X-Forwarded-For names the client
    signin_free_attempts = 5          # attempts per account+address...
    signin_address_attempts = 20      # ...and per address, any account (a shared office)...
    signin_delay_seconds = 5          # ...then this wait, doubling with each further one
    signin_max_delay_seconds = 900    # the longest wait
    signin_forget_minutes = 60        # a counter without attempts this long starts anew
    password_threads = 2              # argon2 checks at once (off the event loop)
    password_queue = 16               # checks waiting; more sign-ins get 503 at once

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

from inbox.accounts.signin_throttle import ThrottlePolicy
from inbox.config import Config
from inbox.web.client_address import Network, read_trusted_proxies
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
    trusted_proxies: tuple[Network, ...] = ()
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    password_threads: int = 2
    password_queue: int = 16

    @property
    def cookie_name(self) -> str:
        # __Host- cookies must be Secure, Path=/ and host-only: browsers enforce it
        return "__Host-od_session" if self.secure_cookies else "od_session"


def read_ui_settings(config: Config) -> UiSettings:
    ui = config.section("agent_ui")
    idle = ui.int("session_idle_minutes", 480, min=1, max=7 * 24 * 60)
    max_hours = ui.int("session_max_hours", 168, min=1, max=24 * 90)
    extra = ui.str_list("allowed_origins", [])
    proxies = read_trusted_proxies(ui)
    throttle = ThrottlePolicy(
        free_attempts=ui.int("signin_free_attempts", 5, min=1, max=1000),
        delay=ui.float("signin_delay_seconds", 5.0, min=0.1, max=86400),
        max_delay=ui.float("signin_max_delay_seconds", 900.0, min=1, max=7 * 86400),
        forget=60 * ui.float("signin_forget_minutes", 60.0, min=1, max=30 * 24 * 60),
        address_free_attempts=ui.int("signin_address_attempts", 20, min=1, max=100_000),
    )
    if throttle.max_delay < throttle.delay:
        raise ui.error(
            "signin_max_delay_seconds",
            "is shorter than signin_delay_seconds",
            fix="make the longest wait at least the first one",
        )
    threads = ui.int("password_threads", 2, min=1, max=64)
    queue = ui.int("password_queue", 16, min=0, max=10_000)
    ui.reject_unknown(
        {
            "session_idle_minutes",
            "session_max_hours",
            "allowed_origins",
            "trusted_proxies",
            "signin_free_attempts",
            "signin_address_attempts",
            "signin_delay_seconds",
            "signin_max_delay_seconds",
            "signin_forget_minutes",
            "password_threads",
            "password_queue",
        }
    )

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
        trusted_proxies=proxies,
        throttle=throttle,
        password_threads=threads,
        password_queue=queue,
    )


def fill_canned(text: str, **values: str) -> str:
    """Substitute the known variables; anything else stays as written."""
    return re.sub(
        r"\{(" + "|".join(VARIABLES) + r")\}", lambda m: values.get(m.group(1), "") or "", text
    )
