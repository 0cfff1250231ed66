"""The `[sms]` section, read once into a frozen `SmsSettings` with errors naming the key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from inbox.config import ConfigSection
from inbox.errors import ValidationError
from inbox.identity import normalize_phone

DEFAULT_MEDIA_HOSTS = ("api.twilio.com", "*.twilio.com")
DEFAULT_MEDIA_TYPES = (
    "image/*",
    "video/*",
    "audio/*",
    "application/pdf",
    "text/vcard",
    "text/x-vcard",
    "text/plain",
)

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


@dataclass(frozen=True, slots=True)
class SmsSettings:
    account_sid: str
    auth_token: str
    from_number: str | None = None  # E.164, or None when a messaging service sends
    messaging_service_sid: str | None = None
    api_base_url: str = "https://api.twilio.com"
    # the URL Twilio calls us at (scheme://host[:port][/prefix]); signatures cover it
    public_base_url: str = "http://127.0.0.1:8080"
    validate_signatures: bool = True
    trust_forwarded_headers: bool = False
    inbox: str = "default"
    default_country: str = "US"
    max_body_bytes: int = 64 * 1024
    status_callbacks: bool = True
    send_attempts: int = 3
    send_backoff_seconds: float = 0.5
    send_timeout_seconds: float = 15.0
    media_allowed_hosts: tuple[str, ...] = DEFAULT_MEDIA_HOSTS
    media_allowed_types: tuple[str, ...] = DEFAULT_MEDIA_TYPES
    media_max_bytes: int = 5 * 1024 * 1024
    media_max_count: int = 10
    media_timeout_seconds: float = 15.0
    media_auth: bool = True  # send account sid + auth token to the media host (first hop)

    @property
    def inbound_path(self) -> str:
        return "/sms/twilio/inbound"

    @property
    def status_path(self) -> str:
        return "/sms/twilio/status"

    @property
    def status_callback_url(self) -> str | None:
        if not self.status_callbacks:
            return None
        return self.public_base_url + self.status_path


def _check_url(section: ConfigSection, key: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise section.error(
            key,
            f"expected an http(s) URL without query, got {value!r}",
            fix=f'{key} = "https://desk.example.com"',
        )
    return value.rstrip("/")


def read_sms_settings(
    section: ConfigSection, *, public_url: str, default_country: str = "US"
) -> SmsSettings:
    """Validate `[sms]`. `public_url` is `[server].public_url`, the default public base."""
    provider = section.str("provider", "twilio", choices=["twilio"])
    del provider
    account_sid = section.str("account_sid")
    if not _ACCOUNT_SID.match(account_sid):
        raise section.error(
            "account_sid",
            f"not a Twilio account SID: {account_sid!r}",
            fix='"AC" followed by 32 hex digits, from the Twilio console',
        )
    auth_token = section.secret("auth_token")
    if not auth_token:
        raise section.error("auth_token", "is empty", fix='auth_token_env = "TWILIO_AUTH_TOKEN"')
    from_number = section.str("from_number", None)
    service_sid = section.str("messaging_service_sid", None)
    if from_number is None and service_sid is None:
        raise section.error(
            None,
            "needs `from_number` or `messaging_service_sid` to send",
            fix='from_number = "+15550001111"',
        )
    if from_number is not None and service_sid is not None:
        raise section.error(
            "messaging_service_sid",
            "give either from_number or messaging_service_sid, not both",
            fix="remove one of them",
        )
    if from_number is not None:
        try:
            from_number = normalize_phone(from_number, default_country)
        except ValidationError as exc:
            raise section.error("from_number", exc.message, fix='"+15550001111"') from None
    if service_sid is not None and not _SERVICE_SID.match(service_sid):
        raise section.error(
            "messaging_service_sid",
            f"not a messaging service SID: {service_sid!r}",
            fix='"MG" followed by 32 hex digits',
        )
    validate = section.bool("validate_signatures", True)
    hosts = tuple(
        h.lower() for h in section.str_list("media_allowed_hosts", list(DEFAULT_MEDIA_HOSTS))
    )
    for host in hosts:
        if not re.fullmatch(r"(\*\.)?[a-z0-9.-]+", host) or host.startswith(("*.*", ".")):
            raise section.error(
                "media_allowed_hosts",
                f"not a host name or *.domain: {host!r}",
                fix='["api.twilio.com", "*.twilio.com"]',
            )
    types = tuple(
        t.lower() for t in section.str_list("media_allowed_types", list(DEFAULT_MEDIA_TYPES))
    )
    for media_type in types:
        if not re.fullmatch(r"[a-z0-9.+-]+/(\*|[a-z0-9.+-]+)", media_type):
            raise section.error(
                "media_allowed_types",
                f"not a media type: {media_type!r}",
                fix='["image/*", "application/pdf"]',
            )
    settings = SmsSettings(
        account_sid=account_sid,
        auth_token=auth_token,
        from_number=from_number,
        messaging_service_sid=service_sid,
        api_base_url=_check_url(
            section, "api_base_url", section.str("api_base_url", "https://api.twilio.com")
        ),
        public_base_url=_check_url(
            section, "public_base_url", section.str("public_base_url", public_url)
        ),
        validate_signatures=validate,
        trust_forwarded_headers=section.bool("trust_forwarded_headers", False),
        inbox=section.str("inbox", "default"),
        default_country=default_country,
        max_body_bytes=section.int("max_body_bytes", 64 * 1024, min=1024, max=16 * 1024 * 1024),
        status_callbacks=section.bool("status_callbacks", True),
        send_attempts=section.int("send_attempts", 3, min=1, max=10),
        send_backoff_seconds=section.float("send_backoff_seconds", 0.5, min=0, max=60),
        send_timeout_seconds=section.float("send_timeout_seconds", 15.0, min=1, max=120),
        media_allowed_hosts=hosts,
        media_allowed_types=types,
        media_max_bytes=section.int("media_max_bytes", 5 * 1024 * 1024, min=1, max=100 * 1024**2),
        media_max_count=section.int("media_max_count", 10, min=0, max=10),
        media_timeout_seconds=section.float("media_timeout_seconds", 15.0, min=1, max=120),
        media_auth=section.bool("media_auth", True),
    )
    section.reject_unknown()
    return settings
