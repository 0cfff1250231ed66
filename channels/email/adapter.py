"""Email as the composition root sees it ([email] turns it on): the SMTP listener (roles
all and smtp), the IMAP pollers (roles all and worker; when scaled out, in one worker at
a time under the worker-duties lease), the SMTP sender, mailbox health for /readyz and
/metrics."""

from __future__ import annotations

from collections.abc import Sequence

from channels.email.capture import captured_mail_dir
from channels.email.channel import EmailChannel
from channels.email.compose import check_header
from channels.email.files import put_store
from channels.email.settings import EmailChannelSettings, read_settings
from channels.protocol import ChannelAdapter, ChannelServices, OpenChannel, ReplyTarget
from inbox import metrics
from inbox.config import Config
from inbox.errors import PermanentDeliveryError
from inbox.health import Check
from inbox.types import Attachment


class EmailAdapter(ChannelAdapter[EmailChannelSettings]):
    section = "email"
    sends = frozenset({"email"})  # web forms are answered by email too

    def check_reply(
        self,
        conversation: ReplyTarget,
        text: str,
        attachments: Sequence[Attachment] = (),
        *,
        subject: str | None = None,
    ) -> str | None:
        """What composing the mail would refuse: a subject with a line break (or NUL)."""
        if subject is not None:
            try:
                check_header("Subject", subject)
            except PermanentDeliveryError:
                return "the subject must be one line: remove its line break"
        if not conversation.to:
            return "the contact has no email address to write to"
        return None

    def read_settings(self, config: Config) -> EmailChannelSettings:
        return read_settings(
            config.section("email"), config.section("smtp"), config.section("imap")
        )

    def build(self, settings: EmailChannelSettings, services: ChannelServices) -> OpenChannel:
        imap = services.runs("worker")
        leased_imap = imap and services.scaled_out and bool(settings.mailboxes)
        email = EmailChannel(
            settings,
            services.config.secret_key,
            services.ingest,
            store=put_store(services.files),
            get_cursor=services.cursor,
            smtp=services.runs("smtp"),
            imap=imap and not leased_imap,
            capture_dir=captured_mail_dir(services.config.data_dir),  # without [email.relay]
        )

        async def scrape() -> None:
            metrics.set_mailboxes(email.health()["mailboxes"])

        opened = OpenChannel(
            sender=email.sender, checks={"email": mailboxes_check(email)}, scrapes=[scrape]
        )
        if services.runs("smtp", "worker"):
            opened.listeners.append(email)
        if leased_imap:
            opened.duties.append((email.start_polling, email.stop_polling))
        return opened


def mailboxes_check(email: EmailChannel) -> Check:
    """/readyz: ready unless a mailbox polled here is failing (each one named)."""

    async def check() -> tuple[bool, str]:
        health = email.health()
        broken = [m for m in health["mailboxes"] if not m["healthy"]]
        if not broken:
            return True, "ok"
        why = "; ".join(f"{m['name']}: {m['last_error'] or 'not synced yet'}" for m in broken)
        return False, f"unhealthy mailboxes: {why}"

    return check
