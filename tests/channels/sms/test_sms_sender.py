"""TwilioSender against a local server speaking Twilio's Messages API format."""

from __future__ import annotations

import socket

import pytest
from sms_support import ACCOUNT_SID, make_settings

from channels.sms.optout import MemoryOptOutStore
from channels.sms.sender import TwilioSender, idempotency_token
from inbox.errors import DeliveryError, PermanentDeliveryError
from inbox.ports import Outbound


def outbound(message_id: int = 7, to: str = "(415) 555-0123", text: str = "Hi there") -> Outbound:
    return Outbound(
        message_id=message_id,
        conversation_id=3,
        channel="sms",
        to=to,
        text=text,
        conversation_token="tok123",
    )


@pytest.fixture
async def sender_factory(fake_twilio):
    senders = []

    def make(optouts=None, **overrides):
        settings = make_settings(api_base_url=fake_twilio.base_url, **overrides)
        sender = TwilioSender(settings, optouts or MemoryOptOutStore())
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.stop()


async def test_send_posts_twilio_form_and_returns_sid(fake_twilio, sender_factory):
    sender = sender_factory()
    sid = await sender.send(outbound())
    assert sid.startswith("SM") and sid in fake_twilio.created
    [form] = fake_twilio.requests
    assert form == {
        "To": "+14155550123",  # E.164 via inbox.identity
        "From": "+15550001111",
        "Body": "Hi there",
        "StatusCallback": "https://desk.example.com/sms/twilio/status",
    }
    assert fake_twilio.tokens == [idempotency_token(outbound())]


async def test_messaging_service_instead_of_from(fake_twilio, sender_factory):
    sender = sender_factory(from_number=None, messaging_service_sid="MG" + "1" * 32)
    await sender.send(outbound())
    [form] = fake_twilio.requests
    assert form["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in form


async def test_retries_on_500_then_succeeds_one_message(fake_twilio, sender_factory):
    fake_twilio.fail_before_create = 2
    sender = sender_factory(send_attempts=3)
    sid = await sender.send(outbound())
    assert len(fake_twilio.requests) == 3
    assert list(fake_twilio.created) == [sid]


async def test_lost_responses_still_one_message_per_outbound(fake_twilio, sender_factory):
    # Twilio created the message but the answer was a 500, twice: the retries carry the
    # same idempotency token, so the provider hands back the first message.
    fake_twilio.fail_after_create = 2
    sender = sender_factory(send_attempts=3)
    sid = await sender.send(outbound())
    assert len(fake_twilio.requests) == 3
    assert len(set(fake_twilio.tokens)) == 1
    assert list(fake_twilio.created) == [sid]


async def test_outbox_retry_after_delivery_error_sends_once(fake_twilio, sender_factory):
    fake_twilio.fail_after_create = 2
    sender = sender_factory(send_attempts=2)
    with pytest.raises(DeliveryError) as info:
        await sender.send(outbound())
    assert not isinstance(info.value, PermanentDeliveryError)
    assert "after 2 attempts" in info.value.message and "500" in info.value.message
    # the outbox retries the same message later
    sid = await sender.send(outbound())
    assert len(fake_twilio.requests) == 3
    assert list(fake_twilio.created) == [sid]
    # a different outbound message is a different SMS
    other = await sender.send(outbound(message_id=8))
    assert other != sid and len(fake_twilio.created) == 2


async def test_gives_up_with_delivery_error_after_attempts(fake_twilio, sender_factory):
    fake_twilio.fail_before_create = 10
    sender = sender_factory(send_attempts=4)
    with pytest.raises(DeliveryError) as info:
        await sender.send(outbound())
    assert type(info.value) is DeliveryError
    assert len(fake_twilio.requests) == 4
    assert fake_twilio.created == {}


async def test_429_is_retried(fake_twilio, sender_factory):
    fake_twilio.status_override = 429
    sender = sender_factory()
    sid = await sender.send(outbound())
    assert len(fake_twilio.requests) == 2
    assert list(fake_twilio.created) == [sid]


async def test_4xx_is_permanent_with_twilio_code_and_no_retry(fake_twilio, sender_factory):
    sender = sender_factory(send_attempts=5)
    with pytest.raises(PermanentDeliveryError) as info:
        await sender.send(outbound(to="+15005550001"))
    assert "21211" in info.value.message
    assert "not a valid phone number" in info.value.message
    assert len(fake_twilio.requests) == 1


async def test_wrong_credentials_permanent(fake_twilio, sender_factory):
    sender = sender_factory(auth_token="wrong-token")
    with pytest.raises(PermanentDeliveryError, match="20003"):
        await sender.send(outbound())


async def test_opted_out_number_refused_without_request(fake_twilio, sender_factory):
    optouts = MemoryOptOutStore()
    await optouts.set("+14155550123", True)
    sender = sender_factory(optouts=optouts)
    with pytest.raises(PermanentDeliveryError, match="opted out"):
        await sender.send(outbound(to="+1 415 555 0123"))
    assert fake_twilio.requests == []


@pytest.mark.parametrize("to", ["not a number", "12", ""])
async def test_bad_address_permanent(fake_twilio, sender_factory, to):
    sender = sender_factory()
    with pytest.raises(PermanentDeliveryError):
        await sender.send(outbound(to=to))
    assert fake_twilio.requests == []


async def test_connection_refused_is_retryable_delivery_error():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sender = TwilioSender(
        make_settings(api_base_url=f"http://127.0.0.1:{port}", send_attempts=2),
        MemoryOptOutStore(),
    )
    try:
        with pytest.raises(DeliveryError) as info:
            await sender.send(outbound())
        assert type(info.value) is DeliveryError
        assert "ClientConnectorError" in info.value.message
    finally:
        await sender.stop()


def test_messages_url():
    sender = TwilioSender(make_settings(), MemoryOptOutStore())
    assert sender.messages_url == (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    )
    assert sender.channel == "sms"
