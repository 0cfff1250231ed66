"""Helpers for the socket fan-out tests: web processes on one PostgreSQL and one Redis,
agents signed in by a session row, and recording socket.io clients for /agent."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import socketio

TABLES = (
    "outbox, assignments, messages, conversations, identities, contacts, agent_sessions, "
    "login_failures, agents, api_tokens, cursors"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def empty_database(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


async def add_agent(store: Any, name: str, *, role: str = "agent", **capacity: int) -> int:
    """An agent on inbox "default" with skill "general"; returns its id."""
    from inbox.store.agents import add
    from inbox.types import Role

    agent = await store.write(
        lambda c: add(
            c,
            name=name,
            email=f"{name.lower()}@desk.test",
            role=Role(role),
            skills={"general": 5},
            capacity=capacity or {"api": 5, "chat": 5},
            teams=["default"],
        )
    )
    return int(agent.id)


async def session_cookie(store: Any, agent_id: int) -> str:
    from inbox.store.sessions import create_session

    return str(
        await store.write(
            lambda c: create_session(
                c, agent_id, lifetime=timedelta(hours=1), ip=None, user_agent=None
            )
        )
    )


class AgentSocket:
    """A socket.io client on /agent that records what the server pushes."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        for name in ("event", "assigned", "presence", "viewers"):
            self.sio.on(name, self._recorder(name), namespace="/agent")

    def _recorder(self, name: str) -> Callable[[Any], Any]:
        async def record(data: Any) -> None:
            self.events.append((name, data))

        return record

    async def connect(self, url: str, cookie: str) -> AgentSocket:
        await self.sio.connect(
            url,
            headers={"Origin": url, "Cookie": f"od_session={cookie}"},
            namespaces=["/agent"],
            transports=["websocket"],
            wait_timeout=10,
        )
        return self

    def got(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    async def call(self, event: str, data: Any) -> Any:
        return await self.sio.call(event, data, namespace="/agent", timeout=10)


async def until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting{': ' + what if what else ''}")
        await asyncio.sleep(0.02)
