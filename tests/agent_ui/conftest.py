"""Fixtures for the agent workspace: the service wired as `omnidesk serve` wires it (with
the router), two inboxes, an agent on each, a supervisor and an admin, and helpers to
sign in and act as each of them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import SECRET

PASSWORD = "correct horse battery"

# (key, name, email, role, skills, teams)
PEOPLE = [
    ("agent_a", "Ann Agent", "ann@a.test", "agent", {"billing": 8, "english": 9}, ["inbox-a"]),
    ("agent_b", "Bob Agent", "bob@b.test", "agent", {"technical": 8, "german": 9}, ["inbox-b"]),
    ("supervisor", "Sue Supervisor", "sue@sup.test", "supervisor", {"billing": 5}, ["inbox-a"]),
    ("admin", "Ada Admin", "ada@admin.test", "admin", {}, []),
]

EXTRA = """
[canned_responses]
greeting = "Hello {contact_name}, this is {agent_name}."
thanks = "Thank you for contacting {brand}!"
[routing]
offline_grace_seconds = 3600
accept_timeout_seconds = 0
[routing.sla_seconds]
urgent = 300
high = 900
normal = 3600
"""


@dataclass
class Person:
    key: str
    id: int
    name: str
    email: str
    role: str
    cookie: str = ""
    csrf: str = ""


@dataclass
class Desk:
    client: Any
    services: Any
    people: dict[str, Person] = field(default_factory=dict)
    cookie_name: str = "od_session"

    @property
    def store(self) -> Any:
        return self.services.store

    def headers(self, who: str | None, *, csrf: bool = True, json: bool = True) -> dict[str, str]:
        h: dict[str, str] = {}
        if json:
            h["Content-Type"] = "application/json"
        if who is not None:
            p = self.people[who]
            h["Cookie"] = f"{self.cookie_name}={p.cookie}"
            if csrf:
                h["X-CSRF-Token"] = p.csrf
        return h

    async def settle(self) -> None:
        """Wait until the pipeline, the router and the bus have nothing left to do."""
        services = self.services
        for _ in range(3):
            await services.bus.drain()
            await services.pipeline.idle()
            await services.bus.drain()
            router = getattr(services, "router", None)
            if router is not None:
                await router.idle()
            await services.bus.drain()

    async def login(self, who: str, password: str = PASSWORD) -> Person:
        p = self.people[who]
        p.cookie, p.csrf = await sign_in(self.client, p.email, password, self.cookie_name)
        return p

    async def conversation(
        self,
        inbox: str,
        *,
        text: str = "Hello",
        sender: str | None = None,
        name: str = "Carla Customer",
        subject: str = "Help please",
        channel: str = "email",
        skills: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """A customer message through the real ingest path, into `inbox`."""
        from inbox.types import Channel, InboundMessage

        n = len(getattr(self, "_seen", ())) + 1
        self._seen = [*getattr(self, "_seen", []), n]
        msg = InboundMessage(
            channel=Channel(channel),
            external_id=f"ext-{inbox}-{n}-{datetime.now(UTC).timestamp()}",
            sender=sender or f"customer{n}@example.com",
            text=text,
            received_at=datetime.now(UTC),
            display_name=name,
            subject=subject,
            inbox=inbox,
            skills=skills,
        )
        result = await self.services.ingest(msg)
        await self.settle()
        return {
            "conversation_id": result.conversation_id,
            "contact_id": result.contact_id,
            "message_id": result.message_id,
        }


async def three_tokens(desk: Desk) -> dict[str, str]:
    """API tokens: "all" (every inbox), "a-only" (inbox-a) and "reader" (read-only)."""
    from inbox.store.tokens import create as create_token

    tokens = {}
    for name, inboxes, read_only in [
        ("all", None, False),
        ("a-only", ["inbox-a"], False),
        ("reader", None, True),
    ]:
        tokens[name] = await desk.store.write(
            lambda c, n=name, i=inboxes, r=read_only: create_token(c, n, inboxes=i, read_only=r)
        )
    return tokens


async def sign_in(
    client: Any, email: str, password: str, cookie_name: str = "od_session"
) -> tuple[str, str]:
    """Sign in through the form; returns (session cookie, CSRF token)."""
    client.session.cookie_jar.clear()
    page = await client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', await page.text()).group(1)
    resp = await client.post(
        "/login",
        data={"email": email, "password": password, "login_csrf": token},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    cookie = resp.cookies[cookie_name].value
    client.session.cookie_jar.clear()
    queue = await client.get("/queue", headers={"Cookie": f"{cookie_name}={cookie}"})
    assert queue.status == 200
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', await queue.text()).group(1)
    client.session.cookie_jar.clear()
    return cookie, csrf


async def add_people(services: Any) -> dict[str, Person]:
    from agent_ui.passwords import hash_password
    from inbox.store.agents import add as add_agent
    from inbox.types import Role

    hashed = hash_password(PASSWORD)
    people = {}
    for key, name, email, role, skills, teams in PEOPLE:
        agent = await services.store.write(
            lambda conn, n=name, e=email, r=role, s=skills, t=teams: add_agent(
                conn,
                name=n,
                email=e,
                role=Role(r),
                skills=s,
                capacity={"chat": 3, "email": 10, "sms": 5, "form": 10, "api": 10},
                teams=t,
                password_hash=hashed,
            )
        )
        people[key] = Person(key, agent.id, name, email, role)
    return people


def write_desk_config(tmp_path, extra: str = "", port: int = 0, public_url: str = "") -> str:
    """Like tests.conftest.write_config, with two inboxes (top-level keys come first)."""
    path = tmp_path / "config.toml"
    server = f"port = {port}\n" + (f'public_url = "{public_url}"\n' if public_url else "")
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\nsecret_key = "{SECRET}"\n'
        'inboxes = ["inbox-a", "inbox-b"]\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "omnidesk.db"}"\n[server]\n{server}{extra}\n'
    )
    return str(path)


async def build_desk(
    tmp_path,
    extra: str = "",
    *,
    router: bool = True,
    port: int = 0,
    public_url: str = "",
    accept_timeout: float = 0,
):
    from inbox import config as config_mod
    from inbox.store.migrate import upgrade
    from omnidesk.wiring import build_router, build_services

    config = config_mod.load(
        write_desk_config(
            tmp_path,
            EXTRA.replace(
                "accept_timeout_seconds = 0", f"accept_timeout_seconds = {accept_timeout}"
            )
            + extra,
            port,
            public_url,
        ),
        environ={},
    )
    upgrade(config.database_url)
    services = await build_services(config)
    services.pipeline.attach()
    if router:
        rs = build_router(config, services)
        await rs.start()
        services.closers.append(rs.close)
        services.router = rs
    return config, services


@pytest.fixture
async def desk(tmp_path, aiohttp_client):
    from omnidesk.app import make_web_app

    _config, services = await build_desk(tmp_path)
    try:
        client = await aiohttp_client(make_web_app(services))
        d = Desk(client, services)
        d.people = await add_people(services)
        yield d
    finally:
        await services.close()


class Recorder:
    """An email sender that records what it would send: a channel adapter like any other."""

    channel = "email"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, item: Any) -> str:
        self.sent.append(item)
        return f"recorded-{item.message_id}"


@pytest.fixture
async def live(tmp_path):
    """The service on a real port, the router and delivery worker running, and Chromium."""
    async for d in live_desk(tmp_path):
        yield d


@pytest.fixture
async def live_offers(tmp_path):
    """`live` with offers that are taken back after 4 s unless accepted (issue 17)."""
    async for d in live_desk(tmp_path, accept_timeout=4):
        yield d


async def live_desk(tmp_path, accept_timeout: float = 0):
    from tests.agent_ui.browser import ARGS, CHROMIUM, free_port, require_chromium

    require_chromium()
    from aiohttp import web
    from playwright.async_api import async_playwright

    from omnidesk.app import make_web_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    _config, services = await build_desk(
        tmp_path, port=port, public_url=base, accept_timeout=accept_timeout
    )
    app = make_web_app(services)
    beacons: list[str] = []

    async def beacon(request):
        beacons.append(str(request.rel_url))
        return web.Response(text="")

    app.router.add_route("*", "/xss-beacon", beacon)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    recorder = Recorder()
    services.outbox.senders["email"] = recorder
    services.outbox.start()
    pw = await async_playwright().start()
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    d = Desk(None, services)
    d.people = await add_people(services)
    d.base, d.browser, d.beacons, d.recorder = base, browser, beacons, recorder
    try:
        yield d
    finally:
        await browser.close()
        await pw.stop()
        await services.outbox.stop()
        await runner.cleanup()
        await services.close()
