"""Helpers for the web chat tests: the `[webchat]` config and a recording visitor."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

ORIGIN = "http://shop.example"
IDENTITY_SECRET = "host-site-identity-secret-0123456789"


def webchat_toml(origin: str = ORIGIN, **limits: Any) -> str:
    values = {"rate_limit": 5, "rate_window_seconds": 60, "max_connections_per_ip": 6, **limits}
    lines = "\n".join(
        f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v!r}" for k, v in values.items()
    )
    return (
        f"[webchat]\n{lines}\n"
        f'[webchat.widgets.shop]\nallowed_origins = ["{origin}"]\n'
        f'identity_secret = "{IDENTITY_SECRET}"\ngreeting = "Hello from the shop"\n'
        'prechat_fields = ["name", "email"]\n'
    )


class Visitor:
    """A socket.io client on /widget that records what the server pushes."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1
        )
        self.events: list[tuple[str, Any]] = []
        self.connects = 0
        self.connected = asyncio.Event()
        for name in ("message", "typing", "read", "availability"):
            self.sio.on(name, self._recorder(name), namespace="/widget")
        self.sio.on("connect", self._on_connect, namespace="/widget")

    def _recorder(self, name: str) -> Callable[[Any], Awaitable[None]]:
        async def record(data: Any) -> None:
            self.events.append((name, data))

        return record

    async def _on_connect(self) -> None:
        self.connects += 1
        self.connected.set()

    def pushed(self, name: str = "message") -> list[Any]:
        return [data for event, data in self.events if event == name]

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        return await self.sio.call(event, data, namespace="/widget", timeout=timeout)

    async def hello(self, after: int = 0) -> dict[str, Any]:
        answer = await self.call("hello", {"after": after})
        assert answer["ok"], answer
        return answer

    async def say(self, client_id: str, text: str) -> dict[str, Any]:
        return await self.call("message", {"client_id": client_id, "text": text})


async def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)
