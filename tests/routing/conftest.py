"""A desk for router-service tests: a real store (both backends), the in-process bus, real
ingest and triage pipeline, and the router service over them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from inbox.bus.backends import MemoryBus
from inbox.events import Event, EventName
from inbox.ingest import Ingestor
from inbox.pipeline import Pipeline
from inbox.store import schema as t
from inbox.store.agents import add as add_agent
from inbox.store.outbox import enqueue
from inbox.types import AuthorKind, Channel, InboundMessage, Role
from routing.service import RouterService
from routing.settings import RoutingSettings


class Desk:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.bus = MemoryBus()
        self.ingest = Ingestor(store, self.bus)
        self.pipeline = Pipeline(store, self.bus, None)
        self.pipeline.attach()
        self.service: RouterService | None = None
        self.events: list[Event] = []
        self._n = 0

        async def record(event: Event) -> None:
            self.events.append(event)

        self.bus.subscribe("*", record)

    async def start(self, **settings: Any) -> RouterService:
        defaults: dict[str, Any] = {"accept_timeout_seconds": 0}
        defaults.update(settings)
        self.service = RouterService(self.store, self.bus, RoutingSettings(**defaults))
        await self.service.start()
        await self.settle()
        return self.service

    async def restart(self, **settings: Any) -> RouterService:
        """A new router service process over the same database (and a new bus)."""
        assert self.service is not None
        await self.service.close()
        await self.bus.close()
        self.bus = MemoryBus()
        self.ingest = Ingestor(self.store, self.bus)
        self.pipeline = Pipeline(self.store, self.bus, None)
        self.pipeline.attach()
        return await self.start(**settings)

    async def agent(
        self,
        name: str,
        skills: dict[str, int] | None = None,
        capacity: dict[str, int] | None = None,
        presence: str = "online",
        teams: tuple[str, ...] = ("default",),
    ) -> int:
        agent = await self.store.write(
            lambda conn: add_agent(
                conn,
                name=name,
                email=f"{name}@agents.example.com",
                role=Role.AGENT,
                skills=skills or {},
                capacity=capacity or {"chat": 3, "email": 10},
                teams=list(teams),
            )
        )
        if presence != "offline":
            await self.presence(agent.id, presence)
        return agent.id

    async def presence(self, agent_id: int, presence: str) -> None:
        """As the presence API does: store it, then announce it."""
        await self.store.write(
            lambda conn: conn.execute(
                sa.update(t.agents).where(t.agents.c.id == agent_id).values(presence=presence)
            )
        )
        await self.bus.publish(
            Event(EventName.AGENT_PRESENCE, {"agent_id": agent_id, "presence": presence})
        )
        await self.settle()

    async def message(
        self,
        *,
        channel: Channel = Channel.CHAT,
        skills: tuple[str, ...] = (),
        priority: str | None = None,
        inbox: str = "default",
        settle: bool = True,
    ) -> int:
        self._n += 1
        n = self._n
        sender = f"visitor-{n}" if channel is Channel.CHAT else f"customer{n}@example.com"
        result = await self.ingest(
            InboundMessage(
                channel=channel,
                external_id=f"m{n}",
                sender=sender,
                text=f"help {n}",
                received_at=datetime.now(UTC),
                skills=skills,
                priority=priority,
                inbox=inbox,
            )
        )
        if settle:
            await self.settle()
        return result.conversation_id

    async def reply(self, conversation_id: int, agent_id: int) -> None:
        """An agent answers (what the agent UI will do): stored, then message.sent."""
        mid = await self.store.write(
            lambda conn: enqueue(
                conn,
                conversation_id=conversation_id,
                text="on it",
                author_kind=AuthorKind.AGENT,
                author_id=agent_id,
            )
        )
        await self.bus.publish(
            Event(EventName.MESSAGE_SENT, {"conversation_id": conversation_id, "message_id": mid})
        )
        await self.settle()

    async def settle(self) -> None:
        for _ in range(4):
            await self.ingest.idle()
            await self.bus.drain()
            await self.pipeline.idle()
            await self.bus.drain()
            if self.service is not None:
                await self.service.idle()
            await self.bus.drain()

    async def wait_for(self, check: Any, within: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            await self.settle()
            if await check():
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.05)

    # -- the database, the source of truth ------------------------------------------------
    async def assigned(self) -> dict[int, int]:
        c = t.conversations.c
        rows = await self.store.read(
            lambda conn: conn.execute(
                sa.select(c.id, c.assignee_id).where(
                    c.assignee_id.is_not(None), c.status.in_(("open", "pending"))
                )
            ).all()
        )
        return {int(r[0]): int(r[1]) for r in rows}

    async def waiting(self) -> set[int]:
        c = t.conversations.c
        rows = await self.store.read(
            lambda conn: conn.execute(
                sa.select(c.id).where(
                    c.status == "open", c.assignee_id.is_(None), c.waiting_since.is_not(None)
                )
            ).all()
        )
        return {int(r[0]) for r in rows}

    async def open_rows(self) -> list[tuple[int, int]]:
        a = t.assignments.c
        rows = await self.store.read(
            lambda conn: conn.execute(
                sa.select(a.conversation_id, a.agent_id).where(a.ended_at.is_(None)).order_by(a.id)
            ).all()
        )
        return [(int(r[0]), int(r[1])) for r in rows]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [dict(e.data) for e in self.events if e.name == name]

    async def close(self) -> None:
        if self.service is not None:
            await self.service.close()
        await self.ingest.close()
        await self.pipeline.close()
        await self.bus.close()


@pytest.fixture
async def desk(store):
    d = Desk(store)
    try:
        yield d
    finally:
        await d.close()


@pytest.fixture
async def api(service):
    """The web app wired as `omnidesk serve` wires it, with a router service beside it."""
    services = service.services
    router = RouterService(services.store, services.bus, RoutingSettings(accept_timeout_seconds=0))
    await router.start()
    service.router = router

    async def settle() -> None:
        for _ in range(3):
            await services.ingest.idle()
            await services.bus.drain()
            await services.pipeline.idle()
            await services.bus.drain()
            await router.idle()
            await services.bus.drain()

    async def agent(name: str, skills=None, chat: int = 2, presence: str = "online") -> int:
        made = await services.store.write(
            lambda conn: add_agent(
                conn,
                name=name,
                email=f"{name}@example.com",
                role=Role.AGENT,
                skills=skills or {},
                capacity={"chat": chat, "api": chat},
                teams=["default"],
            )
        )
        resp = await service.put(
            f"/api/v1/agents/{made.id}/presence", json={"presence": presence}, headers=service.auth
        )
        assert resp.status == 200, await resp.text()
        await settle()
        return made.id

    async def message(n: int, skills=(), priority=None) -> int:
        body = {"sender": f"user{n}@example.com", "text": f"help {n}", "skills": list(skills)}
        if priority:
            body["priority"] = priority
        resp = await service.post("/api/v1/messages", json=body, headers=service.auth)
        assert resp.status == 201, await resp.text()
        await settle()
        return (await resp.json())["conversation_id"]

    async def conv(cid: int) -> dict:
        resp = await service.get(f"/api/v1/conversations/{cid}", headers=service.auth)
        return await resp.json()

    async def call(method: str, path: str, body=None, status: int = 200) -> dict:
        resp = await service.request(method, path, json=body, headers=service.auth)
        data = await resp.json()
        assert resp.status == status, (path, body, data)
        await settle()
        return data

    service.settle, service.agent, service.message = settle, agent, message
    service.conv, service.call = conv, call
    try:
        yield service
    finally:
        await router.close()
