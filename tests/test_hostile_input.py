"""Hostile input through the real app (API, web form, chat widget over socket.io, agent
pages): JSON nested too deep, integers of thousands of digits, lone surrogates, ids and
cursors out of range. Each gets a 4xx (or, on the socket, a refusal the widget does not
retry) that says what is wrong, never a 500/503 nor silence; nothing is stored."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys

import pytest
import socketio
import sqlalchemy as sa

from inbox.store import schema as t
from tests.channels.webchat.webchat_support import ORIGIN, Visitor, webchat_toml
from tests.conftest import write_config

FORM = """
[forms.contact]
title = "Contact us"
rate_limit = 1000
[[forms.contact.fields]]
name = "email"
type = "email"
required = true
[[forms.contact.fields]]
name = "message"
type = "textarea"
required = true
"""

DEEP = "[" * 5000 + "]" * 5000
HUGE = "9" * 5000
SURROGATE = '"hi \\udc00 there"'  # the JSON escape of a lone surrogate


@pytest.fixture
async def app(tmp_path, aiohttp_client):
    """The web app wired as `omnidesk serve` wires it, with a form, a chat widget and an
    API token."""
    from inbox import config as config_mod
    from inbox.store.migrate import upgrade
    from inbox.store.tokens import create as create_token
    from omnidesk.app import make_web_app
    from omnidesk.wiring import build_services

    config = config_mod.load(write_config(tmp_path, webchat_toml() + FORM), environ={})
    upgrade(config.database_url)
    services = await build_services(config)
    services.pipeline.attach()
    client = await aiohttp_client(make_web_app(services))
    token = await services.store.write(lambda conn: create_token(conn, "test"))
    client.services = services
    client.auth = {"Authorization": f"Bearer {token}"}
    client.url = str(client.make_url("/")).rstrip("/")
    try:
        yield client
    finally:
        await services.close()


async def stored(app) -> int:
    return await app.services.store.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar_one()
    )


# -- /api/v1 ------------------------------------------------------------------------------

API_BODIES = [
    # (raw JSON body, words the message must hold, the field it must name)
    ('{"sender": "a@example.com", "text": "x", "metadata": ' + DEEP + "}", "nested deeper", None),
    ('{"sender": "a@example.com", "text": ' + HUGE + "}", "more than 100 digits", None),
    ('{"sender": "a@example.com", "text": "x", "metadata": {"n": ' + HUGE + "}}", "digits", None),
    ('{"sender": "a@example.com", "text": ' + SURROGATE + "}", "lone surrogate", "text"),
    ('{"sender": "a@example.com", "text": "x", "name": ' + SURROGATE + "}", "surrogate", "name"),
    ('{"sender": "\\udc00@example.com", "text": "x"}', "surrogate", "sender"),
    ('{"sender": "a@example.com", "text": "x", "subject": ' + SURROGATE + "}", "surr", "subject"),
    ('{"sender": "a@example.com", "text": "x", "skills": ["a", "\\ud800"]}', "surr", "skills[1]"),
    (
        '{"sender": "a@example.com", "text": "x", "metadata": {"k": ' + SURROGATE + "}}",
        "surr",
        "metadata.k",
    ),
    (
        '{"sender": "a@example.com", "text": "x", "received_at": "2024-01-01T10:00:00"}',
        "timezone",
        "received_at",
    ),
    (
        '{"sender": "a@example.com", "text": "x", "received_at": "2024-02-30T10:00:00Z"}',
        "ISO 8601",
        "received_at",
    ),
    (
        '{"sender": "a@example.com", "text": "x", "received_at": "9999-12-31T23:59:59-23:59"}',
        "ISO 8601",
        "received_at",
    ),
]


@pytest.mark.parametrize(("raw", "words", "field"), API_BODIES)
async def test_api_refuses_hostile_json_with_a_clear_4xx(app, raw, words, field):
    resp = await app.post(
        "/api/v1/messages", data=raw, headers={**app.auth, "Content-Type": "application/json"}
    )
    assert 400 <= resp.status < 500, (resp.status, await resp.text())
    error = (await resp.json())["error"]
    assert words in error["message"], error
    assert error.get("field") == field, error
    assert await stored(app) == 0


async def test_api_ids_cursors_and_limits_out_of_range_are_4xx(app):
    far = base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00+00:00", 2**70]).encode())
    naive = base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00", 5]).encode())
    deep = base64.urlsafe_b64encode(("[" * 3000).encode())
    paths = [
        "/api/v1/conversations/99999999999999999999",
        "/api/v1/conversations/9223372036854775808",
        "/api/v1/conversations/-1",
        "/api/v1/conversations/%C2%B2",  # "²": str.isdigit() says yes, int() says no
        "/api/v1/contacts/%C2%B2",
        "/api/v1/conversations?limit=%C2%B2",
        "/api/v1/conversations?assignee=%C2%B2",
        "/api/v1/conversations?assignee=99999999999999999999",
        "/api/v1/conversations?cursor=" + far.decode(),
        "/api/v1/conversations?cursor=" + naive.decode(),
        "/api/v1/conversations?cursor=" + deep.decode()[:190],
        "/api/v1/conversations?cursor=" + "A" * 5000,
        "/api/v1/queue?limit=" + HUGE,
        "/api/v1/queue?limit=%C2%B2",
    ]
    for path in paths:
        resp = await app.get(path, headers=app.auth)
        assert resp.status == 400, (path, resp.status, await resp.text())
        assert (await resp.json())["error"]["message"], path
    moves = [
        ("POST", "/api/v1/conversations/1/assign", {"agent_id": 2**64}),
        ("POST", "/api/v1/conversations/1/transfer", {"agent_id": -(2**70)}),
        ("PUT", "/api/v1/agents/%C2%B2/presence", {"presence": "online"}),
    ]
    for method, path, body in moves:
        resp = await app.request(method, path, json=body, headers=app.auth)
        assert resp.status == 400, (path, resp.status, await resp.text())
        assert (await resp.json())["error"]["field"] in {"agent_id", "id"}


# -- the web form --------------------------------------------------------------------------

FORM_BODIES = [
    ('{"email": "a@example.com", "message": ' + DEEP + "}", "nested deeper"),
    ('{"email": "a@example.com", "message": ' + HUGE + "}", "more than 100 digits"),
    ('{"email": "a@example.com", "message": ' + SURROGATE + "}", "lone surrogate"),
    ('{"email": "a@example.com", "message": "hello", "\\udc00": "x"}', "lone surrogate"),
]


@pytest.mark.parametrize(("raw", "words"), FORM_BODIES)
async def test_form_refuses_hostile_json_with_a_clear_4xx(app, raw, words):
    resp = await app.post(
        "/forms/contact", data=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert 400 <= resp.status < 500, (resp.status, await resp.text())
    body = await resp.json()
    assert body["error"] == "invalid", body
    assert any(words in m for msgs in body["fields"].values() for m in msgs), body
    assert await stored(app) == 0


async def test_form_names_the_field_holding_a_surrogate(app):
    raw = '{"email": "a@example.com", "message": ' + SURROGATE + "}"
    resp = await app.post(
        "/forms/contact", data=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert list((await resp.json())["fields"]) == ["message"]


# -- the chat widget (socket.io /widget) ---------------------------------------------------


class RawSocket:
    """socket.io spoken by hand over a websocket: what a hostile client can send that the
    socket.io client library would never produce (its encoder refuses it)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 1

    @classmethod
    async def open(cls, app, auth: str = '{"widget": "shop"}') -> tuple[RawSocket, str]:
        ws = await app.ws_connect(
            "/socket.io/?EIO=4&transport=websocket", headers={"Origin": ORIGIN}
        )
        opened = await ws.receive_str(timeout=5)
        assert opened.startswith("0"), opened
        await ws.send_str("40/widget," + auth)
        sock = cls(ws)
        return sock, await sock.packet("4", timeout=5)

    async def packet(self, prefix: str, timeout: float = 3) -> str:
        async with asyncio.timeout(timeout):
            while True:
                text = await self.ws.receive_str()
                if text == "2":  # engine.io ping
                    await self.ws.send_str("3")
                elif text.startswith(prefix):
                    return text

    async def call(self, event: str, raw_data: str, timeout: float = 3) -> object:
        n = self.next_id
        self.next_id += 1
        await self.ws.send_str(f'42/widget,{n}["{event}",{raw_data}]')
        text = await self.packet(f"43/widget,{n}", timeout)
        return json.loads(text[len(f"43/widget,{n}") :])[0]


CHAT_PAYLOADS = [
    ('{"client_id": "client-0001", "text": "x", "files": ' + DEEP + "}", "nested deeper", None),
    ('{"client_id": "client-0002", "text": ' + HUGE + "}", "more than 100 digits", None),
    ('{"client_id": "client-0003", "text": ' + SURROGATE + "}", "lone surrogate", "text"),
    ('{"client_id": "client-0004", "text": "hi", "files": ["\\udc00"]}', "surrogate", "files[0]"),
]


@pytest.mark.parametrize(("raw", "words", "field"), CHAT_PAYLOADS)
async def test_chat_answers_hostile_messages_with_a_refusal_it_does_not_retry(
    app, raw, words, field
):
    sock, connected = await RawSocket.open(app)
    assert connected.startswith("40/widget,"), connected
    answer = await sock.call("message", raw)
    assert isinstance(answer, dict) and answer["ok"] is False, answer
    # "invalid" is shown to the visitor; "unavailable" would be retried every 2 s forever
    assert answer["error"] == "invalid", answer
    assert words in answer["message"] and answer.get("field") == field, answer
    # the socket still works
    ok = await sock.call("message", '{"client_id": "client-good1", "text": "hello"}')
    assert ok["ok"] is True, ok
    await sock.ws.close()
    assert await stored(app) == 1


async def test_chat_refuses_a_surrogate_sent_by_the_socketio_client(app):
    visitor = Visitor()
    await visitor.sio.connect(
        app.url,
        headers={"Origin": ORIGIN},
        auth={"widget": "shop"},
        namespaces=["/widget"],
        transports=["websocket"],
        wait_timeout=10,
    )
    try:
        answer = await visitor.say("client-0005", "broken \udc00 text")
        assert answer["ok"] is False and answer["error"] == "invalid", answer
        assert answer["field"] == "text" and "surrogate" in answer["message"]
        profile = await visitor.call("profile", {"name": "Eve \ud800"})
        assert profile["ok"] is False and profile["error"] == "invalid", profile
        # the refused name was not kept: the next message is stored
        fine = await visitor.say("client-0006", "fine")
        assert fine["ok"] is True, fine
    finally:
        await visitor.sio.disconnect()
    assert await stored(app) == 1


async def test_chat_connect_with_a_surrogate_in_its_profile_is_refused_with_the_reason(app):
    visitor = Visitor()
    reasons: list[object] = []

    async def refused(data: object) -> None:
        reasons.append(data)

    visitor.sio.on("connect_error", refused, namespace="/widget")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await visitor.sio.connect(
            app.url,
            headers={"Origin": ORIGIN},
            auth={"widget": "shop", "name": "Mallory \udc00"},
            namespaces=["/widget"],
            transports=["websocket"],
            wait_timeout=5,
            retry=False,
        )
    await visitor.sio.disconnect()
    assert len(reasons) == 1 and "surrogate" in str(reasons[0]), reasons


async def test_chat_ids_out_of_range_are_ignored_not_crashing(app):
    sock, _connected = await RawSocket.open(app)
    assert (await sock.call("message", '{"client_id": "client-0007", "text": "hi"}'))["ok"]
    hello = await sock.call("hello", '{"after": 99999999999999999999999}')
    assert hello["ok"] is True and len(hello["messages"]) == 1, hello
    await sock.ws.send_str('42/widget["read",{"seq": 99999999999999999999999}]')
    again = await sock.call("hello", '{"after": 0}')  # still serving this socket
    assert again["ok"] is True
    await sock.ws.close()


# -- aiohttp's own 400s ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    ],
    ids=["nul-in-header", "long-request-line", "bad-content-length"],
)
async def test_unparseable_requests_are_one_warning_line_not_a_traceback(app, caplog, raw):
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    server = app.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(raw)
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    await writer.wait_closed()
    assert status.split(b" ")[1] == b"400", status
    await asyncio.sleep(0.05)
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.levelname for r in records] == ["WARNING"], [
        (r.levelname, r.getMessage()) for r in records
    ]
    line = records[0].getMessage()
    assert "bad HTTP request from 127.0.0.1" in line and "\n" not in line
    assert records[0].exc_info is None


def test_the_log_filter_leaves_other_errors_alone():
    from inbox.web.http import BadRequestLogFilter

    try:
        raise RuntimeError("a bug of ours")
    except RuntimeError:
        record = logging.LogRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "Error handling request",
            (),
            sys.exc_info(),
        )
    assert BadRequestLogFilter().filter(record) is True
    assert record.levelno == logging.ERROR and record.exc_info is not None
