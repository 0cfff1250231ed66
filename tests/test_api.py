"""The HTTP API through a real aiohttp server: happy paths, bad input, idempotency."""

from __future__ import annotations

import asyncio
import io
import json

import sqlalchemy as sa

from inbox.store import schema as t


async def stored(service) -> int:
    return await service.services.store.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar_one()
    )


async def post(service, body, headers=None, raw=None):
    h = {**service.auth, "Content-Type": "application/json", **(headers or {})}
    data = raw if raw is not None else json.dumps(body)
    return await service.post("/api/v1/messages", data=data, headers=h)


async def test_post_message_then_read_it_back(service):
    resp = await post(
        service,
        {"sender": "Ann@Example.com", "name": "Ann", "subject": "Hi", "text": "Where is my order?"},
    )
    assert resp.status == 201
    created = await resp.json()
    conv = await service.get(
        f"/api/v1/conversations/{created['conversation_id']}", headers=service.auth
    )
    body = await conv.json()
    assert body["messages"][0]["text"] == "Where is my order?"
    assert body["subject"] == "Hi"
    contact = await (
        await service.get(f"/api/v1/contacts/{created['contact_id']}", headers=service.auth)
    ).json()
    assert contact["identities"] == [
        {"kind": "email", "value": "ann@example.com", "verified": False}
    ]
    assert [c["id"] for c in contact["conversations"]] == [created["conversation_id"]]


async def test_idempotency_key_returns_first_result(service):
    first = await post(
        service, {"sender": "a@example.com", "text": "one"}, {"Idempotency-Key": "abc"}
    )
    again = await post(
        service, {"sender": "a@example.com", "text": "two"}, {"Idempotency-Key": "abc"}
    )
    assert (first.status, again.status) == (201, 200)
    a, b = await first.json(), await again.json()
    assert b["duplicate"] is True and a["message_id"] == b["message_id"]
    assert await stored(service) == 1


async def test_concurrent_posts_with_one_key_store_one(service):
    resps = await asyncio.gather(
        *[
            post(service, {"sender": "c@example.com", "text": "x"}, {"Idempotency-Key": "same"})
            for _ in range(20)
        ]
    )
    assert sorted(r.status for r in resps) == [200] * 19 + [201]
    assert await stored(service) == 1


async def test_bad_input_is_4xx_with_a_clear_message_and_nothing_stored(service):
    cases = [
        ({"raw": "{not json"}, 400, "malformed JSON"),
        ({"raw": "[1, 2]"}, 400, "must be an object"),
        ({"body": {"text": "no sender"}}, 400, "'sender' is required"),
        ({"body": {"sender": "a@example.com"}}, 400, "'text' is required"),
        ({"body": {"sender": "a@example.com", "text": 5}}, 400, "'text' must be str"),
        (
            {"body": {"sender": "a@example.com", "text": "x", "channel": "pigeon"}},
            422,
            "unknown channel",
        ),
        (
            {"body": {"sender": "not an address@", "text": "x", "channel": "email"}},
            400,
            "not an email address",
        ),
        (
            {"body": {"sender": "a@example.com", "text": "x", "received_at": "yesterday"}},
            400,
            "ISO 8601",
        ),
        ({"body": {"sender": "a@example.com", "text": "x", "skills": [1]}}, 400, "skills"),
    ]
    for case, status, words in cases:
        resp = await post(service, case.get("body"), raw=case.get("raw"))
        body = await resp.json()
        assert resp.status == status, (case, body)
        assert words in body["error"]["message"], (case, body)
        assert set(body["error"]) >= {"code", "message"}
    assert await stored(service) == 0


async def test_json_the_fast_parser_refuses_is_read_as_before(service):
    # integers over 64 bits in metadata: valid JSON, kept exactly
    big = 2**70
    resp = await post(
        service, None, raw=f'{{"sender": "a@example.com", "text": "x", "metadata": {{"n": {big}}}}}'
    )
    assert resp.status == 201, await resp.text()
    meta = await service.services.store.read(
        lambda c: c.execute(sa.select(t.messages.c.meta)).scalar_one()
    )
    assert json.loads(json.dumps(meta))["provider"] == {"api": {"n": big}}
    # invalid UTF-8 is malformed to both parsers: 400, nothing stored
    bad = await post(service, None, raw=b'{"sender": "b@example.com", "text": "\xff"}')
    assert bad.status == 400 and "malformed JSON" in (await bad.json())["error"]["message"]
    assert await stored(service) == 1


async def test_wrong_content_type_is_refused(service):
    resp = await service.post(
        "/api/v1/messages",
        data="sender=a",
        headers={**service.auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 400
    assert "application/json" in (await resp.json())["error"]["message"]


async def test_body_over_the_limit_is_413_before_reading_it(service):
    big = io.BytesIO(json.dumps({"sender": "a@example.com", "text": "x" * (1024 * 1024)}).encode())
    resp = await post(service, None, raw=big)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"

    async def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(40):
            yield b"x" * 65536

    resp = await service.post(
        "/api/v1/messages",
        data=chunks(),
        headers={**service.auth, "Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert await stored(service) == 0


async def test_wrong_or_missing_token_is_401(service):
    for headers in ({}, {"Authorization": "Bearer odk_wrong"}, {"Authorization": "Basic abc"}):
        resp = await service.post(
            "/api/v1/messages", json={"sender": "a@example.com", "text": "x"}, headers=headers
        )
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"
        resp = await service.get("/api/v1/conversations", headers=headers)
        assert resp.status == 401
    assert await stored(service) == 0


async def test_html_is_sanitized_and_text_kept_as_text(service):
    xss = '<img src=x onerror="alert(1)"><script>alert(2)</script><b>bold</b>'
    resp = await post(service, {"sender": "x@example.com", "text": xss, "html": xss})
    created = await resp.json()
    body = await (
        await service.get(
            f"/api/v1/conversations/{created['conversation_id']}", headers=service.auth
        )
    ).json()
    message = body["messages"][0]
    assert message["text"] == xss  # text is data, escaped wherever it is rendered
    assert "onerror" not in message["html"] and "<script" not in message["html"]
    assert "<b>bold</b>" in message["html"]


async def test_list_conversations_filters_and_paginates(service):
    for i in range(7):
        await post(
            service,
            {
                "sender": f"p{i}@example.com",
                "text": "x",
                "channel": "email" if i % 2 else "sms" if False else "api",
            },
        )
    seen: list[int] = []
    cursor = None
    while True:
        q = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await (await service.get("/api/v1/conversations" + q, headers=service.auth)).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == list(range(1, 8)) and len(seen) == len(set(seen))
    emails = await (
        await service.get("/api/v1/conversations?channel=email", headers=service.auth)
    ).json()
    assert {c["channel"] for c in emails["data"]} == {"email"} and len(emails["data"]) == 3
    unassigned = await (
        await service.get("/api/v1/conversations?assignee=none&status=open", headers=service.auth)
    ).json()
    assert len(unassigned["data"]) == 7
    for bad in ("?status=nope", "?limit=0", "?limit=abc", "?cursor=garbage!", "?channel=fax"):
        resp = await service.get("/api/v1/conversations" + bad, headers=service.auth)
        assert resp.status == 400, bad


async def test_unknown_ids_are_404(service):
    for path in ("/api/v1/conversations/999", "/api/v1/contacts/999"):
        resp = await service.get(path, headers=service.auth)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
    resp = await service.get("/api/v1/conversations/abc", headers=service.auth)
    assert resp.status == 400


async def test_health_and_readiness(service):
    assert (await service.get("/healthz")).status == 200
    ready = await service.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"]["store"]["ok"] is True


async def test_openapi_document_matches_registered_routes(service):
    doc = await (await service.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    registered = set()
    for route in service.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or not path:
            continue
        if path.startswith("/api/") or path in {"/healthz", "/readyz"}:
            registered.add((path, route.method))
    assert documented == registered


async def test_every_response_carries_the_security_headers(service):
    ok = await post(service, {"sender": "h@example.com", "text": "x"})
    missing = await service.get("/api/v1/conversations/999999", headers=service.auth)
    nowhere = await service.get("/no/such/page")
    static = await service.get("/agent/static/app.css")
    assert (ok.status, missing.status, nowhere.status, static.status) == (201, 404, 404, 200)
    for resp in (ok, missing, nowhere, static):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "same-origin"
    assert static.headers["Cache-Control"] == "public, max-age=300"
    assert "public" not in ok.headers.get("Cache-Control", "")
