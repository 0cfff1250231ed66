"""Web forms as the composition root sees them ([forms] turns them on): the form
endpoint, its rate limit (one count across web processes when scaled out) and the
confirmation mail."""

from __future__ import annotations

from channels.protocol import ChannelAdapter, ChannelServices, OpenChannel
from channels.webform.confirm import Confirmation
from channels.webform.endpoint import FormEndpoint
from channels.webform.settings import FormsSettings, read_forms_settings
from inbox.config import Config
from inbox.web.ratelimit import rate_limiter


class FormsAdapter(ChannelAdapter[FormsSettings]):
    section = "forms"

    def read_settings(self, config: Config) -> FormsSettings:
        return read_forms_settings(
            config.section("forms"), priorities=config.priorities, inboxes=config.inboxes
        )

    def build(self, settings: FormsSettings, services: ChannelServices) -> OpenChannel:
        config = services.config
        limits = rate_limiter(config.redis_url)  # one count across web processes
        endpoint = FormEndpoint(
            ingest=services.ingest,
            settings=settings,
            public_url=config.server.public_url,
            attachment_store=services.files,
            confirm=Confirmation(services.store, services.poke),
            default_country=config.ingest.default_country,
            limiter=limits,
        )
        return OpenChannel(routes=endpoint.routes(), closers=[limits.close])
