from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.processes import Relay, smtp_relay


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, int]]:
    """The outbound SMTP relay the processes under test deliver to: (relay, port)."""
    async with smtp_relay() as found:
        yield found
