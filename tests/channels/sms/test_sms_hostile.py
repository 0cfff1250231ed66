"""Hostile input on the SMS webhook: every case is a 4xx naming the problem (nothing
reaches ingest), never a 500, whether or not it is signed. (The webhook held already:
these guard it.)"""

from __future__ import annotations

import pytest
from aiohttp import web
from sms_support import PUBLIC_BASE, inbound_params, make_settings, sign

from channels.sms.optout import MemoryOptOutStore
from channels.sms.webhook import SmsWebhook

INBOUND = "/sms/twilio/inbound"


@pytest.fixture
async def client(aiohttp_client, ingest):
    hook = SmsWebhook(ingest=ingest, settings=make_settings(), optouts=MemoryOptOutStore())
    app = web.Application()
    app.add_routes(hook.routes())
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"NumMedia": "9" * 5000}, "NumMedia"),
        ({"NumMedia": "\u00b2"}, "NumMedia"),  # "²": a digit to str.isdigit(), not to int()
        ({"From": "+1" + "9" * 5000}, "phone"),
        ({"From": "\u00b2\u00b3"}, "phone"),
    ],
)
async def test_signed_hostile_fields_are_4xx(client, ingest, extra, words):
    params = {**inbound_params(), **extra}
    resp = await client.post(
        INBOUND, data=params, headers={"X-Twilio-Signature": sign(PUBLIC_BASE + INBOUND, params)}
    )
    text = await resp.text()
    assert 400 <= resp.status < 500, (resp.status, text)
    assert words in text, text
    assert ingest.messages == []


@pytest.mark.parametrize(
    "body",
    [
        b"MessageSid=SM1&From=%2B14155550123&Body=%ED%B0%80",  # an encoded lone surrogate
        b"MessageSid=SM1&From=%2B14155550123&Body=\xff",  # not UTF-8
    ],
)
async def test_undecodable_bodies_are_400(client, ingest, body):
    resp = await client.post(
        INBOUND, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status == 400, await resp.text()
    assert "form data" in await resp.text()
    assert ingest.messages == []
