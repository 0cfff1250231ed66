"""The email channel's outbound half: `inbox.ports.Sender` over SMTP to a relay, and
`make_sender`, the one place that picks the relay or local capture (`capture.py`).

Errors are translated at the edge: a 5xx reply for the message or its recipient is a
`PermanentDeliveryError` carrying the server's reason; 4xx replies, timeouts, refused or
dropped connections (and a relay that rejects our credentials: a config problem, not the
message's) are `DeliveryError`, which the outbox retries.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import aiosmtplib

from channels.email.capture import CaptureSender, MailFolder
from channels.email.compose import Composer
from channels.email.settings import EmailSettings, RelaySettings
from inbox.errors import DeliveryError, PermanentDeliveryError
from inbox.ports import Outbound


def _reason(code: int, message: str) -> str:
    return f"{code} {' '.join(str(message).split())}"[:500]


def _by_code(code: int, message: str, what: str) -> DeliveryError:
    text = f"relay refused {what}: {_reason(code, message)}"
    if 500 <= code < 600:
        return PermanentDeliveryError(text)
    return DeliveryError(text)


class SMTPSender:
    channel = "email"

    def __init__(
        self,
        relay: RelaySettings,
        composer: Composer,
        *,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.relay = relay
        self.composer = composer
        self._tls_context = tls_context

    async def send(self, item: Outbound) -> str:
        """Send one message; returns its Message-ID (without angle brackets)."""
        msg = self.composer.compose(item)  # PermanentDeliveryError on bad headers
        relay = self.relay
        try:
            await aiosmtplib.send(
                msg,
                sender=self.composer.settings.from_address,
                recipients=[item.to.strip()],
                hostname=relay.host,
                port=relay.port,
                username=relay.user,
                password=relay.password,
                use_tls=relay.tls == "tls",
                start_tls=True if relay.tls == "starttls" else False,
                timeout=relay.timeout,
                tls_context=self._tls_context,
                local_hostname=self.composer.settings.domain,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            if first is None:
                raise DeliveryError("relay refused all recipients") from exc
            raise _by_code(first.code, first.message, f"recipient {item.to}") from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"relay rejected our credentials: {_reason(exc.code, exc.message)}"
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, exc.message, "the message") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"relay {relay.host}:{relay.port} unreachable: {exc}") from exc
        return self.composer.message_id(item)


def make_sender(
    settings: EmailSettings, composer: Composer, capture_dir: Path | None
) -> SMTPSender | CaptureSender:
    """The relay of `[email.relay]` when one is configured; without one, outbound mail is
    captured into `capture_dir` (a desk trying things out has no relay to send through)."""
    if settings.relay is not None:
        return SMTPSender(settings.relay, composer)
    if capture_dir is None:
        raise ValueError("no [email.relay] configured and no folder to capture mail in")
    return CaptureSender(MailFolder(capture_dir), composer)
