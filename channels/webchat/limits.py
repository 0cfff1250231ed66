"""Per-address connection counts, kept in this process (the message rate is counted by
`inbox.web.ratelimit.RateLimiter`)."""

from __future__ import annotations

from collections import Counter

__all__ = ["ConnectionCounter"]


class ConnectionCounter:
    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    def acquire(self, address: str, cap: int) -> bool:
        if self._open[address] >= cap:
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]

    def count(self, address: str) -> int:
        return self._open[address]
