"""Web chat: the `/widget` socket.io namespace, the chat `Sender`, the embeddable widget
(`GET /widget.js`) and its demo host page."""

from channels.webchat.http import DemoSite, WidgetHttp, bundle, demo_page
from channels.webchat.namespace import WidgetNamespace
from channels.webchat.sender import WebchatSender
from channels.webchat.settings import WebchatSettings, WidgetSettings, read_webchat_settings
from channels.webchat.signing import identity_hash
from channels.webchat.visitors import NAMESPACE

__all__ = [
    "NAMESPACE",
    "DemoSite",
    "WebchatSender",
    "WebchatSettings",
    "WidgetHttp",
    "WidgetNamespace",
    "WidgetSettings",
    "bundle",
    "demo_page",
    "identity_hash",
    "read_webchat_settings",
]
