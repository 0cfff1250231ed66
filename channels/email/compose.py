"""Outbound mail: an `inbox.ports.Outbound` -> `email.message.EmailMessage`.

multipart/alternative text + HTML rendered from jinja2 templates (the HTML one
autoescaped; agent HTML is sanitized with nh3 first), Reply-To carrying the signed
conversation address, a deterministic Message-ID that names no id (a retried send after
a crash carries the same id, so receivers can dedupe), In-Reply-To/References, `Auto-Submitted:
auto-replied` for automatic answers and `X-Omnidesk-Instance` so our own mail coming
back is recognized. Every header value is checked for CR, LF and NUL before it is set:
Python 3.11.7 predates the fixes for header injection through the email generator.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import re
from collections.abc import Iterable
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import jinja2
import markupsafe
from jinja2.sandbox import SandboxedEnvironment

from channels.email import tokens
from channels.email.settings import EmailSettings
from channels.email.text import sanitize_html
from inbox.errors import PermanentDeliveryError
from inbox.identity import normalize_email
from inbox.mail_loops import INSTANCE_HEADER, auto_reply_headers
from inbox.ports import Outbound

DEFAULT_TEMPLATES = {
    "reply.txt": "{{ text }}\n",
    "reply.html": (
        "<!doctype html>\n<html><body>\n"
        "{% if html %}{{ html }}{% else %}"
        '<div style="white-space: pre-wrap">{{ text }}</div>{% endif %}\n'
        "</body></html>\n"
    ),
}

_FORBIDDEN = re.compile(r"[\r\n\x00]")
_MSGID_BODY = re.compile(r"[^<>\s]{1,250}")
_MAX_REFERENCES = 20


def instance_id(secret: str | bytes) -> str:
    """A stable id for this installation that does not reveal the secret."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return "od-" + hmac.new(raw, b"omnidesk.instance", hashlib.sha256).hexdigest()[:16]


def check_header(name: str, value: str) -> str:
    """Reject header injection (CR, LF, NUL) with a permanent delivery error."""
    if _FORBIDDEN.search(value):
        raise PermanentDeliveryError(
            f"header {name} contains a line break or NUL: refusing to send", field=name
        )
    return value


def _msgid(value: str, name: str) -> str:
    check_header(name, value)
    bare = value.strip().strip("<>").strip()
    if not _MSGID_BODY.fullmatch(bare):
        raise PermanentDeliveryError(f"{name} is not a message id: {value[:80]!r}", field=name)
    return f"<{bare}>"


class Composer:
    """Builds outbound messages for one installation."""

    def __init__(self, settings: EmailSettings, secret: str | bytes) -> None:
        self.settings = settings
        self.secret = secret
        self.instance = settings.instance or instance_id(secret)
        raw = secret.encode() if isinstance(secret, str) else secret
        self._msgid_key = hmac.new(raw, b"omnidesk.message-id", hashlib.sha256).digest()
        loaders: list[jinja2.BaseLoader] = []
        if settings.templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(Path(settings.templates_dir)))
        loaders.append(jinja2.DictLoader(DEFAULT_TEMPLATES))
        self._env = SandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )

    def message_id(self, item: Outbound) -> str:
        """`<digest>@domain`, the digest an HMAC of the message and conversation ids under
        the installation secret: the same for every attempt at one message (a retried
        send after a crash carries the same id), and naming no id, so that nobody can
        guess the Message-ID of another customer's thread."""
        digest = hmac.new(
            self._msgid_key, f"{item.message_id}.{item.conversation_id}".encode(), hashlib.sha256
        ).hexdigest()[:32]
        return f"{digest}@{self.settings.domain}"

    def reply_address(self, conversation_token: str) -> str:
        return tokens.make_reply_address(
            conversation_token,
            self.secret,
            self.settings.reply_local,
            domain=self.settings.domain,
        )

    def compose(self, item: Outbound) -> EmailMessage:
        s = self.settings
        to = _recipient(item.to)
        from_name = check_header("From", item.from_name or s.from_name)
        subject = check_header("Subject", item.subject or s.default_subject)
        try:
            reply_to = self.reply_address(item.conversation_token)
        except ValueError as exc:
            raise PermanentDeliveryError(str(exc), field="conversation_token") from exc
        check_header("Reply-To", reply_to)

        msg = EmailMessage()
        from_local, _, from_domain = s.from_address.rpartition("@")
        msg["From"] = Address(display_name=from_name, username=from_local, domain=from_domain)
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = f"<{self.message_id(item)}>"
        msg["Reply-To"] = reply_to
        _set_thread_headers(msg, item)
        stamp = (
            auto_reply_headers(self.instance)
            if item.auto_reply
            else {INSTANCE_HEADER: self.instance}
        )
        for name, value in stamp.items():
            msg[name] = value
        self._set_bodies(msg, item, subject=subject, from_name=from_name)
        _attach(msg, item.attachments)
        # belt and braces: nothing set above may have smuggled a line break in
        for name, value in msg.items():
            check_header(name, str(value))
        return msg

    def _set_bodies(
        self, msg: EmailMessage, item: Outbound, *, subject: str, from_name: str
    ) -> None:
        """The text and HTML alternatives, rendered from the reply templates."""
        context = {
            "text": item.text,
            "subject": subject,
            "from_name": from_name,
            "inbox": item.inbox,
            "auto_reply": item.auto_reply,
        }
        text = self._env.get_template("reply.txt").render(context)
        html_source = sanitize_html(item.html) if item.html else None
        html = self._env.get_template("reply.html").render(
            {**context, "html": markupsafe.Markup(html_source) if html_source else None}  # noqa: S704 - nh3-sanitized
        )
        msg.set_content(text.replace("\x00", ""), subtype="plain", charset="utf-8")
        msg.add_alternative(html.replace("\x00", ""), subtype="html", charset="utf-8")


def _recipient(to: str) -> str:
    """`to` stripped, refused unless it is one plain email address."""
    to = check_header("To", to.strip())
    try:
        normalize_email(to)
    except Exception as exc:
        raise PermanentDeliveryError(f"not an email address: {to[:80]!r}", field="to") from exc
    return to


def _set_thread_headers(msg: EmailMessage, item: Outbound) -> None:
    """In-Reply-To and References, with only ids a mail client can know (local@domain):
    a message that came without a Message-ID is stored under a key of ours (sha256:...,
    form:...), never sent on."""
    references = [ref for ref in (_msgid(r, "References") for r in item.references) if "@" in ref]
    parent = _msgid(item.in_reply_to, "In-Reply-To") if item.in_reply_to else None
    if parent is not None and "@" in parent:
        msg["In-Reply-To"] = parent
        if parent not in references:
            references.append(parent)
    if len(references) > _MAX_REFERENCES:  # root plus the most recent ones
        references = [references[0], *references[-(_MAX_REFERENCES - 1) :]]
    if references:
        msg["References"] = " ".join(references)


def _attach(msg: EmailMessage, attachments: Iterable[tuple[str, str, bytes]]) -> None:
    """Add each (filename, content type, data): without a content type, the one its
    filename suggests; an unknown or malformed one is sent as application/octet-stream."""
    for filename, content_type, data in attachments:
        check_header("attachment filename", filename)
        ctype = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        maintype, _, subtype = ctype.partition("/")
        if not subtype or _FORBIDDEN.search(ctype) or " " in ctype:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
