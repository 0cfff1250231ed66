"""SMS opt-out: the keywords carriers and Twilio honour, and where the choice is kept.

A customer who texts STOP (or a synonym) gets nothing more from us until START; the
sender checks `OptOutStore.is_opted_out` before every send. The in-memory store is a real
backend for one process; the composition root backs the protocol with SQL.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Protocol


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


# Twilio's default Advanced Opt-Out keywords (case-insensitive, whole message).
KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"], Keyword.STOP),
    **dict.fromkeys(["START", "YES", "UNSTOP"], Keyword.START),
    **dict.fromkeys(["HELP", "INFO"], Keyword.HELP),
}


def keyword_of(body: str, opt_out_type: str | None = None) -> Keyword | None:
    """The keyword a whole message is, if any.

    Twilio sets `OptOutType` (STOP/START/HELP) when its Advanced Opt-Out matched; it wins.
    Otherwise the body, trimmed of whitespace and trailing punctuation, must be exactly
    one keyword: "stop" and " Stop! " are, "please stop texting me" is not.
    """
    if opt_out_type:
        try:
            return Keyword(opt_out_type.strip().lower())
        except ValueError:
            pass
    word = body.strip().rstrip(".!").strip().upper()
    return KEYWORDS.get(word)


class OptOutStore(Protocol):
    async def is_opted_out(self, phone: str) -> bool: ...

    async def set(self, phone: str, opted_out: bool) -> None: ...


class MemoryOptOutStore:
    """Opt-outs kept in this process (E.164 numbers)."""

    def __init__(self) -> None:
        self._opted_out: set[str] = set()
        self._lock = asyncio.Lock()

    async def is_opted_out(self, phone: str) -> bool:
        return phone in self._opted_out

    async def set(self, phone: str, opted_out: bool) -> None:
        async with self._lock:
            if opted_out:
                self._opted_out.add(phone)
            else:
                self._opted_out.discard(phone)
