"""Hostile input on the agent workspace's pages and actions: a 4xx that says what is
wrong (404 for an id that cannot exist on a page), never a 500/503; nothing stored."""

from __future__ import annotations

import sqlalchemy as sa

from inbox.store import schema as t


async def messages(desk) -> int:
    return await desk.store.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar_one()
    )


async def test_actions_refuse_hostile_json_and_ids(desk):
    conv = await desk.conversation("inbox-a")
    cid = conv["conversation_id"]
    await desk.login("supervisor")
    before = await messages(desk)
    h = desk.headers("supervisor")
    base = f"/agent/api/conversations/{cid}"
    cases = [
        (f"{base}/reply", '{"text": "hello \\udc00"}', "surrogate", "text"),
        (f"{base}/note", '{"text": "\\ud800"}', "surrogate", "text"),
        (f"{base}/note", '{"text": ' + "[" * 3000 + "]" * 3000 + "}", "nested deeper", None),
        (f"{base}/tags", '{"tags": [' + "9" * 5000 + "]}", "more than 100 digits", None),
        (f"{base}/transfer", '{"agent_id": 18446744073709551616}', "agent", "agent_id"),
        (f"{base}/transfer", '{"agent_id": -1}', "agent", "agent_id"),
        (
            f"/agent/api/contacts/{conv['contact_id']}/merge",
            '{"into": 1180591620717411303424}',
            "contact id",
            "into",
        ),
        (
            f"/agent/api/contacts/{conv['contact_id']}/notes",
            '{"notes": "\\udfff"}',
            "surrogate",
            "notes",
        ),
        ("/agent/api/sms-segments", '{"text": "\\udc00"}', "surrogate", "text"),
    ]
    for path, raw, words, field in cases:
        resp = await desk.client.post(path, data=raw.encode(), headers=h)
        assert resp.status == 400, (path, raw[:60], resp.status, await resp.text())
        error = (await resp.json())["error"]
        assert words in error["message"] and error.get("field") == field, (path, error)
    assert await messages(desk) == before


async def test_pages_answer_ids_that_cannot_exist_with_404(desk):
    await desk.login("admin")
    h = desk.headers("admin", json=False)
    for path in (
        "/conversations/%C2%B2",  # "²": str.isdigit() says yes, int() says no
        "/contacts/%C2%B2",
        "/conversations/99999999999999999999",
        "/agent/api/conversations/%C2%B2",
        "/agent/api/conversations/9223372036854775808",
        "/agent/files/1/%C2%B2",
        "/agent/files/99999999999999999999/0",
    ):
        resp = await desk.client.get(path, headers=h)
        assert resp.status == 404, (path, resp.status)
    resp = await desk.client.post(
        "/agent/api/agents/%C2%B2/end-sessions", data=b"{}", headers=desk.headers("admin")
    )
    assert resp.status == 404, await resp.text()
