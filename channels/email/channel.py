"""The email adapter as the composition root sees it: one object to start, stop, send
through and ask for health, built from the settings and the pipeline's callables."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from channels.email.capture import CaptureSender
from channels.email.compose import Composer
from channels.email.files import StoreFn
from channels.email.imap import GetCursor, IMAPPoller
from channels.email.parse import ParseOptions
from channels.email.sender import make_sender
from channels.email.settings import EmailChannelSettings
from channels.email.smtp_server import QuarantineFn, SMTPListener
from inbox.ports import IngestFn, Outbound

log = logging.getLogger("omnidesk.email")


class EmailChannel:
    """SMTP listener + IMAP pollers (inbound) and the SMTP sender (outbound).

    `ingest` is `inbox.ingest` (returns after commit), `store` puts attachment bytes in the
    file store and returns the key, `get_cursor("imap:<mailbox>")` reads the position the
    store recorded with the last ingested message. Roles: `smtp=False` / `imap=False`
    leave that half to another process. Without `[email.relay]`, outbound mail is
    captured into `capture_dir` instead of sent.
    """

    channel = "email"

    def __init__(
        self,
        settings: EmailChannelSettings,
        secret: str,
        ingest: IngestFn,
        *,
        store: StoreFn | None,
        get_cursor: GetCursor,
        quarantine: QuarantineFn | None = None,
        smtp: bool = True,
        imap: bool = True,
        capture_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.composer = Composer(settings.email, secret)
        self.options = ParseOptions(
            limits=settings.email.limits,
            token_secret=secret,
            reply_local=settings.email.reply_local,
            reply_domain=settings.email.domain,
            instance=self.composer.instance,
        )
        self.sender = make_sender(settings.email, self.composer, capture_dir)
        self.listener: SMTPListener | None = None
        if smtp and settings.smtp.enabled:
            self.listener = SMTPListener(
                settings.smtp, ingest, store, self.options, quarantine=quarantine
            )
        self._ingest, self._get_cursor, self._store = ingest, get_cursor, store
        self.pollers = self._new_pollers() if imap else []

    def _new_pollers(self) -> list[IMAPPoller]:
        return [
            IMAPPoller(box, self._ingest, self._get_cursor, self._store, self.options)
            for box in self.settings.mailboxes
        ]

    async def start(self) -> None:
        if isinstance(self.sender, CaptureSender):
            log.info(
                "no [email.relay] configured: outbound mail is captured in %s, not sent"
                " (admins see it at /admin/mail)",
                self.sender.folder.path,
            )
        if self.listener is not None:
            await self.listener.start()
        for poller in self.pollers:
            await poller.start()

    async def stop_listening(self, grace: float = 3.0) -> None:
        """Stop taking mail by SMTP; transactions in DATA get `grace` seconds to end."""
        if self.listener is not None:
            await self.listener.stop(grace)

    async def stop(self) -> None:
        for poller in self.pollers:
            await poller.stop()
        await self.stop_listening()

    async def start_polling(self) -> None:
        """Poll every mailbox with fresh pollers (built with `imap=False`: the duty of the
        worker holding the worker-duties lease, `omnidesk.worker`). Each reads its position
        from the store, where the last holder moved it; `pollers` names the running ones,
        so `health` reports mailboxes where they run."""
        self.pollers = self._new_pollers()
        for poller in self.pollers:
            await poller.start()
        log.info("IMAP polling %d mailbox(es) in this worker", len(self.pollers))

    async def stop_polling(self) -> None:
        pollers, self.pollers = self.pollers, []
        for poller in pollers:
            await poller.stop()

    async def send(self, item: Outbound) -> str:
        return await self.sender.send(item)

    def health(self) -> dict[str, Any]:
        """For /readyz: healthy unless a mailbox is failing; each mailbox reported."""
        mailboxes = [poller.health() for poller in self.pollers]
        return {
            "healthy": all(box["healthy"] for box in mailboxes),
            "smtp": None
            if self.listener is None
            else {
                "port": self.listener.port,
                "connections": self.listener.connections,
            },
            "mailboxes": mailboxes,
        }
