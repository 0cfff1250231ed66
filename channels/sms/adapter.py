"""The SMS channel as the composition root sees it ([sms] turns it on): the inbound and
status webhooks, the Twilio sender, opt-outs kept in the store."""

from __future__ import annotations

from channels.protocol import ChannelAdapter, ChannelServices, OpenChannel
from channels.sms.sender import TwilioSender
from channels.sms.settings import SmsSettings, read_sms_settings
from channels.sms.webhook import SmsWebhook
from channels.status import DeliveryReports
from inbox.config import Config
from inbox.optouts import SqlOptOuts


class SmsAdapter(ChannelAdapter[SmsSettings]):
    section = "sms"

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
