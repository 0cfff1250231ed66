"""The SMTP protocol object of our listener: aiosmtpd's `SMTP` with limits on who may
connect and for how long (`Gate`, the timeouts of `ListenerSMTP`), DATA lines of any
length, and two fast paths, for the addresses of MAIL FROM and RCPT TO and for reading
DATA.

aiosmtpd reads `<local@domain>` with the RFC 5322 header parser of the standard library
(`get_angle_addr`), twice per message: on a busy listener, a large part of the protocol's
own cost (bench/README.md). The plain shape (dot-atoms of ASCII atext, no
comments, no quoting, no source route, no domain literal) is read here with one regex and
gives exactly what the stdlib parser gives; anything else still goes to aiosmtpd's own
`_getaddr` (a differential test keeps the two in agreement).

aiosmtpd's DATA loop handles each line with a debug log call and two bytearray joins,
then un-stuffs dots line by line; `smtp_DATA` here is the same command with a tighter
loop (same replies, same bytes to the handler as aiosmtpd without its line length limit:
a differential test sends both the same streams).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, syntax

log = logging.getLogger("mail.log")  # aiosmtpd's logger

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
# leading blanks, then the angle address; what follows is handled in _getaddr
_PLAIN_PATH = re.compile(rf"[ \t]*<({_DOT_ATOM}@{_DOT_ATOM})>")


class Gate:
    """Who may open a connection now, as Postfix's anvil and postscreen decide it: the
    listener's limit, a cap per client address, and the last `reserved` slots kept for
    addresses that hold no connection yet (so one busy or hostile address, or a few,
    never take every slot from the senders that come next)."""

    def __init__(self, limit: int, per_ip: int | None = None, reserved: int = 0) -> None:
        self.limit = limit
        self.per_ip = per_ip or limit
        self.reserved = reserved
        self.active: set[ListenerSMTP] = set()
        self.held: dict[str, int] = {}  # client address -> connections it holds now

    def refusal(self, address: str) -> str | None:
        """Why a new connection from `address` is refused now, or None to let it in."""
        free = self.limit - len(self.active)
        if free <= 0:
            return "Too many connections, try again later"
        held = self.held.get(address, 0)
        if held >= self.per_ip or (held and free <= self.reserved):
            return "Too many connections from your address, try again later"
        return None

    def enter(self, protocol: ListenerSMTP, address: str) -> None:
        self.active.add(protocol)
        self.held[address] = self.held.get(address, 0) + 1

    def leave(self, protocol: ListenerSMTP, address: str) -> None:
        if protocol in self.active:
            self.active.discard(protocol)
            left = self.held.pop(address, 1) - 1
            if left:
                self.held[address] = left

    @property
    def stressed(self) -> bool:
        """No more free slots than the reserve: commands get the short timeout."""
        return self.limit - len(self.active) <= self.reserved


def _address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class ListenerSMTP(SMTP):
    """aiosmtpd's SMTP with the `Gate`'s limits (421 when over one), time limits per
    command and per session, long lines accepted in DATA, and a fast path for plain
    reverse- and forward-paths.

    Time: a client has `timeout` seconds for each command (from the previous command;
    `stress_timeout` while the listener is down to its reserve, as Postfix's smtpd_timeout
    shrinks under stress) and `timeout` for the content after DATA; the whole session ends
    after `session_timeout`. Over a limit the client gets a 421 and is closed, but never
    while its message is being stored: that answer is given first, then the 421.
    """

    def __init__(
        self,
        handler: Any,
        *,
        gate: Gate,
        session_timeout: float | None = None,
        stress_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._gate = gate
        self._refused = False
        self._counted = False
        self._address = ""
        self._session_timeout = session_timeout or math.inf
        self._stress_timeout = stress_timeout or self._timeout_duration
        # from DATA to its reply: the one stretch a shutdown lets finish (250 = committed)
        self.in_data = False

    def shut(self) -> None:
        """Close for a shutdown, telling the client to come back (421: it retries)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(b"421 4.3.2 Service shutting down, try again later\r\n")
            transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._counted:  # (not again for the TLS transport after STARTTLS)
            address = _address(transport)
            refusal = self._gate.refusal(address)
            if refusal is not None:
                self._refused = True
                log.info("%s refused: %s", address, refusal)
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(f"421 4.7.0 {refusal}\r\n".encode())
                transport.close()
                return
            self._counted = True
            self._address = address
            self._gate.enter(self, address)
            self._session_end = self.loop.time() + self._session_timeout
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._gate.leave(self, self._address)
        super().connection_lost(error)

    # The timer. aiosmtpd cancels and re-arms a timer at every command (a new timer
    # handle, a heap push, and a cancelled handle left in the loop's heap); here a command
    # only moves the deadline, and the one timer re-arms itself when it fires early. It
    # is moved earlier only when a deadline comes sooner (stress, the end of the session).
    _deadline = 0.0
    _session_end = math.inf
    _timer_at = math.inf  # when the armed timer fires; inf: none armed
    _busy_since: float | None = None  # the DATA hook runs (storing a message) since then

    def _reset_timeout(self, duration: float | None = None) -> None:
        if not duration:
            duration = self._stress_timeout if self._gate.stressed else self._timeout_duration
        self._deadline = min(self.loop.time() + duration, self._session_end)
        if self._deadline < self._timer_at:
            self._arm(self._deadline)

    def _arm(self, when: float) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        self._timer_at = when
        self._timeout_handle = self.loop.call_at(when, self._idle_check)

    def _idle_check(self) -> None:
        # (the fired handle stays set: connection_lost cancels whatever handle is there)
        self._timer_at = math.inf
        now = self.loop.time()
        busy = self._busy_since
        if now < self._deadline:
            self._arm(self._deadline)
        elif busy is not None and now < busy + self._timeout_duration:
            # a message is being stored: its answer comes first (smtp_DATA re-arms the
            # timer after it); only a store stuck for a whole timeout is cut short
            self._arm(busy + self._timeout_duration)
        else:
            self._expire(now >= self._session_end)

    def _expire(self, session_over: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        if session_over:
            reason = f"421 4.7.0 {self.hostname} Session time limit reached, closing"
        else:
            reason = f"421 4.4.2 {self.hostname} Error: timeout exceeded"
        log.info("%r %s", self.session and self.session.peer, reason[4:])
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(reason.encode() + b"\r\n")
        transport.close()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """(address, rest of the argument), as aiosmtpd's `_getaddr` returns them."""
        plain = _PLAIN_PATH.match(arg)
        if plain is None:
            return super()._getaddr(arg)
        rest = arg[plain.end() :]
        if rest[:1] in (" ", "\t"):
            # the stdlib skips folding white space after the address (with str.lstrip:
            # any white space)
            rest = rest.lstrip()
        if rest.startswith("("):  # and comments: left to it
            return super()._getaddr(arg)
        address = plain.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        try:
            await self._data(arg)
        finally:
            self.in_data = False

    async def _data(self, arg: str) -> None:
        """aiosmtpd's DATA (1.4), for a handler with handle_DATA and bytes content."""
        if self._decode_data or "DATA" not in self._handle_hooks:
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self._reset_timeout(self._timeout_duration)  # the content gets the full timeout
        content, too_much = await self._read_data()
        if too_much:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = content
        self.envelope.original_content = content
        self._busy_since = self.loop.time()
        try:
            status = await self._call_handler_hook("DATA")
        finally:
            self._busy_since = None
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)
        self._reset_timeout()  # the time for the next command starts now

    async def _read_data(self) -> tuple[bytes, bool]:
        """The message up to the lone dot, un-stuffed, and whether it was over the size
        limit (then the rest is still read, and discarded, before the reply).

        A line of any length is kept whole, as Postfix keeps it (RFC 5321's 1,000 octets
        is a limit senders should keep to, and bouncing a customer's mail for it helps
        no one); only the whole message has a limit. The content ends only at
        CRLF.CRLF: a lone dot after a bare LF or CR (`\\n.\\r\\n`, `\\r\\n.\\n`) is content,
        never the end, so nothing after it can be read as commands (SMTP smuggling)."""
        reader = self._reader
        limit = self.data_size_limit
        lines: list[bytes] = []
        num_bytes = 0
        too_much = False
        # a line longer than the reader's buffer limit comes in pieces (kept unless over
        # the size limit); its end comes as a "line" of its own, and is never the lone dot
        pieces: list[bytes] = []
        in_long_line = False
        while self.transport is not None:
            try:
                line: bytes = await reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as exc:
                # no CRLF starts in the first `consumed` bytes: they are part of a line
                piece = await reader.read(exc.consumed)
                in_long_line = True
                num_bytes += len(piece)
                if not too_much and limit and num_bytes > limit:
                    too_much = True
                    lines.clear()
                    pieces.clear()
                if not too_much:
                    pieces.append(piece)
                continue
            if in_long_line:
                in_long_line = False
                if pieces:  # (counted as they came: only the end is added below)
                    num_bytes -= sum(map(len, pieces))
                    pieces.append(line)
                    line = b"".join(pieces)
                    pieces.clear()
            elif line == b".\r\n":
                break
            num_bytes += len(line)
            if not too_much:
                if limit and num_bytes > limit:
                    too_much = True
                    lines.clear()
                else:
                    lines.append(line)
        # every kept line ends with the only CRLF in it: a dot after a CRLF starts a line
        content = b"".join(lines)
        if content.startswith(b"."):
            content = content[1:]
        return content.replace(b"\r\n.", b"\r\n"), too_much
