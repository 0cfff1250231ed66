"""Inbound SMTP listener (aiosmtpd on the application's asyncio loop).

Answers follow "acknowledge after commit": 250 only after `ingest` returned, 451 on any
failure so the sending MTA retries, 550 for an unknown recipient (at RCPT), 552 over
the size limit, 554 for a message we will never accept (hostile structure, no sender).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.files import StoreFn, store_attachments
from channels.email.parse import ParseOptions, parse_message
from channels.email.parse_process import LARGE_BYTES, ParseProcesses, ParserGone
from channels.email.settings import SMTPSettings
from channels.email.smtp_protocol import Gate, ListenerSMTP
from inbox.errors import AddressInUse, PayloadTooLarge, ValidationError
from inbox.ports import IngestFn

log = logging.getLogger(__name__)

QuarantineFn = Callable[[bytes, str], Awaitable[None]]
BIG_PARSES = 2  # large messages parsed on threads at once (without isolate_parser)


def _clean(text: str) -> str:
    return " ".join(text.replace("\x00", "").split())[:300]


@dataclasses.dataclass(eq=False, repr=False)
class InboundHandler:
    """aiosmtpd hooks: recipient check at RCPT, parse + store + ingest at DATA."""

    settings: SMTPSettings
    ingest: IngestFn
    store: StoreFn | None
    options: ParseOptions
    quarantine: QuarantineFn | None = None
    # the parser processes while the listener runs with isolate_parser, else None
    parser: ParseProcesses | None = dataclasses.field(default=None, init=False)
    _big_parses: asyncio.Semaphore = dataclasses.field(
        default_factory=lambda: asyncio.Semaphore(BIG_PARSES), init=False
    )

    def inbox_for(self, address: str) -> str | None:
        """`support+tag@d` -> the inbox of support@d, else of @d; None when not ours."""
        local, at, domain = address.strip().strip("<>").lower().rpartition("@")
        if not at:
            return None
        base = local.partition("+")[0]
        recipients = self.settings.recipients
        return recipients.get(f"{base}@{domain}") or recipients.get(f"@{domain}")

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return "452 4.5.3 Too many recipients"
        if self.inbox_for(address) is None:
            return f"550 5.1.1 <{_clean(address)}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):  # only with decode_data=True, which we never set
            raw = raw.encode("utf-8", "surrogateescape")
        assert isinstance(raw, bytes)
        inbox = next(
            (i for i in map(self.inbox_for, envelope.rcpt_tos) if i is not None), "default"
        )
        mail_from = envelope.mail_from or ""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        kwargs: dict[str, Any] = {
            "inbox": inbox,
            "mail_from": "" if mail_from == "<>" else mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "extra_metadata": {"smtp": {"peer": peer, "helo": _clean(session.host_name or "")}},
        }
        try:
            if self.parser is not None:
                parsed = await self.parser.parse(raw, self.options, kwargs)
            elif len(raw) > LARGE_BYTES:
                # big messages parse off the loop, a few at a time: parsing costs up to
                # ~10x the message size in memory
                async with self._big_parses:
                    parsed = await asyncio.to_thread(parse_message, raw, self.options, **kwargs)
            else:
                parsed = parse_message(raw, self.options, **kwargs)
        except PayloadTooLarge as exc:
            return f"552 5.3.4 {_clean(exc.message)}"
        except ValidationError as exc:
            return await self._refuse(raw, exc.message)
        except ParserGone as exc:
            log.warning("smtp: %s; answering 451 so the sender retries", exc.message)
            return "451 4.3.0 Temporary failure, please try again later"
        except MemoryError:
            return await self._refuse(raw, "the message needs more memory to parse than allowed")
        except Exception:
            log.exception("smtp: parser failed unexpectedly")
            return await self._refuse(raw, "message could not be parsed")
        try:
            message = await store_attachments(parsed, self.store)
            result = await self.ingest(message)
        except ValidationError as exc:
            return f"554 5.6.0 Message rejected: {_clean(exc.message)}"
        except Exception:
            log.exception("smtp: ingest failed; answering 451 so the sender retries")
            return "451 4.3.0 Temporary failure, please try again later"
        log.debug("smtp: stored %s as message %s", message.external_id, result.message_id)
        return "250 2.0.0 OK: queued"

    async def _refuse(self, raw: bytes, reason: str) -> str:
        if self.quarantine is not None:
            try:
                await self.quarantine(raw, reason)
            except Exception:
                log.exception("smtp: quarantine failed")
                return "451 4.3.0 Temporary failure, please try again later"
            return "250 2.0.0 OK: held for review"
        return f"554 5.6.0 Message rejected: {_clean(reason)}"


def tls_context_for(settings: SMTPSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return context


class SMTPListener:
    """The inbound SMTP role. `await start()`, `await stop()`; `port` is the bound port."""

    def __init__(
        self,
        settings: SMTPSettings,
        ingest: IngestFn,
        store: StoreFn | None,
        options: ParseOptions,
        *,
        quarantine: QuarantineFn | None = None,
    ) -> None:
        self.settings = settings
        if options.limits.max_bytes != settings.max_message_bytes:
            limits = dataclasses.replace(options.limits, max_bytes=settings.max_message_bytes)
            options = dataclasses.replace(options, limits=limits)
        self.handler = InboundHandler(settings, ingest, store, options, quarantine)
        self._gate = Gate(
            settings.max_connections,
            per_ip=settings.max_connections_per_ip,
            reserved=settings.reserved_slots,
        )
        self._tls = tls_context_for(settings)
        self._server: asyncio.Server | None = None

    def _protocol(self) -> ListenerSMTP:
        return ListenerSMTP(
            self.handler,
            gate=self._gate,
            data_size_limit=self.settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.settings.hostname,
            ident="omnidesk ESMTP",
            tls_context=self._tls,
            require_starttls=self.settings.require_starttls,
            timeout=self.settings.timeout,
            stress_timeout=self.settings.stress_timeout,
            session_timeout=self.settings.session_timeout,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.settings.isolate_parser:
            parser = ParseProcesses(
                timeout=self.settings.parse_timeout, memory_mb=self.settings.parse_memory_mb
            )
            await parser.start()
            self.handler.parser = parser
        try:
            self._server = await loop.create_server(
                self._protocol, host=self.settings.host, port=self.settings.port
            )
        except BaseException as exc:
            await self._close_parser()
            if isinstance(exc, OSError):
                AddressInUse.check(exc, "SMTP", self.settings.host, self.settings.port, "smtp.port")
            raise
        log.info("smtp: listening on %s:%s", self.settings.host, self.port)

    async def _close_parser(self) -> None:
        parser, self.handler.parser = self.handler.parser, None
        if parser is not None:
            await parser.close()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.settings.port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._gate.active)

    async def stop(self, grace: float = 3.0) -> None:
        """Stop accepting at once. A session between commands hears 421 (come back later)
        and is closed; one in DATA has `grace` seconds to get its answer (250 only after
        the commit), then is closed all the same: without a 250 its sender retries."""
        if self._server is None:
            return
        self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._gate.active:
            late = loop.time() >= deadline
            for protocol in list(self._gate.active):
                if late or not protocol.in_data:
                    protocol.shut()
            await asyncio.sleep(0.02)  # connection_lost takes each out of the gate
            if loop.time() >= deadline + 1.0:  # closed: its transport is gone either way
                break
        await self._server.wait_closed()
        self._server = None
        await self._close_parser()
