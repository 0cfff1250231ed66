"""A real service with a `[webchat]` section, and socket.io visitors connecting to it."""

from __future__ import annotations

from typing import Any

import pytest
from webchat_support import ORIGIN, Visitor, webchat_toml

from tests.conftest import write_config


@pytest.fixture
async def connect_visitor():
    """`await connect_visitor(url, origin=..., **auth)`; all disconnected afterwards."""
    made: list[Visitor] = []

    async def connect(url: str, *, origin: str | None = ORIGIN, **auth: Any) -> Visitor:
        visitor = Visitor()
        made.append(visitor)
        await visitor.sio.connect(
            url,
            headers={"Origin": origin} if origin else {},
            auth={"widget": "shop", **auth},
            namespaces=["/widget"],
            transports=["websocket"],
            wait_timeout=10,
        )
        return visitor

    yield connect
    for visitor in made:
        await visitor.sio.disconnect()


@pytest.fixture
async def chat_service(tmp_path, aiohttp_client, request):
    """The app wired as `omnidesk serve` wires it, with [webchat]; `.url` for clients.

    Limits can be overridden with `@pytest.mark.webchat(rate_limit=..., ...)`."""
    from inbox import config as config_mod
    from inbox.store.migrate import upgrade
    from omnidesk.app import make_web_app
    from omnidesk.wiring import build_services

    marker = request.node.get_closest_marker("webchat")
    limits = marker.kwargs if marker else {}
    config = config_mod.load(write_config(tmp_path, webchat_toml(**limits)), environ={})
    upgrade(config.database_url)
    services = await build_services(config)
    services.pipeline.attach()
    services.outbox.poll_interval = 0.05
    services.outbox.start()
    client = await aiohttp_client(make_web_app(services))
    client.services = services
    client.url = str(client.make_url("/")).rstrip("/")
    client.db = str(tmp_path / "omnidesk.db")
    try:
        yield client
    finally:
        await services.outbox.stop()
        await services.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "webchat(**limits): [webchat] limits for chat_service")
