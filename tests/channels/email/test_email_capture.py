"""Outbound mail without a relay: `make_sender` picks capture, the captured file is the very
message a relay would get, a retry never adds a second copy, header injection is refused
before anything is written, and a folder that cannot be written is a retryable failure."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from emailtest_support import DOMAIN, RecordingIngest

from channels.email.capture import CaptureSender, MailFolder, captured_mail_dir
from channels.email.channel import EmailChannel
from channels.email.compose import Composer
from channels.email.files import MemoryAttachmentStore
from channels.email.sender import SMTPSender, make_sender
from channels.email.settings import (
    EmailChannelSettings,
    EmailSettings,
    RelaySettings,
    SMTPSettings,
    read_settings,
)
from inbox import config as config_mod
from inbox.errors import DeliveryError, PermanentDeliveryError
from inbox.ports import Outbound

SECRET = "test-secret-key-0123456789abcdef"
SETTINGS = EmailSettings(domain=DOMAIN, from_address=f"support@{DOMAIN}")


def item(**changes: object) -> Outbound:
    base: dict[str, object] = {
        "message_id": 7,
        "conversation_id": 3,
        "channel": "email",
        "to": "ann@example.org",
        "text": "Your parcel left the warehouse.",
        "html": "<p>Your parcel <b>left</b> the warehouse.</p>",
        "conversation_token": "tok3",
        "subject": "Re: Where is my order?",
        "in_reply_to": "first@example.org",
    }
    base.update(changes)
    return Outbound(**base)  # type: ignore[arg-type]


def settings_of(text: str) -> EmailChannelSettings:
    text = f'secret_key = "{SECRET}"\n[email]\ndomain = "{DOMAIN}"\n{text}'
    config = config_mod.load(text=text, environ={})
    return read_settings(config.section("email"), config.section("smtp"), config.section("imap"))


def test_without_a_relay_table_mail_is_captured_and_with_one_it_is_relayed(
    tmp_path: Path,
) -> None:
    bare = settings_of("")
    assert bare.email.relay is None
    composer = Composer(bare.email, SECRET)
    sender = make_sender(bare.email, composer, captured_mail_dir(tmp_path))
    assert isinstance(sender, CaptureSender)
    assert sender.folder.path == tmp_path / "captured-mail"

    relayed = settings_of('[email.relay]\nhost = "smtp.example.net"\nport = 2587\n')
    assert relayed.email.relay == RelaySettings(host="smtp.example.net", port=2587)
    sender = make_sender(relayed.email, composer, captured_mail_dir(tmp_path))
    assert isinstance(sender, SMTPSender) and sender.relay.host == "smtp.example.net"
    with pytest.raises(ValueError, match="no folder"):
        make_sender(bare.email, composer, None)


async def test_captured_file_is_the_message_a_relay_would_get(tmp_path: Path) -> None:
    folder = MailFolder(tmp_path / "mail")
    sender = CaptureSender(folder, Composer(SETTINGS, SECRET))
    provider_id = await sender.send(item())
    [path] = list(folder.path.iterdir())
    assert path.name == f"{provider_id}.eml"
    msg = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg["Message-ID"] == f"<{provider_id}>"
    assert msg["To"] == "ann@example.org" and msg["Subject"] == "Re: Where is my order?"
    assert msg["In-Reply-To"] == "<first@example.org>"
    assert b"\r\n" in path.read_bytes()  # wire format, as the relay would have received it

    listed, total = folder.list()
    assert total == 1 and listed[0].key == provider_id
    assert listed[0].in_reply_to == "<first@example.org>" and listed[0].to == "ann@example.org"
    read = folder.read(provider_id)
    assert read is not None
    assert read.text is not None and "left the warehouse" in read.text
    assert read.html is not None and "<b>left</b>" in read.html

    # the outbox retries a send whose outcome it could not record: still one message
    assert await sender.send(item()) == provider_id
    assert len(list(folder.path.iterdir())) == 1
    # another message is another file, listed first (newest first)
    second = await sender.send(item(message_id=8, subject="Second"))
    keys = [m.key for m in folder.list()[0]]
    assert keys == [second, provider_id]
    assert folder.list(limit=1) == ([folder.list()[0][0]], 2)


async def test_header_injection_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    folder = MailFolder(tmp_path / "mail")
    sender = CaptureSender(folder, Composer(SETTINGS, SECRET))
    for hostile in (
        item(subject="Hello\r\nBcc: everyone@example.net"),
        item(from_name="Support\nBcc: everyone@example.net"),
        item(to="ann@example.org\r\nBcc: everyone@example.net"),
    ):
        with pytest.raises(PermanentDeliveryError):
            await sender.send(hostile)
    assert not folder.path.exists() or list(folder.path.iterdir()) == []


async def test_a_folder_that_cannot_be_written_is_a_retryable_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    sender = CaptureSender(MailFolder(blocker / "mail"), Composer(SETTINGS, SECRET))
    with pytest.raises(DeliveryError) as info:
        await sender.send(item())
    assert not isinstance(info.value, PermanentDeliveryError)


def test_reading_back_only_opens_files_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.eml").write_text("Subject: outside\r\n\r\nnot yours\r\n")
    folder = MailFolder(tmp_path / "mail")
    folder.put("a@b", b"Subject: inside\r\n\r\nhello\r\n")
    (folder.path / ".half.tmp").write_text("partial")
    (folder.path / "notes.txt").write_text("not mail")
    assert [m.key for m in folder.list()[0]] == ["a@b"]
    for key in ("../secret", "..", ".half", "a/../../secret", "", "x" * 300):
        assert folder.read(key) is None
    assert folder.read("a@b") is not None


def test_hostile_headers_in_a_captured_file_are_read_as_one_line_of_text(tmp_path: Path) -> None:
    folder = MailFolder(tmp_path)
    folder.put(
        "hostile@x",
        b"From: =?utf-8?q?Eve_=3Cscript=3Ealert(1)=3C/script=3E?= <eve@example.org>\r\n"
        b"To: ann@example.org\r\n"
        b"Subject: =?utf-8?q?Hi=0D=0ABcc=3A_everyone=40example=2Enet?=\r\n"
        b"In-Reply-To: <x@y>\r\n\r\nbody\r\n",
    )
    [summary] = folder.list()[0]
    assert "\n" not in summary.subject and "\r" not in summary.subject
    assert summary.subject == "Hi Bcc: everyone@example.net"
    assert "<script>" in summary.sender  # text, for the page to escape


async def test_the_channel_without_a_relay_captures_into_its_folder(tmp_path: Path) -> None:
    ingest = RecordingIngest()
    channel = EmailChannel(
        EmailChannelSettings(email=SETTINGS, smtp=SMTPSettings(enabled=False)),
        SECRET,
        ingest,
        store=MemoryAttachmentStore(),
        get_cursor=ingest.get_cursor,
        capture_dir=captured_mail_dir(tmp_path),
    )
    await channel.start()
    try:
        provider_id = await channel.send(item())
    finally:
        await channel.stop()
    assert (tmp_path / "captured-mail" / f"{provider_id}.eml").is_file()
