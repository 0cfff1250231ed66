"""Fuzzing /api/v1 from its own OpenAPI document with schemathesis: every operation, a
bounded number of generated requests each (valid and invalid ones), against the real app
on a local port with the router running and an API token. Every answer must be no 5xx,
a status the document lists for that operation, and a body matching the listed schema."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent_ui.openapi import document
from tests.conftest import write_config

schema = schemathesis.openapi.from_dict(document())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class ServedApp:
    """The app wired as `omnidesk serve` wires it (router included), served on
    127.0.0.1 from its own event loop in a thread: schemathesis calls it synchronously."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""
        self.auth: dict[str, str] = {}
        self._services: Any = None
        self._runner: Any = None

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        from inbox import config as config_mod
        from inbox.store.migrate import upgrade

        self.config = config_mod.load(self.config_path, environ={})
        upgrade(self.config.database_url)
        self.thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        from aiohttp import web

        from inbox.store.agents import add as add_agent
        from inbox.store.tokens import create as create_token
        from inbox.types import Channel, InboundMessage, Role
        from omnidesk.app import make_web_app
        from omnidesk.wiring import build_router, build_services

        services = self._services = await build_services(self.config)
        services.pipeline.attach()
        router = build_router(self.config, services)
        await router.start()
        services.closers.append(router.close)
        for n in range(2):  # agents and conversations for the ids the fuzzer tries
            await services.store.write(
                lambda conn, n=n: add_agent(
                    conn,
                    name=f"Agent {n}",
                    email=f"agent{n}@example.com",
                    role=Role.AGENT,
                    skills={"billing": 5},
                    capacity={"api": 50, "email": 50},
                    teams=["default"],
                    password_hash="x",
                )
            )
        for n in range(3):
            await services.ingest(
                InboundMessage(
                    channel=Channel.API,
                    external_id=f"seed-{n}",
                    sender=f"c{n}@example.com",
                    text="hello",
                    received_at=datetime.now(UTC),
                )
            )
        token = await services.store.write(lambda conn: create_token(conn, "fuzz"))
        self.auth = {"Authorization": f"Bearer {token}"}
        self._runner = web.AppRunner(make_web_app(services), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._services is not None:
            await self._services.close()

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app = ServedApp(write_config(tmp_path_factory.mktemp("fuzz")))
    app.start()
    try:
        yield app
    finally:
        app.stop()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_answers_as_documented(case, served):
    case.call_and_validate(base_url=served.url, headers=served.auth, checks=CHECKS, timeout=10)
