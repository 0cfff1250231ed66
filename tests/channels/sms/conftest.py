"""Fixtures for the SMS adapter tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sms_support import FakeTwilio, RecordingIngest


@pytest.fixture
def ingest() -> RecordingIngest:
    return RecordingIngest()


@pytest.fixture
async def fake_twilio(aiohttp_server: Callable[..., Awaitable[Any]]) -> FakeTwilio:
    fake = FakeTwilio()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake
