from __future__ import annotations

import base64
import gzip
import zlib
from datetime import UTC, datetime

import pytest
from emailtest_support import DOMAIN, SECRET, build_mail

from channels.email import tokens
from channels.email.limits import HostileMessage, ParseLimits
from channels.email.parse import ParseOptions, parse_message
from channels.email.text import strip_quotes_and_signature
from inbox.types import Channel

OPTIONS = ParseOptions(token_secret=SECRET, reply_domain=DOMAIN, instance="od-test-instance")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def test_plain_message_fields() -> None:
    raw = build_mail(
        message_id="<abc@customer.example>",
        headers={
            "In-Reply-To": "<prev@support.example.com>",
            "References": "<root@x> <prev@support.example.com>",
        },
    )
    at = datetime(2024, 5, 1, tzinfo=UTC)
    parsed = parse_message(raw, OPTIONS, inbox="support", received_at=at)
    m = parsed.message
    assert m.channel is Channel.EMAIL
    assert m.external_id == "abc@customer.example"
    assert m.sender == "ann@customer.example"
    assert m.display_name == "Ann Customer"
    assert m.subject == "Help with my order"
    assert m.text == "Hello, my order 1234 has not arrived."
    assert m.in_reply_to == "prev@support.example.com"
    assert m.references == ("root@x", "prev@support.example.com")
    assert m.inbox == "support" and m.received_at == at
    assert m.auto_submitted is False
    assert m.metadata["headers"]["subject"] == "Help with my order"
    assert len(m.metadata["content_hash"]) == 64
    assert parsed.files == ()


def test_prefers_text_plain_and_sanitizes_html() -> None:
    raw = build_mail(
        text="plain body", html='<p onclick="x()">html <b>body</b><script>alert(1)</script></p>'
    )
    m = parse_message(raw, OPTIONS).message
    assert m.text == "plain body"
    assert m.html is not None
    assert "<b>body</b>" in m.html
    assert "script" not in m.html and "onclick" not in m.html


def test_html_only_message_gets_text_derived() -> None:
    raw = crlf(
        "From: a@customer.example\nMessage-ID: <h@x>\nContent-Type: text/html; charset=utf-8\n\n"
        "<div>Hello &amp; welcome<br>second line</div><ul><li>one</li><li>two</li></ul>"
        "<style>p{}</style><script>evil()</script>\n"
    )
    m = parse_message(raw, OPTIONS).message
    assert m.text == "Hello & welcome\nsecond line\n\n- one\n- two"
    assert "evil" not in m.text and "evil" not in (m.html or "")


@pytest.mark.parametrize(
    ("charset", "body", "expected"),
    [
        ("iso-8859-1", "gr=FC=DFe", "grüße"),
        ("x-no-such-charset", "caf=C3=A9", "café"),  # unknown charset: UTF-8 if it decodes
        ("x-no-such-charset", "caf=E9", "café"),  # ...else cp1252
        ("unicode_escape", "a\\\\u0041", "a\\u0041"),  # codecs that rewrite text are refused
        ("utf-8", "bad =FF=FE bytes", "bad \ufffd\ufffd bytes"),
    ],
)
def test_charsets_degrade_never_crash(charset: str, body: str, expected: str) -> None:
    raw = crlf(
        f"From: a@customer.example\nMessage-ID: <c@x>\n"
        f'Content-Type: text/plain; charset="{charset}"\n'
        f"Content-Transfer-Encoding: quoted-printable\n\n{body}\n"
    )
    assert parse_message(raw, OPTIONS).message.text == expected


def test_rfc2047_headers_are_decoded() -> None:
    raw = crlf(
        "From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <jm@customer.example>\n"
        "Subject: =?utf-8?b?w5xiZXJ3ZWlzdW5n?= =?utf-8?q?_fehlgeschlagen?=\n"
        "Message-ID: <e@x>\n\nhi\n"
    )
    m = parse_message(raw, OPTIONS).message
    assert m.display_name == "Jürgen Müller"
    assert m.subject == "Überweisung fehlgeschlagen"


def test_quoted_history_and_signature_are_cut_for_display_but_kept() -> None:
    text = (
        "Thanks, that fixed it!\n\n-- \nAnn\nACME Corp\n\n"
        "On Mon, 1 Jan 2024 at 10:00, Support <support@x.com> wrote:\n> Try restarting.\n"
    )
    m = parse_message(build_mail(text=text), OPTIONS).message
    assert m.text == "Thanks, that fixed it!"
    assert m.metadata["original_text"].startswith("Thanks, that fixed it!\n\n-- \nAnn")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "New answer\n\nOn Tue, Jan 2, 2024 at 9:00 AM Bob <b@x.com>\nwrote:\n> old\n",
            "New answer",
        ),
        ("Antwort\n\nAm 02.01.2024 um 09:00 schrieb Bob <b@x.com>:\n> alt\n", "Antwort"),
        ("Reply\n\n-----Original Message-----\nFrom: Bob\nSent: Tuesday\n", "Reply"),
        ("Reply\n\nFrom: Bob <b@x.com>\nSent: Tuesday, 2 January\nTo: us\nSubject: x\n", "Reply"),
        ("Yes\n\nSent from my iPhone\n", "Yes"),
        ("> only a quote\n> nothing else\n", "> only a quote\n> nothing else"),
        (
            "> inline quote\nmy answer to it\n> another\nmore answer\n",
            "> inline quote\nmy answer to it\n> another\nmore answer",
        ),
    ],
)
def test_quote_stripping_variants(text: str, expected: str) -> None:
    assert strip_quotes_and_signature(text) == expected


def test_attachments_sniffed_from_bytes_and_inline_images_keep_content_id() -> None:
    raw = crlf(
        "From: a@customer.example\nMessage-ID: <att@x>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/related; boundary="R"\n\n'
        '--R\nContent-Type: text/html\n\n<p>see <img src="cid:logo@x"></p>\n'
        "--R\nContent-Type: image/gif\nContent-ID: <logo@x>\nContent-Transfer-Encoding: base64\n\n"
        + base64.b64encode(PNG).decode()
        + "\n--R\nContent-Type: image/png\n"
        'Content-Disposition: attachment; filename="../../etc/evil.png"\n'
        "Content-Transfer-Encoding: base64\n\n"
        + base64.b64encode(b"<html><script>alert(1)</script></html>").decode()
        + "\n--R--\n"
    )
    parsed = parse_message(raw, OPTIONS)
    inline, fake = parsed.message.attachments
    assert inline.content_type == "image/png"  # declared gif, bytes say png
    assert inline.content_id == "logo@x" and inline.inline is True and inline.size == len(PNG)
    assert fake.content_type == "text/plain"  # declared png, really HTML: never served as such
    assert "/" not in fake.filename and fake.filename.endswith("evil.png")
    assert fake.inline is False
    assert parsed.files[0].data == PNG
    assert parsed.message.metadata["declared_types"] == ["image/gif", "image/png"]
    assert 'src="cid:logo@x"' in (parsed.message.html or "")


def test_attachment_count_and_size_limits_drop_with_a_note() -> None:
    atts = tuple(
        (f"f{n}.bin", "application/octet-stream", b"x" * (10 if n else 5000)) for n in range(4)
    )
    limits = ParseLimits(max_attachments=2, max_attachment_bytes=1000)
    parsed = parse_message(build_mail(attachments=atts), ParseOptions(limits=limits))
    assert [a.filename for a in parsed.message.attachments] == ["f1.bin", "f2.bin"]
    dropped = parsed.message.metadata["dropped_attachments"]
    assert [d["filename"] for d in dropped] == ["f0.bin", "f3.bin"]
    assert "larger than 1000 bytes" in dropped[0]["reason"]
    assert "[attachment f0.bin not kept" in parsed.message.text


def test_compressed_attachment_is_not_inflated() -> None:
    bomb = gzip.compress(b"\x00" * 20_000_000)  # 20 MB of zeros, ~20 KB on the wire
    parsed = parse_message(build_mail(attachments=(("z.gz", "application/gzip", bomb),)), OPTIONS)
    (att,) = parsed.message.attachments
    assert att.size == len(bomb) < 100_000
    assert att.content_type == "application/gzip"
    assert zlib.crc32(parsed.files[0].data) == zlib.crc32(bomb)


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, None, "Auto-Submitted"),
        ({"Precedence": "bulk"}, None, "Precedence"),
        ({"List-Id": "<news.example.com>"}, None, "mailing-list"),
        ({"List-Unsubscribe": "<mailto:u@x>"}, None, "mailing-list"),
        ({"X-Auto-Response-Suppress": "OOF, AutoReply"}, None, "X-Auto-Response-Suppress"),
        ({"Return-Path": "<>"}, None, "empty return path"),
        ({}, "MAILER-DAEMON@mx.example", "robot address"),
        ({}, "no-reply@shop.example", "robot address"),
        ({"X-Omnidesk-Instance": "od-test-instance"}, None, "our own outbound"),
        # the engine's rules, which the parser lacked before the classifier was shared
        ({"Auto-Submitted": "notification"}, None, "Auto-Submitted"),
        ({}, "noreply+abc@shop.example", "robot address"),
        ({}, "no_reply@shop.example", "robot address"),
    ],
)
def test_auto_submitted_detection(headers: dict[str, str], sender: str | None, reason: str) -> None:
    raw = build_mail(headers=headers, **({"sender": sender} if sender else {}))
    m = parse_message(raw, OPTIONS).message
    assert m.auto_submitted is True
    assert any(reason in r for r in m.metadata["auto_reasons"])


def test_human_mail_is_not_auto_and_headers_are_exposed_lower_cased() -> None:
    raw = build_mail(headers={"Auto-Submitted": "no", "X-Loop": "support"})
    m = parse_message(raw, OPTIONS, mail_from="ann@customer.example").message
    assert m.auto_submitted is False
    assert m.metadata["headers"]["auto-submitted"] == "no"
    assert m.metadata["headers"]["x-loop"] == "support"
    assert m.metadata["return_path"] == "ann@customer.example"
    # a null envelope sender is a bounce even without headers saying so
    assert parse_message(raw, OPTIONS, mail_from="").message.auto_submitted is True


def test_conversation_token_only_when_signature_verifies() -> None:
    good = tokens.make_reply_address("conv77", SECRET, domain=DOMAIN)
    m = parse_message(build_mail(to=good.upper()), OPTIONS).message
    assert m.conversation_token == "conv77"
    forged = good.replace("conv77", "conv78")
    m = parse_message(build_mail(to=forged), OPTIONS).message
    assert m.conversation_token is None and m.metadata["invalid_reply_token"] is True
    # the envelope recipient counts too (Bcc / forwarded mail)
    m = parse_message(build_mail(), OPTIONS, rcpt_tos=[good]).message
    assert m.conversation_token == "conv77"
    # without a secret nothing is trusted
    assert parse_message(build_mail(to=good), ParseOptions()).message.conversation_token is None


def test_missing_message_id_uses_a_stable_content_hash() -> None:
    raw = crlf(
        "From: a@customer.example\nSubject: s\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nbody\n"
    )
    first = parse_message(raw, OPTIONS).message
    relayed = parse_message(crlf("Received: from relay\n") + raw, OPTIONS).message
    assert first.external_id.startswith("sha256:")
    assert first.external_id == relayed.external_id  # an extra Received hop is the same mail
    other = parse_message(raw.replace(b"body", b"different"), OPTIONS).message
    assert other.external_id != first.external_id


def test_no_sender_is_rejected_clearly() -> None:
    raw = crlf("To: support@x\nSubject: s\nMessage-ID: <n@x>\n\nbody\n")
    with pytest.raises(HostileMessage, match="no valid sender"):
        parse_message(raw, OPTIONS)
    # but the envelope sender is used when the header is missing
    assert (
        parse_message(raw, OPTIONS, mail_from="env@customer.example").message.sender
        == "env@customer.example"
    )


@pytest.mark.parametrize(
    "disposition",
    [
        "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf",  # RFC 2231
        'attachment; filename="=?utf-8?b?csOpc3Vtw6kucGRm?="',  # RFC 2047, as Outlook sends
        "attachment;\n filename*0*=utf-8''r%C3%A9su;\n filename*1*=m%C3%A9.pdf",  # continuations
    ],
)
def test_encoded_attachment_filenames(disposition: str) -> None:
    raw = crlf(
        "From: a@customer.example\nMessage-ID: <fn@x>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="F"\n\n--F\n\nsee file\n'
        f"--F\nContent-Type: application/pdf\nContent-Disposition: {disposition}\n\n%PDF-1.4\n--F--\n"
    )
    (att,) = parse_message(raw, OPTIONS).message.attachments
    assert att.filename == "résumé.pdf"
    assert att.content_type == "application/pdf"


def test_quote_scan_prefilter_cuts_where_the_full_scan_cuts(monkeypatch) -> None:
    """The prefilter skips lines no cut pattern can match; the cuts stay the same."""
    import random
    import re

    from channels.email import text as text_mod

    vocabulary = [
        "Thanks!",
        "online now",
        "level 3",
        "Sent from my iPhone",
        "sent FROM outlook for ios",
        "Get Outlook for Android",
        "Envoyé de mon iPhone",
        "Von meinem iPad gesendet",
        "On Mon, 1 Jan 2024, Ann <a@b.c> wrote:",
        "On Mon, 1 Jan 2024, Ann <a@b.c>",
        "wrote:",
        "Le 2 janv. 2024, Bob a écrit :",
        "Am 02.01.2024 schrieb Bob:",
        "El lunes, Ana escribió:",
        "Op maandag schreef Jan:",
        "Il giorno lunedì ha scritto:",
        "Em segunda, Ana escreveu:",
        "-----Original Message-----",
        "-- ",
        "--",
        "_" * 24,
        "From: Bob",
        "*From:* Bob",
        "Sent: Tuesday",
        "To: us",
        "De : Bob",
        "Van: Jan",
        "> quoted",
        ">",
        "",
        "   ",
        "plain words",
        "émoji ✓",
        "\tindented",
        "ON LEAVE",
        "amazing",
        "delivered",
    ]
    rng = random.Random(5)
    texts = []
    for _ in range(3000):
        lines = [
            rng.choice(["", " ", "  ", "\t"]) + rng.choice(vocabulary)
            for _ in range(rng.randint(1, 9))
        ]
        texts.append("\n".join(lines))
    fast = [strip_quotes_and_signature(t) for t in texts]
    monkeypatch.setattr(text_mod, "_MAYBE_CUT", re.compile(""))  # every line fully checked
    assert fast == [strip_quotes_and_signature(t) for t in texts]
