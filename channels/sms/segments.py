"""How many SMS segments a text costs (pure).

GSM-7 (3GPP TS 23.038): 160 septets in one segment, 153 per segment once split (the
user-data header takes 7). Characters of the extension table are sent as ESC + char and
count double; an escape pair is never split across segments. Anything outside GSM-7
makes the whole message UCS-2: 70 UTF-16 code units alone, 67 per segment once split,
never splitting a surrogate pair (emoji count 2).
"""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7 = "GSM-7"
UCS2 = "UCS-2"

_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


def encoding_of(text: str) -> str:
    return GSM7 if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else UCS2


def _units(text: str, encoding: str) -> list[int]:
    """Cost of each character in septets (GSM-7) or UTF-16 code units (UCS-2)."""
    if encoding == GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def segments(text: str) -> tuple[str, int, int]:
    """(encoding, number of segments, units left in the last segment).

    An empty text is 0 segments with a whole single segment (160 or 70) left.
    """
    encoding = encoding_of(text)
    single, multi = _LIMITS[encoding]
    units = _units(text, encoding)
    total = sum(units)
    if total <= single:
        return encoding, (1 if total else 0), single - total
    count, used = 1, 0
    for cost in units:  # greedy fill: an escape pair or surrogate pair never straddles
        if used + cost > multi:
            count += 1
            used = 0
        used += cost
    return encoding, count, multi - used
