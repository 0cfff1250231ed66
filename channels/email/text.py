"""Text helpers for mail bodies: charset decoding, HTML sanitizing and flattening, and
cutting quoted history and signatures for display. Pure functions, linear time."""

from __future__ import annotations

import codecs
import html as html_lib
import re

import nh3

# --- cleaning ---------------------------------------------------------------------------

# C0 controls except TAB, LF, CR; DEL; and the C1 range. NUL in particular: PostgreSQL
# text columns reject it.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NOT_ESCAPE = re.compile(r"[\ud800-\udc7f\udd00-\udfff]")


def fix_surrogates(value: str) -> str:
    """Raw 8-bit bytes the parser kept as surrogate escapes (RFC 6532 UTF-8 headers, or
    undeclared legacy charsets) back to text: UTF-8 where it is, cp1252 byte by byte
    where it is not.
    A lone surrogate cannot be stored (UTF-8 encoding fails), so none may leave here."""
    if not _SURROGATE.search(value):
        return value
    value = _NOT_ESCAPE.sub("\ufffd", value)  # surrogates that stand for no byte
    return value.encode("utf-8", "surrogateescape").decode("utf-8", _CP1252_FALLBACK)


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a byte that is not UTF-8 is read as cp1252 (mixed headers)."""
    assert isinstance(exc, UnicodeDecodeError)
    bad = exc.object[exc.start : exc.end]
    return bad.decode("cp1252", "replace"), exc.end


_CP1252_FALLBACK = "omnidesk.cp1252-fallback"
codecs.register_error(_CP1252_FALLBACK, _cp1252_fallback)


def clean_text(value: str, limit: int) -> str:
    """Drop control characters, normalize newlines, cap the length."""
    value = _CONTROL.sub("", fix_surrogates(value[: limit * 2]))
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value[:limit]


def clean_line(value: str, limit: int) -> str:
    """One-line value (subject, display name, header): no control characters at all."""
    if (
        value.isascii()
        and value.isprintable()
        and "  " not in value
        and value[:1] != " "
        and value[-1:] != " "
    ):
        return value[:limit]  # already clean: the common case, ~17 times per message
    value = _LINE_CONTROL.sub(" ", fix_surrogates(value[: limit * 2]))
    return " ".join(value.split())[:limit]


# --- charsets ---------------------------------------------------------------------------

# Text codecs that turn plain bytes into something other than the characters they show.
_REFUSED_CODECS = frozenset(
    {"unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined", "mbcs", "oem"}
)


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str]:
    """Decode with the declared charset; bad or unknown charsets degrade, never raise.

    Returns (text, charset actually used).
    """
    name = (charset or "").strip().strip("\"'").lower()[:40]
    codec = None
    if name:
        try:
            info = codecs.lookup(name)
            if getattr(info, "_is_text_encoding", True) and info.name not in _REFUSED_CODECS:
                codec = info.name
        except (LookupError, ValueError):
            codec = None
    if codec is None or codec == "ascii":
        # unknown or absent: UTF-8 if it is, else the de-facto default of broken mailers
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace"), "cp1252"
    try:
        return data.decode(codec, errors="replace"), codec
    except Exception:  # a codec may fail in ways other than UnicodeError
        return data.decode("utf-8", errors="replace"), "utf-8"


# --- HTML -------------------------------------------------------------------------------

_URL_SCHEMES = {"http", "https", "mailto", "cid", "tel"}
_CLEAN_CONTENT = {"script", "style", "title", "head", "template", "noscript", "svg", "math"}


_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]{0,20})[^>]*?(/?)>")
# no end tag, or one the HTML parser supplies when the next sibling starts
_NOT_NESTING = frozenset(
    "area base br col embed hr img input link meta param source track wbr "
    "p li dt dd tr td th option optgroup thead tbody tfoot colgroup rt rp".split()
)


def html_too_deep(value: str, limit: int) -> bool:
    """Whether tags nest deeper than `limit` (approximately, erring deep).

    The HTML5 tree builder under nh3 costs O(depth) per tag, so 20,000 unclosed <div>s
    take seconds: deeper documents are not sanitized but flattened to text.
    """
    depth = 0
    for match in _TAG.finditer(value):
        if match.group(3) or match.group(2).lower() in _NOT_NESTING:
            continue
        depth += -1 if match.group(1) else 1
        if depth > limit:
            return True
        depth = max(depth, 0)
    return False


def strip_tags(value: str) -> str:
    """Text of HTML we refuse to sanitize (too deep): tags dropped, entities decoded."""
    return html_to_text(html_lib.escape(html_lib.unescape(_ANY_TAG.sub(" ", value)), quote=False))


# built once: nh3.clean builds an Ammonia sanitizer on every call, about two thirds of
# sanitizing a short mail body
_SANITIZER = nh3.Cleaner(
    url_schemes=_URL_SCHEMES,
    clean_content_tags=_CLEAN_CONTENT,
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def sanitize_html(value: str) -> str:
    """nh3 (Ammonia) with its safe default tags, `cid:` images for inline parts, no script."""
    return _SANITIZER.clean(value)


_BLOCK_TAG = re.compile(
    r"<\s*(/?)\s*(p|div|br|li|tr|h[1-6]|blockquote|pre|table|ul|ol|hr)\b[^>]*>", re.I
)
_ANY_TAG = re.compile(r"<[^>]*>")
_BLANK_RUN = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def html_to_text(sanitized: str) -> str:
    """Plain text of already-sanitized HTML (nh3 output escapes every stray '<')."""

    def block(match: re.Match[str]) -> str:
        tag = match.group(2).lower()
        if tag == "li":
            return "" if match.group(1) else "\n- "
        return "\n"

    text = _BLOCK_TAG.sub(block, sanitized)
    text = _ANY_TAG.sub("", text)
    text = html_lib.unescape(text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_RUN.sub("\n\n", text).strip()


# --- quoted history and signatures ------------------------------------------------------

_ATTRIBUTION = re.compile(
    r"^\s*("
    r"on\b.{0,300}\bwrote:?"  # On Mon, 1 Jan 2024, Ann <a@b> wrote:
    r"|le\b.{0,300}\ba écrit\s*:?"
    r"|am\b.{0,300}\bschrieb\b.{0,80}:?"
    r"|el\b.{0,300}\bescribió:?"
    r"|op\b.{0,300}\bschreef\b.{0,80}:?"
    r"|il\b.{0,300}\bha scritto:?"
    r"|em\b.{0,300}\bescreveu:?"
    r")\s*$",
    re.I,
)
_ORIGINAL = re.compile(
    r"^\s*(-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|"
    r"forwarded message|mensaje original)\s*-{2,}|_{20,})\s*$",
    re.I,
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(from|von|de|van)\s*:\*?\s+\S", re.I)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(sent|date|gesendet|envoyé|to|an|à|subject)\s*:", re.I)
_SIG_DELIM = re.compile(r"^-- ?$")
_MOBILE_SIG = re.compile(
    r"^\s*(sent from my \w+|sent from (outlook|yahoo mail|mail) for \w+|"
    r"get outlook for \w+|envoyé de mon \w+|von meinem \w+ gesendet)\b.{0,60}$",
    re.I,
)


# Every cut below needs a line that starts (after blanks) with one of these: checked first,
# since most lines start otherwise and the five patterns cost ~3 us a line (a superset:
# "on" also lets "online" through to the full checks)
_MAYBE_CUT = re.compile(r"\s*(?:[-_>*]|on|le|am|el|op|il|em|from|von|de|van|sent|get|envoy)", re.I)

_SCAN_LINES = 5000


def strip_quotes_and_signature(text: str) -> str:
    """The new part of a reply, for display: cut the quoted history and the signature.

    Falls back to the whole text when cutting would leave nothing (a forward, a quote-only
    message, an unusual layout): better too much than an empty message. Only the first
    `_SCAN_LINES` lines are searched for a cut (a reply starts at the top).
    """
    lines = text.split("\n")
    cut = len(lines)
    quoted_tail = _quoted_tails(lines)
    for index, line in enumerate(lines[:_SCAN_LINES]):
        if len(line) > 1000 or not _MAYBE_CUT.match(line):
            continue
        if _history_starts(lines, index, quoted_tail[index]):
            cut = index
            break
    kept = "\n".join(lines[:cut]).rstrip()
    return kept if kept.strip() else text.strip()


def _quoted_tails(lines: list[str]) -> list[bool]:
    """[i]: lines[i:] holds only quotes and blank lines (one reverse pass)."""
    quoted_tail = [True] * (len(lines) + 1)
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        quoted_tail[index] = quoted_tail[index + 1] and (not line.strip() or line.startswith(">"))
    return quoted_tail


def _history_starts(lines: list[str], index: int, quoted_tail: bool) -> bool:
    """Whether lines[index] starts the quoted history or the signature: a separator, a
    signature line, an attribution (also wrapped over two lines), an Outlook header
    block, or a quoted block up to the end (`quoted_tail`)."""
    line = lines[index]
    if _ORIGINAL.match(line) or _SIG_DELIM.match(line) or _MOBILE_SIG.match(line):
        return True
    if _ATTRIBUTION.match(line):
        return True
    # "On ... <addr>" wrapped over two lines by the mailer
    if index + 1 < len(lines) and line.lower().lstrip().startswith(("on ", "le ", "am ")):
        joined = f"{line} {lines[index + 1]}"
        if len(joined) < 600 and _ATTRIBUTION.match(joined):
            return True
    if _OUTLOOK_FROM.match(line) and any(
        _OUTLOOK_NEXT.match(nxt) for nxt in lines[index + 1 : index + 4]
    ):
        return True
    return line.startswith(">") and quoted_tail
