"""Fixtures of the case-action tests: an in-process bus (a production backend)."""

import pytest

from inbox.bus.backends import open_bus


@pytest.fixture
async def bus():
    bus = open_bus(None)
    await bus.start()
    yield bus
    await bus.close()
