"""The inbound parser in child processes (`[smtp] isolate_parser`, on by default).

Parsing is the listener's heaviest step: ~250 µs for a plain message, seconds for a
25 MB one, and whatever a crafted message can make of the standard library's parser.
On the event loop it holds up every other connection for that long. In a child process:

* it runs on another core beside the loop (the loop keeps reading SMTP commands);
* a message that overstays `parse_timeout` is refused (the child is killed, and the next
  message gets a new one) while the listener keeps answering the others;
* the child's address space is capped at `parse_memory_mb`: a message whose parse would
  need more ends in a MemoryError for that message alone.

Two children: messages up to LARGE_BYTES go to one, bigger ones to the other, so a
25 MB message does not queue the day's small ones behind its seconds of parsing.
A child that dies outside these limits (killed by someone) answers the message in
flight with `ParserGone`, which the listener turns into 451: the sender retries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import sys
from collections.abc import Mapping
from typing import Any

from channels.email.limits import HostileMessage
from channels.email.parse import ParsedEmail, ParseOptions, parse_message
from inbox.errors import OmnideskError
from inbox.store.child_process import Answers, ChildProcess, serve

LARGE_BYTES = 256 * 1024  # a message over this parses apart from the small ones


class ParserGone(OmnideskError):
    """The parser process ended before it answered (not the message's fault)."""

    code = "parser_unavailable"


def _parse(raw: bytes, options: ParseOptions, envelope: Mapping[str, Any]) -> ParsedEmail:
    """(in the child)"""
    return parse_message(raw, options, **envelope)


class ParseProcesses:
    def __init__(self, *, timeout: float, memory_mb: int) -> None:
        self.timeout = timeout
        args = [str(memory_mb)]
        self.small = ChildProcess(__name__, args, what="email parser", error=ParserGone)
        self.large = ChildProcess(__name__, args, what="email parser", error=ParserGone)

    async def start(self) -> None:
        await self.small.start()  # (the large one starts with the first large message)

    async def parse(
        self, raw: bytes, options: ParseOptions, envelope: Mapping[str, Any]
    ) -> ParsedEmail:
        """`parse_message(raw, options, **envelope)` in a child; its errors as raised
        there (MemoryError over the memory cap); HostileMessage over the time limit."""
        child = self.small if len(raw) <= LARGE_BYTES else self.large
        try:
            return await child.call(_parse, raw, options, envelope, time_limit=self.timeout)
        except TimeoutError:
            raise HostileMessage(
                f"the message took over {self.timeout:g} s to parse", field="mime"
            ) from None

    async def close(self) -> None:
        await self.small.close()
        await self.large.close()


# -- the child --------------------------------------------------------------------------


def _same(exc: Exception) -> Exception:
    return exc


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s email parser %(message)s")
    memory = int(argv[2]) * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):  # (a lower hard limit stays)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    answers = Answers(int(argv[1]), _same, ParserGone)
    answers.send(True, os.getpid())
    serve(sys.stdin.buffer, answers, lambda fn, args: fn(*args))


if __name__ == "__main__":
    main(sys.argv)
