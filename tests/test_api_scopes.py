"""API token scopes: every /api/v1 operation for tokens of every kind (all inboxes or one,
read-write or read-only), against a conversation of inbox A and one of inbox B. Every cell
is asserted, and a refused call changes nothing."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from agent_ui import api as read_api
from agent_ui import routing_api
from channels import api as inbound_api
from inbox.store import schema as t
from inbox.store.agents import add as add_agent
from inbox.store.tokens import create as create_token
from inbox.types import Role
from routing.service import RouterService
from routing.settings import RoutingSettings

A, B = "inbox-a", "inbox-b"
TOKENS = {  # name -> (inboxes, read_only)
    "full": (None, False),
    "full_ro": (None, True),
    "a_rw": ([A], False),
    "a_ro": ([A], True),
    "ab_rw": ([A, B], False),
}
OPEN_ROUTES = {"/api/v1/openapi.json", "/healthz", "/readyz"}
SEQ = itertools.count()


def sees(token: str, inbox: str) -> bool:
    inboxes = TOKENS[token][0]
    return inboxes is None or inbox in inboxes


def writes(token: str) -> bool:
    return not TOKENS[token][1]


@pytest.fixture
async def scoped(service):
    services = service.services
    router = RouterService(services.store, services.bus, RoutingSettings(accept_timeout_seconds=0))
    await router.start()
    service.tokens = {}
    for name, (inboxes, read_only) in TOKENS.items():
        secret = await services.store.write(
            lambda c, n=name, i=inboxes, r=read_only: create_token(c, n, inboxes=i, read_only=r)
        )
        service.tokens[name] = {"Authorization": f"Bearer {secret}"}

    async def settle() -> None:
        for _ in range(3):
            await services.ingest.idle()
            await services.bus.drain()
            await services.pipeline.idle()
            await services.bus.drain()
            await router.idle()
            await services.bus.drain()

    agent = await services.store.write(
        lambda c: add_agent(
            c,
            name="Ada",
            email="ada@example.com",
            role=Role.AGENT,
            skills={},
            capacity={"api": 1000},
            teams=[A, B],
        )
    )
    resp = await service.put(
        f"/api/v1/agents/{agent.id}/presence",
        json={"presence": "away"},
        headers=service.tokens["full"],
    )
    assert resp.status == 200
    service.agent_id = agent.id
    service.settle = settle
    try:
        yield service
    finally:
        await router.close()


async def _conversation(service, inbox: str, *, assigned: bool = False) -> dict:
    n = next(SEQ)
    resp = await service.post(
        "/api/v1/messages",
        json={"sender": f"c{n}@{inbox}.test", "text": f"help {n}", "inbox": inbox},
        headers=service.tokens["full"],
    )
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    await service.settle()
    if assigned:
        path = f"/api/v1/conversations/{made['conversation_id']}/assign"
        body = {"agent_id": service.agent_id, "force": True}
        resp = await service.post(path, json=body, headers=service.tokens["full"])
        assert resp.status == 200, await resp.text()
    return made


async def _state(service) -> tuple:
    def read(c):
        convs = c.execute(
            sa.select(
                t.conversations.c.id, t.conversations.c.status, t.conversations.c.assignee_id
            ).order_by(t.conversations.c.id)
        ).all()
        msgs = c.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar_one()
        presence = c.execute(sa.select(t.agents.c.presence)).scalars().all()
        return tuple(map(tuple, convs)), msgs, tuple(presence)

    await service.settle()
    return await service.services.store.read(read)


# op -> (method, path template, needs an assigned conversation, body)
CONVERSATION_OPS = {
    ("GET", "/api/v1/conversations/{id}"): (False, None),
    ("GET", "/api/v1/contacts/{id}"): (False, None),
    ("POST", "/api/v1/conversations/{id}/assign"): (False, "agent"),
    ("POST", "/api/v1/conversations/{id}/unassign"): (True, None),
    ("POST", "/api/v1/conversations/{id}/transfer"): (True, {"skills": []}),
    ("POST", "/api/v1/conversations/{id}/resolve"): (False, None),
}


async def test_every_api_operation_for_every_scope(scoped):
    service = scoped
    results: list[tuple[str, str, str, int, int]] = []  # (op, target, token, expected, got)
    covered: set[tuple[str, str]] = set()
    unchanged: list[str] = []

    async def cell(route, target, token, expected, path, body=None):
        covered.add(route)
        before = await _state(service)
        resp = await service.request(
            route[0], path, json=body, headers=service.tokens[token], allow_redirects=False
        )
        results.append((f"{route[0]} {route[1]}", target, token, expected, resp.status))
        payload = await resp.json()
        if resp.status >= 400:
            assert set(payload["error"]) >= {"code", "message"}
            if await _state(service) != before:
                unchanged.append(f"{route} [{target}] as {token} changed something")
        return resp.status, payload

    for token in TOKENS:
        for target in (A, B):
            visible = sees(token, target)
            for (method, template), (assigned, body) in CONVERSATION_OPS.items():
                made = await _conversation(service, target, assigned=assigned)
                ident = made["contact_id"] if "contacts" in template else made["conversation_id"]
                write = method != "GET"
                if write and not writes(token):
                    expected = 403
                elif not visible:
                    expected = 404
                else:
                    expected = 200
                if body == "agent":
                    body = {"agent_id": service.agent_id, "force": True}
                status, payload = await cell(
                    (method, template.replace("{id}", "{id}")),
                    target,
                    token,
                    expected,
                    template.replace("{id}", str(ident)),
                    body,
                )
                if status == 404:
                    # exactly what a conversation or contact that does not exist gets
                    kind = "contact" if "contacts" in template else "conversation"
                    assert payload == {
                        "error": {"code": "not_found", "message": f"no {kind} {ident}"}
                    }

            # post a message into this inbox
            expected = 403 if not writes(token) or not visible else 201
            n = next(SEQ)
            status, payload = await cell(
                ("POST", "/api/v1/messages"),
                target,
                token,
                expected,
                "/api/v1/messages",
                {"sender": f"p{n}@example.com", "text": "hello", "inbox": target},
            )
            if status == 403 and writes(token):
                assert payload["error"]["field"] == "inbox"
                assert target in payload["error"]["message"]
            # a filter naming the inbox
            status, payload = await cell(
                ("GET", "/api/v1/conversations"),
                target,
                token,
                200 if visible else 403,
                f"/api/v1/conversations?inbox={target}&limit=200",
            )
            if status == 200:
                assert payload["data"] and {c["inbox"] for c in payload["data"]} == {target}

        # a message naming no inbox: only a token for every inbox may (it goes to "default")
        n = next(SEQ)
        no_inbox = 201 if writes(token) and TOKENS[token][0] is None else 403
        status, payload = await cell(
            ("POST", "/api/v1/messages"),
            "none",
            token,
            no_inbox,
            "/api/v1/messages",
            {"sender": f"p{n}@example.com", "text": "hello"},
        )
        if status == 403 and writes(token):
            assert "name one in 'inbox'" in payload["error"]["message"]
        # lists: only what the token sees, and all of that
        await service.settle()
        for route, path, key in (
            (("GET", "/api/v1/conversations"), "/api/v1/conversations?limit=200", "inbox"),
            (("GET", "/api/v1/queue"), "/api/v1/queue?limit=1000", "inbox"),
        ):
            status, payload = await cell(route, "-", token, 200, path)
            got = {row[key] for row in payload["data"]}
            wanted = {i for i in (A, B) if sees(token, i)}
            assert wanted <= got and got <= wanted | {"default"} - (
                set() if TOKENS[token][0] is None else {"default"}
            ), (token, route, got)
        status, payload = await cell(("GET", "/api/v1/agents"), "-", token, 200, "/api/v1/agents")
        assert [a["id"] for a in payload["data"]] == [service.agent_id]
        await cell(
            ("PUT", "/api/v1/agents/{id}/presence"),
            "-",
            token,
            200 if writes(token) and TOKENS[token][0] is None else 403,
            f"/api/v1/agents/{service.agent_id}/presence",
            {"presence": "away"},
        )

    wrong = [r for r in results if r[3] != r[4]]
    assert not wrong, "\n".join(
        f"{r[0]} [{r[1]}] as {r[2]}: expected {r[3]}, got {r[4]}" for r in wrong
    )
    assert not unchanged, "\n".join(unchanged)
    every = {
        (r.method, r.path)
        for r in (*read_api.routes(), *routing_api.routes(), *inbound_api.routes())
        if r.path not in OPEN_ROUTES
    }
    assert covered == every, f"API routes with no row in the matrix: {every - covered}"
    # and the OpenAPI document lists every answer the matrix saw
    doc = await (await service.get("/api/v1/openapi.json")).json()
    assert "read-only" in doc["components"]["securitySchemes"]["bearer"]["description"]
    undocumented = {
        (op, got)
        for op, _target, _token, _expected, got in results
        if str(got) not in doc["paths"][op.split()[1]][op.split()[0].lower()]["responses"]
    }
    assert not undocumented, undocumented


async def test_a_scoped_token_sees_an_agent_of_its_teams_only(scoped):
    service = scoped
    other = await service.services.store.write(
        lambda c: add_agent(
            c,
            name="Bob",
            email="bob@example.com",
            role=Role.AGENT,
            skills={},
            capacity={"api": 5},
            teams=[B],
        )
    )
    ids = {}
    for token in ("full", "a_rw"):
        resp = await service.get("/api/v1/agents", headers=service.tokens[token])
        ids[token] = {a["id"] for a in (await resp.json())["data"]}
    assert ids == {"full": {service.agent_id, other.id}, "a_rw": {service.agent_id}}


async def test_a_contact_is_seen_with_the_conversations_of_the_tokens_inboxes(scoped):
    service = scoped
    a = await _conversation(service, A)
    # the same customer writes to inbox B
    resp = await service.post(
        "/api/v1/messages",
        json={"sender": f"c{next(SEQ) - 1}@{A}.test", "text": "and B", "inbox": B},
        headers=service.tokens["full"],
    )
    assert resp.status == 201
    b = await resp.json()
    assert b["contact_id"] == a["contact_id"]
    seen = {}
    for token in ("full", "a_rw"):
        resp = await service.get(
            f"/api/v1/contacts/{a['contact_id']}", headers=service.tokens[token]
        )
        seen[token] = {c["inbox"] for c in (await resp.json())["conversations"]}
    assert seen == {"full": {A, B}, "a_rw": {A}}


async def test_a_token_cannot_write_into_another_inboxs_conversation_by_threading(scoped):
    """A token posting into inbox B as a customer of inbox A, even naming A's message in
    in_reply_to, starts a conversation in B: A's conversation gets nothing."""
    service = scoped
    sender = f"victim{next(SEQ)}@example.com"
    resp = await service.post(
        "/api/v1/messages",
        json={"sender": sender, "text": "my order", "inbox": A, "external_id": "a-first"},
        headers=service.tokens["full"],
    )
    first = await resp.json()
    b_token = {"Authorization": service.tokens["ab_rw"]["Authorization"]}
    for extra in ({}, {"in_reply_to": "a-first"}):
        resp = await service.post(
            "/api/v1/messages",
            json={"sender": sender, "text": "from B", "inbox": B, **extra},
            headers=b_token,
        )
        assert resp.status == 201, await resp.text()
        got = await resp.json()
        assert got["conversation_id"] != first["conversation_id"], extra
    conv = await service.get(
        f"/api/v1/conversations/{first['conversation_id']}", headers=service.tokens["full"]
    )
    assert [m["text"] for m in (await conv.json())["messages"]] == ["my order"]


async def test_a_key_replayed_from_another_inbox_reveals_nothing(scoped):
    service = scoped
    body = {"sender": f"k{next(SEQ)}@example.com", "text": "first", "inbox": B}
    key = {"Idempotency-Key": f"key-{next(SEQ)}"}
    first = await service.post(
        "/api/v1/messages", json=body, headers={**service.tokens["full"], **key}
    )
    assert first.status == 201
    made = await first.json()
    again = await service.post(
        "/api/v1/messages", json={**body, "inbox": A}, headers={**service.tokens["a_rw"], **key}
    )
    text = await again.text()
    assert again.status == 409, text
    assert str(made["conversation_id"]) not in text and str(made["message_id"]) not in text
    # a token that sees the first message's inbox gets the first result, as before
    same = await service.post(
        "/api/v1/messages", json=body, headers={**service.tokens["ab_rw"], **key}
    )
    assert same.status == 200 and (await same.json())["message_id"] == made["message_id"]
