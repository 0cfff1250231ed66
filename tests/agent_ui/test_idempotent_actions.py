"""Agent actions are idempotent (issue 15): the page sends an Idempotency-Key with every
action and the same key when it sends again, so a reply resent after a dropped connection
reaches the customer once (counted at the sender the outbox delivers to). On SQLite and
PostgreSQL: the key is stored with the action's answer, in the action's transaction."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web

from inbox.store import schema as t
from tests.agent_ui.conftest import EXTRA, Desk, Recorder, add_people
from tests.conftest import _TABLES, SECRET, STORES


@pytest.fixture(params=STORES)
async def desk(request, tmp_path):
    """The workspace on a real port (so a client can drop its connection), on each store,
    with the router and the delivery worker running and a recording email sender."""
    from inbox import config as config_mod
    from inbox.store.migrate import upgrade
    from omnidesk.app import make_web_app
    from omnidesk.wiring import build_router, build_services

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'omnidesk.db'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("postgres_database")
    path = tmp_path / "config.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\nsecret_key = "{SECRET}"\n'
        'inboxes = ["inbox-a", "inbox-b"]\n'
        f'[database]\nurl = "{url}"\n[server]\nport = 0\n{EXTRA}\n'
    )
    config = config_mod.load(str(path), environ={})
    services = await build_services(config)
    if request.param != "sqlite":
        await services.store.write(
            lambda c: c.execute(sa.text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
        )
    services.pipeline.attach()
    router = build_router(config, services)
    await router.start()
    services.closers.append(router.close)
    services.router = router
    recorder = Recorder()
    services.outbox.senders["email"] = recorder
    services.outbox.start()
    services.closers.append(services.outbox.stop)
    runner = web.AppRunner(make_web_app(services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    http = aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{port}", cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    http.port = port  # type: ignore[attr-defined]
    d = Desk(_Client(http), services)
    d.people = await add_people(services)
    d.recorder = recorder  # type: ignore[attr-defined]
    try:
        yield d
    finally:
        await http.close()
        await runner.cleanup()
        await services.close()


class _Client:
    """What tests.agent_ui.conftest.sign_in needs of a test client, over a real socket."""

    def __init__(self, http: Any) -> None:
        self.http = http
        self.session = http
        self.port = http.port

    def get(self, path: str, **kw: Any) -> Any:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.http.post(path, **kw)


async def dropped_post(
    port: int, path: str, headers: dict[str, str], body: dict[str, Any], sent: Any
) -> None:
    """Send a whole request and hang up without reading the answer once `sent()` says the
    server acted on it (a link that dropped while the answer was on its way)."""
    raw = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
        f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
    ).encode() + raw
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)
        await _until(sent, "the first attempt committed")


async def outbound(desk: Desk, cid: int) -> int:
    return int(
        await desk.store.read(
            lambda c: c.execute(
                sa.select(sa.func.count())
                .select_from(t.messages)
                .where(t.messages.c.conversation_id == cid, t.messages.c.direction == "outbound")
            ).scalar_one()
        )
    )


async def test_a_reply_resent_with_its_key_after_a_dropped_connection_reaches_the_customer_once(
    desk: Desk,
) -> None:
    conv = await desk.conversation("inbox-a", subject="Order 17")
    cid = conv["conversation_id"]
    await desk.login("agent_a")
    key = uuid.uuid4().hex
    headers = {**desk.headers("agent_a"), "Idempotency-Key": key}
    path = f"/agent/api/conversations/{cid}/reply"
    body = {"text": "Your order ships today."}

    await dropped_post(desk.client.port, path, headers, body, lambda: outbound(desk, cid))

    # the page never saw an answer and sends again, with the same key
    resp = await desk.client.post(path, json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    again = await resp.json()
    resp = await desk.client.post(path, json=body, headers=headers)  # and once more
    assert (await resp.json())["message_id"] == again["message_id"]

    await _until(lambda: _sent(desk), "the delivery")
    await asyncio.sleep(0.5)  # time for a second delivery, if there were one
    assert len(desk.recorder.sent) == 1  # type: ignore[attr-defined]
    assert desk.recorder.sent[0].message_id == again["message_id"]  # type: ignore[attr-defined]
    assert await outbound(desk, cid) == 1

    # a new attempt (a new key) is a new reply; a key reused for another action is refused
    resp = await desk.client.post(
        path, json=body, headers={**desk.headers("agent_a"), "Idempotency-Key": "k-" + key}
    )
    assert resp.status == 200 and await outbound(desk, cid) == 2
    resp = await desk.client.post(
        f"/agent/api/conversations/{cid}/note", json={"text": "x"}, headers=headers
    )
    assert resp.status == 409, await resp.text()


async def test_a_resent_action_is_answered_as_the_first_time(desk: Desk) -> None:
    conv = await desk.conversation("inbox-a")
    cid = conv["conversation_id"]
    await desk.login("agent_a")
    headers = {**desk.headers("agent_a"), "Idempotency-Key": uuid.uuid4().hex}
    path = f"/agent/api/conversations/{cid}/resolve"
    first = await desk.client.post(path, json={}, headers=headers)
    second = await desk.client.post(path, json={}, headers=headers)
    assert (first.status, second.status) == (200, 200), await second.text()
    # without the key the same resend is refused: it was resolved already
    third = await desk.client.post(path, json={}, headers=desk.headers("agent_a"))
    assert third.status == 409
    # a key is one agent's: another agent's identical key is another action
    await desk.login("supervisor")
    other = await desk.client.post(
        f"/agent/api/conversations/{cid}/reopen",
        json={},
        headers={**desk.headers("supervisor"), "Idempotency-Key": headers["Idempotency-Key"]},
    )
    assert other.status == 200, await other.text()


async def test_a_malformed_key_is_refused(desk: Desk) -> None:
    conv = await desk.conversation("inbox-a")
    await desk.login("agent_a")
    resp = await desk.client.post(
        f"/agent/api/conversations/{conv['conversation_id']}/note",
        json={"text": "hello"},
        headers={**desk.headers("agent_a"), "Idempotency-Key": "x" * 101},
    )
    assert resp.status == 400


async def _sent(desk: Desk) -> bool:
    return bool(desk.recorder.sent)  # type: ignore[attr-defined]


async def _until(predicate: Any, what: str, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.browser
@pytest.mark.timeout(120)
async def test_the_page_resends_a_reply_under_its_key_and_the_customer_gets_it_once(live) -> None:
    """In Chromium: the reply reaches the server and commits, but the answer never comes
    back (the connection drops, three times: the page's own retries included). The page
    says so and re-enables Send; the agent sends again; one message is delivered."""
    from tests.agent_ui.browser import WATCH, sign_in_page
    from tests.agent_ui.conftest import PASSWORD

    conv = await live.conversation("inbox-a", subject="Order 17")
    cid = conv["conversation_id"]
    context = await live.browser.new_context()
    await context.add_init_script(WATCH)
    page = await context.new_page()
    await sign_in_page(page, live.base, "ann@a.test", PASSWORD)
    await page.goto(f"{live.base}/conversations/{cid}")
    await page.wait_for_selector("body[data-ready='1']")

    keys: list[str] = []
    dropping = True

    async def drop_the_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if dropping:
            await route.fetch()  # the server gets it (and commits)...
            await route.abort("connectionreset")  # ... and the page never hears back
        else:
            await route.continue_()

    await page.route(f"**/agent/api/conversations/{cid}/reply", drop_the_answer)
    await page.fill("#reply-text", "Your order ships today.")
    await page.click("#send")
    await page.wait_for_selector("#reply-error:not(:empty)", timeout=20_000)
    error = await page.text_content("#reply-error")
    await page.wait_for_selector("#send:enabled")
    dropping = False
    await page.click("#send")  # the agent sends again
    for _ in range(100):
        if not await page.input_value("#reply-text"):
            break  # cleared: the resend was answered
        await asyncio.sleep(0.1)
    assert await page.input_value("#reply-text") == ""

    for _ in range(100):
        if live.recorder.sent:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # time for a second delivery, if there were one
    assert [o.text for o in live.recorder.sent] == ["Your order ships today."]
    assert await outbound(live, cid) == 1
    # the page retried twice by itself, then said what to do; every attempt had one key
    assert len(keys) == 4 and len(set(keys)) == 1 and keys[0], keys
    assert error is not None and "send again" in error, error
    await context.close()
