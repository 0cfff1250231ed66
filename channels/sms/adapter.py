"""The SMS channel as the composition root sees it ([sms] turns it on): the inbound and
status webhooks, the Twilio sender, opt-outs kept in the store."""

from __future__ import annotations

from collections.abc import Sequence

from channels.protocol import ChannelAdapter, ChannelServices, OpenChannel, ReplyTarget
from channels.sms.sender import MAX_BODY_CHARS, TwilioSender
from channels.sms.settings import SmsSettings, read_sms_settings
from channels.sms.webhook import SmsWebhook
from channels.status import DeliveryReports
from inbox.config import Config
from inbox.optouts import SqlOptOuts
from inbox.types import Attachment


class SmsAdapter(ChannelAdapter[SmsSettings]):
    section = "sms"
    sends = frozenset({"sms"})

    def check_reply(
        self,
        conversation: ReplyTarget,
        text: str,
        attachments: Sequence[Attachment] = (),
        *,
        subject: str | None = None,
    ) -> str | None:
        """What the sender would refuse: a body over Twilio's limit, a number that said STOP."""
        if len(text) > MAX_BODY_CHARS:
            return f"an SMS can hold {MAX_BODY_CHARS} characters; this one has {len(text)}"
        if conversation.opted_out:
            return f"{conversation.to} opted out of SMS (texted STOP): it cannot be texted"
        if not conversation.to:
            return "the contact has no phone number to text"
        return None

    def read_settings(self, config: Config) -> SmsSettings:
        return read_sms_settings(
            config.section("sms"),
            public_url=config.server.public_url,
            default_country=config.ingest.default_country,
        )

    def build(self, settings: SmsSettings, services: ChannelServices) -> OpenChannel:
        optouts = SqlOptOuts(services.store)
        hook = SmsWebhook(
            ingest=services.ingest,
            settings=settings,
            optouts=optouts,
            media_store=services.files,
            # Twilio's status callbacks move the delivery status of what we sent
            on_status=DeliveryReports(services.store, services.bus),
        )
        sender = TwilioSender(settings, optouts)
        return OpenChannel(sender=sender, routes=hook.routes(), closers=[hook.close, sender.stop])
