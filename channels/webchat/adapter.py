"""Web chat as the composition root sees it ([webchat] turns it on): the `/widget`
namespace, the widget's HTTP routes (script, uploads, files), the chat sender and, in
processes that serve the web, the demo host page."""

from __future__ import annotations

from channels.protocol import ChannelAdapter, ChannelServices, OpenChannel
from channels.webchat.http import DemoSite, WidgetHttp
from channels.webchat.links import FileLinks
from channels.webchat.namespace import WidgetNamespace
from channels.webchat.sender import WebchatSender
from channels.webchat.settings import WebchatSettings, read_webchat_settings
from inbox.config import Config
from inbox.web.ratelimit import rate_limiter


class WebchatAdapter(ChannelAdapter[WebchatSettings]):
    section = "webchat"
    sends = frozenset({"chat"})

    def read_settings(self, config: Config) -> WebchatSettings:
        return read_webchat_settings(config.section("webchat"), inboxes=config.inboxes)

    def build(self, settings: WebchatSettings, services: ChannelServices) -> OpenChannel:
        config = services.config
        secret, public_url = config.secret_key, config.server.public_url
        limits = rate_limiter(config.redis_url)  # one count across web processes
        links = FileLinks(secret, public_url)  # the socket and HTTP halves sign alike
        namespace = WidgetNamespace(
            settings,
            secret=secret,
            ingest=services.ingest,
            store=services.store,
            bus=services.bus,
            sio=services.sio,
            presence=services.presence,  # visitors in conversation rooms, every web process
            limiter=limits,
            links=links,
        )
        if services.runs("web"):  # only processes serving sockets emit bus events to them
            namespace.fanout.attach(services.bus)
        chat_http = WidgetHttp(
            settings, secret=secret, files=services.files, links=links, limiter=limits
        )
        opened = OpenChannel(
            sender=WebchatSender(services.sio, services.presence),
            routes=chat_http.routes(),
            namespaces=[namespace],
            closers=[limits.close],
        )
        if settings.demo_port is not None and settings.demo_widget is not None:
            if services.runs("web"):
                demo = DemoSite(
                    config.server.host, settings.demo_port, public_url, settings.demo_widget
                )
                opened.listeners.append(demo)
        return opened
