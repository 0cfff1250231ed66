"""Normalizing how contacts are addressed, so one person is one contact (pure functions)."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from inbox.errors import ValidationError
from inbox.types import Channel, IdentityKind

_EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+\.[^@\s<>()\[\],;:\"\\]+$")
_VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def normalize_email(value: str) -> str:
    """Case-fold an address; reject anything that is not one plain address."""
    address = unicodedata.normalize("NFC", value.strip())
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    if len(address) > 254 or not _EMAIL_RE.match(address):
        raise ValidationError(f"not an email address: {value[:80]!r}", field="sender")
    local, _, domain = address.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError(f"bad email domain: {value[:80]!r}", field="sender") from None
    return f"{local}@{domain}".casefold()


def normalize_phone(value: str, default_country: str = "US") -> str:
    """E.164 (+15551234567). Numbers without a country code take `default_country`."""
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else default_country)
    except phonenumbers.NumberParseException:
        raise ValidationError(f"not a phone number: {value[:40]!r}", field="sender") from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationError(f"not a possible phone number: {value[:40]!r}", field="sender")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_visitor(value: str) -> str:
    if not _VISITOR_RE.match(value):
        raise ValidationError("visitor id must be 8-64 characters of [A-Za-z0-9_-]", field="sender")
    return value


def normalize_external(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 200 or any(ord(c) < 32 for c in value):
        raise ValidationError("external id must be 1-200 printable characters", field="sender")
    return value


SENDER_KIND: dict[Channel, IdentityKind] = {
    Channel.EMAIL: IdentityKind.EMAIL,
    Channel.FORM: IdentityKind.EMAIL,
    Channel.SMS: IdentityKind.PHONE,
    Channel.CHAT: IdentityKind.VISITOR,
    Channel.API: IdentityKind.EXTERNAL,
}


def normalize(kind: IdentityKind, value: str, default_country: str = "US") -> str:
    if kind is IdentityKind.EMAIL:
        return normalize_email(value)
    if kind is IdentityKind.PHONE:
        return normalize_phone(value, default_country)
    if kind is IdentityKind.VISITOR:
        return normalize_visitor(value)
    return normalize_external(value)


def sender_identity(
    channel: Channel, sender: str, default_country: str = "US"
) -> tuple[IdentityKind, str]:
    """The identity a sender address stands for on a channel.

    The generic API channel accepts an email address or a phone number as the sender and
    links it to the same contact as mail or SMS from that address would.
    """
    kind = SENDER_KIND[channel]
    if channel is Channel.API:
        if "@" in sender:
            kind = IdentityKind.EMAIL
        elif sender.strip().lstrip("+").replace(" ", "").replace("-", "").isdigit():
            kind = IdentityKind.PHONE
    return kind, normalize(kind, sender, default_country)
