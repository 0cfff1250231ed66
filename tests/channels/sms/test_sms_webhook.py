"""Inbound SMS webhook over real HTTP: signatures (signed by twilio's own validator),
idempotency, size limit, ack-after-ingest, keywords, status callbacks."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

import pytest
from aiohttp import web
from sms_support import (
    AUTH_TOKEN,
    PUBLIC_BASE,
    inbound_params,
    make_settings,
    sign,
)

from channels.sms.optout import Keyword, MemoryOptOutStore
from channels.sms.signature import compute_signature, is_valid_signature
from channels.sms.webhook import EMPTY_TWIML, SmsWebhook
from inbox.types import Channel, DeliveryStatus

INBOUND = "/sms/twilio/inbound"
STATUS = "/sms/twilio/status"


def build(ingest, settings=None, optouts=None, on_status=None, **kw):
    hook = SmsWebhook(
        ingest=ingest,
        settings=settings or make_settings(),
        optouts=optouts or MemoryOptOutStore(),
        on_status=on_status,
        **kw,
    )
    app = web.Application()
    app.add_routes(hook.routes())
    return app, hook


async def post_signed(client, params, *, url=PUBLIC_BASE + INBOUND, path=INBOUND, headers=None):
    all_headers = {"X-Twilio-Signature": sign(url, params)}
    all_headers.update(headers or {})
    return await client.post(path, data=params, headers=all_headers)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"Body": "hi", "From": "+14155550123"},
        {"Body": "ünïcödé 🎉 & = ?", "B": "2", "A": "1", "Empty": ""},
    ],
)
@pytest.mark.parametrize(
    "url",
    [
        "https://desk.example.com/sms/twilio/inbound",
        "https://desk.example.com:443/sms/twilio/inbound?x=1&y=2",
        "http://127.0.0.1:8080/p",
    ],
)
def test_signature_matches_twilio_sdk(url, params):
    expected = sign(url, params)
    assert compute_signature(AUTH_TOKEN, url, params.items()) == expected
    assert is_valid_signature(AUTH_TOKEN, url, params.items(), expected)
    assert not is_valid_signature("other-token", url, params.items(), expected)
    assert not is_valid_signature(AUTH_TOKEN, url + "x", params.items(), expected)


def test_signature_accepts_url_with_or_without_default_port():
    params = {"Body": "x"}
    with_port = sign("https://desk.example.com:443/sms", params)
    assert is_valid_signature(AUTH_TOKEN, "https://desk.example.com/sms", params.items(), with_port)


async def test_valid_signature_stores_and_answers_empty_twiml(aiohttp_client, ingest):
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    resp = await post_signed(client, inbound_params(body="Where is my order?"))
    assert resp.status == 200
    assert resp.content_type == "text/xml"
    assert await resp.text() == EMPTY_TWIML
    [msg] = ingest.messages
    assert msg.channel is Channel.SMS
    assert msg.external_id == "SM" + "a" * 32
    assert msg.sender == "+14155550123"
    assert msg.text == "Where is my order?"
    assert msg.metadata["to"] == "+15550001111"
    assert not msg.auto_submitted


async def test_tampered_params_forbidden_nothing_stored(aiohttp_client, ingest):
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    params = inbound_params(body="original")
    signature = sign(PUBLIC_BASE + INBOUND, params)
    tampered = dict(params, Body="tampered")
    resp = await client.post(INBOUND, data=tampered, headers={"X-Twilio-Signature": signature})
    assert resp.status == 403
    added = dict(params, Extra="1")
    resp = await client.post(INBOUND, data=added, headers={"X-Twilio-Signature": signature})
    assert resp.status == 403
    assert ingest.calls == 0


async def test_missing_or_garbage_signature_forbidden(aiohttp_client, ingest):
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    assert (await client.post(INBOUND, data=inbound_params())).status == 403
    resp = await client.post(INBOUND, data=inbound_params(), headers={"X-Twilio-Signature": "ñ!"})
    assert resp.status == 403
    assert ingest.calls == 0


async def test_wrong_url_forbidden(aiohttp_client, ingest):
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    params = inbound_params()
    for url in (
        "https://evil.example.com" + INBOUND,
        PUBLIC_BASE + "/sms/twilio/status",
        "http://desk.example.com" + INBOUND,
        str(client.make_url(INBOUND)),  # the internal address: not what Twilio signs
    ):
        resp = await post_signed(client, params, url=url)
        assert resp.status == 403, url
    assert ingest.calls == 0


async def test_proxy_public_base_url_with_prefix(aiohttp_client, ingest):
    # a proxy publishes https://example.org/omnidesk/... and strips the prefix
    settings = make_settings(public_base_url="https://example.org/omnidesk")
    app, _ = build(ingest, settings)
    client = await aiohttp_client(app)
    params = inbound_params()
    resp = await post_signed(client, params, url="https://example.org/omnidesk" + INBOUND)
    assert resp.status == 200
    # a query string is part of what Twilio signs
    resp = await post_signed(
        client,
        inbound_params(sid="SM2"),
        url="https://example.org/omnidesk" + INBOUND + "?k=v",
        path=INBOUND + "?k=v",
    )
    assert resp.status == 200
    assert [m.external_id for m in ingest.messages] == ["SM" + "a" * 32, "SM2"]


async def test_forwarded_headers_ignored_unless_configured(aiohttp_client, ingest):
    params = inbound_params()
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "attacker.example"}
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    resp = await post_signed(
        client, params, url="https://attacker.example" + INBOUND, headers=forged
    )
    assert resp.status == 403
    app2, _ = build(ingest, make_settings(trust_forwarded_headers=True))
    client2 = await aiohttp_client(app2)
    resp = await post_signed(
        client2, params, url="https://attacker.example" + INBOUND, headers=forged
    )
    assert resp.status == 200
    assert len(ingest.messages) == 1


async def test_other_account_forbidden(aiohttp_client, ingest):
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    resp = await post_signed(client, inbound_params(AccountSid="AC" + "f" * 32))
    assert resp.status == 403
    assert ingest.calls == 0


async def test_validation_off_warns_and_accepts_unsigned(aiohttp_client, ingest, caplog):
    with caplog.at_level(logging.WARNING, logger="channels.sms.webhook"):
        app, _ = build(ingest, make_settings(validate_signatures=False))
    assert any("NOT checked" in r.getMessage() for r in caplog.records)
    client = await aiohttp_client(app)
    resp = await client.post(INBOUND, data=inbound_params())
    assert resp.status == 200
    assert len(ingest.messages) == 1


async def test_same_message_sid_five_times_concurrently_stores_one(aiohttp_client, ingest):
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    params = inbound_params(sid="SM" + "b" * 32)
    responses = await asyncio.gather(*(post_signed(client, params) for _ in range(5)))
    assert [r.status for r in responses] == [200] * 5
    assert [await r.text() for r in responses] == [EMPTY_TWIML] * 5
    assert ingest.calls == 5
    assert len(ingest.messages) == 1


async def test_oversized_body_413_nothing_stored(aiohttp_client, ingest):
    app, _ = build(ingest, make_settings(max_body_bytes=2048))
    client = await aiohttp_client(app)
    params = inbound_params(body="x" * 5000)
    resp = await post_signed(client, params)
    assert resp.status == 413

    # chunked (no Content-Length): refused while streaming
    async def chunks():
        body = urlencode(params).encode()
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    resp = await client.post(
        INBOUND,
        data=chunks(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(PUBLIC_BASE + INBOUND, params),
        },
    )
    assert resp.status == 413
    assert ingest.calls == 0


async def test_answer_only_after_ingest_returned(aiohttp_client, ingest):
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    ingest.gate = asyncio.Event()
    task = asyncio.create_task(post_signed(client, inbound_params()))
    await asyncio.wait_for(ingest.entered.wait(), 5)
    await asyncio.sleep(0.05)
    assert not task.done()
    ingest.gate.set()
    resp = await asyncio.wait_for(task, 5)
    assert resp.status == 200
    assert len(ingest.messages) == 1


async def test_ingest_failure_is_not_acknowledged(aiohttp_client):
    from inbox.errors import StoreError

    async def failing(msg, *, cursor=None):
        raise StoreError("database down")

    app, _ = build(failing)
    client = await aiohttp_client(app)
    resp = await post_signed(client, inbound_params())
    assert resp.status == 503


async def test_missing_from_is_400(aiohttp_client, ingest):
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    params = inbound_params()
    del params["From"]
    resp = await post_signed(client, params)
    assert resp.status == 400
    assert ingest.calls == 0


@pytest.mark.parametrize(
    "word", ["STOP", "stop", " Stop! ", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]
)
async def test_stop_synonyms_opt_out(aiohttp_client, ingest, word):
    optouts = MemoryOptOutStore()
    app, _ = build(ingest, optouts=optouts)
    client = await aiohttp_client(app)
    resp = await post_signed(client, inbound_params(body=word))
    assert resp.status == 200
    assert await optouts.is_opted_out("+14155550123")
    [msg] = ingest.messages
    assert msg.metadata["keyword"] == Keyword.STOP
    assert msg.auto_submitted  # never auto-answer a carrier keyword


@pytest.mark.parametrize("word", ["START", "yes", "Unstop"])
async def test_start_synonyms_opt_back_in(aiohttp_client, ingest, word):
    optouts = MemoryOptOutStore()
    await optouts.set("+14155550123", True)
    app, _ = build(ingest, optouts=optouts)
    client = await aiohttp_client(app)
    assert (await post_signed(client, inbound_params(body=word))).status == 200
    assert not await optouts.is_opted_out("+14155550123")


@pytest.mark.parametrize("word", ["HELP", "info"])
async def test_help_keywords_marked_not_opting(aiohttp_client, ingest, word):
    optouts = MemoryOptOutStore()
    app, _ = build(ingest, optouts=optouts)
    client = await aiohttp_client(app)
    assert (await post_signed(client, inbound_params(body=word))).status == 200
    assert ingest.messages[0].metadata["keyword"] == Keyword.HELP
    assert not await optouts.is_opted_out("+14155550123")


async def test_sentence_containing_stop_is_not_a_keyword(aiohttp_client, ingest):
    optouts = MemoryOptOutStore()
    app, _ = build(ingest, optouts=optouts)
    client = await aiohttp_client(app)
    assert (await post_signed(client, inbound_params(body="please stop the order"))).status == 200
    assert "keyword" not in ingest.messages[0].metadata
    assert not await optouts.is_opted_out("+14155550123")


async def test_opt_out_type_from_twilio_wins(aiohttp_client, ingest):
    optouts = MemoryOptOutStore()
    app, _ = build(ingest, optouts=optouts)
    client = await aiohttp_client(app)
    resp = await post_signed(client, inbound_params(body="arrêt", OptOutType="STOP"))
    assert resp.status == 200
    assert await optouts.is_opted_out("+14155550123")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("queued", DeliveryStatus.QUEUED),
        ("sending", DeliveryStatus.SENDING),
        ("sent", DeliveryStatus.SENT),
        ("delivered", DeliveryStatus.DELIVERED),
        ("failed", DeliveryStatus.FAILED),
        ("undelivered", DeliveryStatus.FAILED),
    ],
)
async def test_status_callback_maps_status(aiohttp_client, ingest, raw, expected):
    seen = []

    async def on_status(provider_id, status, error_code):
        seen.append((provider_id, status, error_code))

    app, _ = build(ingest, on_status=on_status)
    client = await aiohttp_client(app)
    params = {
        "MessageSid": "SM123",
        "MessageStatus": raw,
        "AccountSid": make_settings().account_sid,
    }
    if raw in ("failed", "undelivered"):
        params["ErrorCode"] = "30003"
    resp = await post_signed(client, params, url=PUBLIC_BASE + STATUS, path=STATUS)
    assert resp.status == 204
    assert seen == [("SM123", expected, "30003" if raw in ("failed", "undelivered") else None)]


async def test_status_callback_signed_like_inbound(aiohttp_client, ingest):
    seen = []

    async def on_status(provider_id, status, error_code):
        seen.append(provider_id)

    app, _ = build(ingest, on_status=on_status)
    client = await aiohttp_client(app)
    params = {"MessageSid": "SM123", "MessageStatus": "delivered"}
    resp = await post_signed(client, params, url=PUBLIC_BASE + INBOUND, path=STATUS)
    assert resp.status == 403
    resp = await post_signed(
        client,
        {"MessageSid": "SM1", "MessageStatus": "receiving"},
        url=PUBLIC_BASE + STATUS,
        path=STATUS,
    )
    assert resp.status == 204
    assert seen == []


async def test_status_route_only_with_callback(aiohttp_client, ingest):
    app, _ = build(ingest)
    client = await aiohttp_client(app)
    resp = await post_signed(
        client,
        {"MessageSid": "SM1", "MessageStatus": "sent"},
        url=PUBLIC_BASE + STATUS,
        path=STATUS,
    )
    assert resp.status == 404
