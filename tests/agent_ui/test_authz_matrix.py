"""The authorization matrix: every HTTP route and socket event of the agent workspace,
for anonymous, an agent of inbox A, an agent of inbox B, a supervisor and an admin.
Every cell is asserted, against a resource in inbox A and (where there is one) inbox B."""

from __future__ import annotations

import asyncio
import json

import socketio

from agent_ui.web import ROUTES
from channels.email.capture import MailFolder, captured_mail_dir
from inbox.store.files import FileStore
from inbox.types import Attachment

WHO = ["anon", "agent_a", "agent_b", "supervisor", "admin"]
SEES = {  # who may see a conversation/contact of each inbox
    "inbox-a": {"agent_a", "supervisor", "admin"},
    "inbox-b": {"agent_b", "supervisor", "admin"},
}


async def _conversation_with_file(desk, inbox: str) -> dict:
    files = FileStore(desk.services.config.data_dir / "attachments")
    key = await files.put(b"%PDF-1.4 invoice", filename="invoice.pdf")
    from datetime import UTC, datetime

    from inbox.types import Channel, InboundMessage

    msg = InboundMessage(
        channel=Channel.EMAIL,
        external_id=f"file-{inbox}",
        sender=f"files@{inbox}.test",
        text="see file",
        received_at=datetime.now(UTC),
        subject="Invoice",
        inbox=inbox,
        attachments=(Attachment("invoice.pdf", "application/pdf", 16, storage_key=key),),
    )
    result = await desk.services.ingest(msg)
    await desk.settle()
    return {
        "conversation_id": result.conversation_id,
        "contact_id": result.contact_id,
        "message_id": result.message_id,
    }


async def call(desk, who, method, path, body=None, form=False):
    headers = desk.headers(None if who == "anon" else who, json=not form)
    desk.client.session.cookie_jar.clear()
    if method == "GET":
        resp = await desk.client.get(path, headers=headers, allow_redirects=False)
    elif form:
        resp = await desk.client.post(path, data=body or {}, headers=headers, allow_redirects=False)
    else:
        resp = await desk.client.post(
            path, data=json.dumps(body or {}), headers=headers, allow_redirects=False
        )
    return resp


def expect(who: str, allowed: bool, *, anon: int, denied: int = 404, ok: int = 200) -> int:
    if who == "anon":
        return anon
    return ok if allowed else denied


async def test_http_authorization_matrix(desk):
    for who in WHO[1:]:
        await desk.login(who)
    fixtures = {
        inbox: await _conversation_with_file(desk, inbox) for inbox in ("inbox-a", "inbox-b")
    }
    from inbox.store import conversations
    from inbox.store.agents import add as add_agent
    from inbox.types import Role

    victim = await desk.store.write(
        lambda c: add_agent(
            c,
            name="Vic",
            email="vic@a.test",
            role=Role.AGENT,
            skills={},
            capacity={},
            teams=["inbox-a"],
        )
    )

    mail_key = MailFolder(captured_mail_dir(desk.services.config.data_dir)).put(
        "m1@desk.test", b"Subject: captured\r\n\r\nhello\r\n"
    )
    results: list[tuple[str, str, str, int, int]] = []  # (route, resource, who, expected, got)
    covered: set[tuple[str, str]] = set()

    async def cell(route, resource, who, expected, method, path, body=None, form=False):
        covered.add(route)
        resp = await call(desk, who, method, path, body, form)
        results.append((f"{route[0]} {route[1]}", resource, who, expected, resp.status))
        return resp

    for who in WHO:
        signed = who != "anon"
        await cell(("GET", "/login"), "-", who, 303 if signed else 200, "GET", "/login")
        await cell(
            ("POST", "/login"),
            "-",
            who,
            403,
            "POST",
            "/login",
            {"email": "x@y.z", "password": "p"},
            form=True,
        )
        await cell(
            ("GET", "/account/password"),
            "-",
            who,
            200 if signed else 303,
            "GET",
            "/account/password",
        )
        await cell(
            ("POST", "/account/password"),
            "-",
            who,
            400 if signed else 401,
            "POST",
            "/account/password",
            {"current": "wrong", "new": "whatever-long"},
            form=True,
        )
        await cell(("GET", "/queue"), "-", who, 200 if signed else 303, "GET", "/queue")
        await cell(
            ("GET", "/agent/api/queue"), "-", who, 200 if signed else 401, "GET", "/agent/api/queue"
        )
        await cell(
            ("POST", "/agent/api/presence"),
            "-",
            who,
            200 if signed else 401,
            "POST",
            "/agent/api/presence",
            {"presence": "away"},
        )
        await cell(
            ("POST", "/agent/api/sms-segments"),
            "-",
            who,
            200 if signed else 401,
            "POST",
            "/agent/api/sms-segments",
            {"text": "hello"},
        )
        await cell(
            ("POST", "/agent/api/agents/{id}/end-sessions"),
            "-",
            who,
            {"anon": 401, "admin": 200}.get(who, 403),
            "POST",
            f"/agent/api/agents/{victim.id}/end-sessions",
        )

        await cell(
            ("GET", "/escalations"),
            "-",
            who,
            {"anon": 303, "supervisor": 200, "admin": 200}.get(who, 403),
            "GET",
            "/escalations",
        )
        # captured outbound mail: admins only (signed out: the sign-in page)
        for route, path in (
            (("GET", "/admin/mail"), "/admin/mail"),
            (("GET", "/admin/mail/{key}"), f"/admin/mail/{mail_key}"),
        ):
            await cell(route, "-", who, {"anon": 303, "admin": 200}.get(who, 403), "GET", path)

        for inbox, fx in fixtures.items():
            sees = who in SEES[inbox]
            cid, contact, mid = fx["conversation_id"], fx["contact_id"], fx["message_id"]
            await cell(
                ("GET", "/conversations/{id}"),
                inbox,
                who,
                expect(who, sees, anon=303),
                "GET",
                f"/conversations/{cid}",
            )
            await cell(
                ("GET", "/contacts/{id}"),
                inbox,
                who,
                expect(who, sees, anon=303),
                "GET",
                f"/contacts/{contact}",
            )
            await cell(
                ("GET", "/agent/files/{message_id}/{index}"),
                inbox,
                who,
                expect(who, sees, anon=404),
                "GET",
                f"/agent/files/{mid}/0",
            )
            await cell(
                ("GET", "/agent/api/conversations/{id}"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "GET",
                f"/agent/api/conversations/{cid}",
            )
            base = f"/agent/api/conversations/{cid}"
            await cell(
                ("POST", "/agent/api/conversations/{id}/reply"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"{base}/reply",
                {"text": f"reply by {who}"},
            )
            await cell(
                ("POST", "/agent/api/conversations/{id}/note"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"{base}/note",
                {"text": f"note by {who}"},
            )
            await cell(
                ("POST", "/agent/api/conversations/{id}/tags"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"{base}/tags",
                {"tags": [who]},
            )
            await cell(
                ("GET", "/agent/api/conversations/{id}/activity"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "GET",
                f"{base}/activity",
            )
            await cell(
                ("POST", "/agent/api/conversations/{id}/priority"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"/agent/api/conversations/{(await desk.conversation(inbox))['conversation_id']}"
                "/priority",
                {"priority": "urgent", "reason": f"by {who}"},
            )
            await cell(
                ("POST", "/agent/api/contacts/{id}/notes"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"/agent/api/contacts/{contact}/notes",
                {"notes": f"by {who}"},
            )
            # fresh conversations for moves that change state
            fresh = await desk.conversation(inbox, sender=f"{who}-{inbox}-r@example.com")
            await cell(
                ("POST", "/agent/api/conversations/{id}/resolve"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"/agent/api/conversations/{fresh['conversation_id']}/resolve",
            )
            fresh = await desk.conversation(inbox, sender=f"{who}-{inbox}-o@example.com")
            await desk.store.write(
                lambda c, i=fresh["conversation_id"]: conversations.resolve(c, i)
            )
            await cell(
                ("POST", "/agent/api/conversations/{id}/reopen"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"/agent/api/conversations/{fresh['conversation_id']}/reopen",
            )
            fresh = await desk.conversation(inbox, sender=f"{who}-{inbox}-s@example.com")
            await cell(
                ("POST", "/agent/api/conversations/{id}/status"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"/agent/api/conversations/{fresh['conversation_id']}/status",
                {"status": "pending", "reason": f"asked by {who}"},
            )
            await cell(
                ("POST", "/agent/api/conversations/{id}/escalate"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"/agent/api/conversations/{fresh['conversation_id']}/escalate",
                {"note": f"help {who}"},
            )
            fresh = await desk.conversation(inbox, sender=f"{who}-{inbox}-t@example.com")
            await desk.settle()
            await cell(
                ("POST", "/agent/api/conversations/{id}/transfer"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"/agent/api/conversations/{fresh['conversation_id']}/transfer",
                {"skills": ["billing"]},
            )
            # bulk: the request is fine for anyone signed in; an unseen item is refused
            # in its own result (tests/agent_ui/test_bulk.py checks those)
            await cell(
                ("POST", "/agent/api/conversations/bulk"),
                inbox,
                who,
                expect(who, True, anon=401),
                "POST",
                "/agent/api/conversations/bulk",
                {"ids": [fresh["conversation_id"]], "action": "tag", "tags": ["bulk"]},
            )
            # ownership (issue 17): nobody offered it to them: 409; claim: theirs
            fresh = await desk.conversation(inbox, sender=f"{who}-{inbox}-c@example.com")
            base = f"/agent/api/conversations/{fresh['conversation_id']}"
            await cell(
                ("POST", "/agent/api/conversations/{id}/accept"),
                inbox,
                who,
                expect(who, sees, anon=401, ok=409),
                "POST",
                f"{base}/accept",
            )
            await cell(
                ("GET", "/agent/api/conversations/{id}/holder"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "GET",
                f"{base}/holder",
            )
            await cell(
                ("POST", "/agent/api/conversations/{id}/claim"),
                inbox,
                who,
                expect(who, sees, anon=401),
                "POST",
                f"{base}/claim",
            )
            one = await desk.conversation(inbox, sender=f"{who}-{inbox}-m1@example.com")
            two = await desk.conversation(inbox, sender=f"{who}-{inbox}-m2@example.com")
            merge_ok = who in {"supervisor", "admin"}
            await cell(
                ("POST", "/agent/api/contacts/{id}/merge"),
                inbox,
                who,
                {"anon": 401}.get(who, 200 if merge_ok else 403),
                "POST",
                f"/agent/api/contacts/{one['contact_id']}/merge",
                {"into": two["contact_id"]},
            )
        # take next: what waits in the agent's inboxes (the admin has none)
        await desk.settle()
        await cell(
            ("POST", "/agent/api/queue/next"),
            "-",
            who,
            {"anon": 401, "admin": 409}.get(who, 200),
            "POST",
            "/agent/api/queue/next",
        )
    # sign-out last: it ends the session
    for who in WHO:
        await cell(("POST", "/logout"), "-", who, 303 if who != "anon" else 401, "POST", "/logout")
        if who != "anon":
            after = await call(desk, who, "GET", "/agent/api/queue")
            results.append(("GET /agent/api/queue after logout", "-", who, 401, after.status))

    wrong = [r for r in results if r[3] != r[4]]
    assert not wrong, "\n".join(
        f"{r[0]} [{r[1]}] as {r[2]}: expected {r[3]}, got {r[4]}" for r in wrong
    )
    assert covered == {(m, p) for m, p, _ in ROUTES}, (
        "a route of agent_ui.web.ROUTES has no row in the matrix"
    )
    assert len(results) >= 5 * len(ROUTES)


async def test_queue_json_only_lists_what_each_one_may_see(desk):
    for who in WHO[1:]:
        await desk.login(who)
    a = await desk.conversation("inbox-a", name="Alpha Customer")
    b = await desk.conversation("inbox-b", name="Beta Customer")
    seen = {}
    for who in WHO[1:]:
        data = await (await call(desk, who, "GET", "/agent/api/queue")).json()
        seen[who] = ({r["id"] for r in data["waiting"]}, data["agents"] is not None)
    ids = {a["conversation_id"], b["conversation_id"]}
    assert seen == {
        "agent_a": ({a["conversation_id"]}, False),
        "agent_b": ({b["conversation_id"]}, False),
        "supervisor": (ids, True),
        "admin": (ids, True),
    }
    # and the pages: the other inbox's customer never appears in the HTML
    page_a = await (await call(desk, "agent_a", "GET", "/queue")).text()
    page_b = await (await call(desk, "agent_b", "GET", "/queue")).text()
    assert "Alpha Customer" in page_a and "Beta Customer" not in page_a
    assert "Beta Customer" in page_b and "Alpha Customer" not in page_b


async def _socket(desk, who, origin=None):
    client = socketio.AsyncClient(reconnection=False)
    events: list[tuple[str, dict]] = []
    for name in ("event", "assigned", "presence", "viewers"):
        client.on(name, lambda data, n=name: events.append((n, data)), namespace="/agent")
    url = str(desk.client.make_url("/")).rstrip("/")
    headers = {"Origin": origin or url}
    if who != "anon":
        headers["Cookie"] = f"od_session={desk.people[who].cookie}"
    try:
        await client.connect(
            url,
            namespaces=["/agent"],
            headers=headers,
            transports=["websocket"],
            socketio_path="socket.io",
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError:
        await client.disconnect()
        return None, events
    return client, events


async def test_socket_authorization_matrix(desk):
    for who in WHO[1:]:
        await desk.login(who)
    convs = {inbox: await desk.conversation(inbox) for inbox in ("inbox-a", "inbox-b")}
    results: list[tuple[str, str, str, object, object]] = []
    clients: dict[str, tuple[socketio.AsyncClient, list]] = {}
    try:
        # connect: refused without a session and from a foreign origin
        for who in WHO:
            client, events = await _socket(desk, who)
            results.append(("connect", "-", who, who != "anon", client is not None))
            if client is not None:
                clients[who] = (client, events)
        for who in WHO[1:]:
            evil, _ = await _socket(desk, who, origin="https://evil.example")
            results.append(("connect from a foreign Origin", "-", who, False, evil is not None))

        for inbox, fx in convs.items():
            cid = fx["conversation_id"]
            for who in WHO[1:]:
                client = clients[who][0]
                sees = who in SEES[inbox]
                typing_before = await client.call(
                    "typing",
                    {"conversation_id": cid, "typing": True},
                    namespace="/agent",
                    timeout=5,
                )
                results.append(("typing before view", inbox, who, False, typing_before["ok"]))
                view = await client.call(
                    "view", {"conversation_id": cid}, namespace="/agent", timeout=5
                )
                results.append(("view (room join)", inbox, who, sees, view["ok"]))
                typing = await client.call(
                    "typing",
                    {"conversation_id": cid, "typing": True},
                    namespace="/agent",
                    timeout=5,
                )
                results.append(("typing", inbox, who, sees, typing["ok"]))
                await client.call(
                    "typing",
                    {"conversation_id": cid, "typing": False},
                    namespace="/agent",
                    timeout=5,
                )
                leave = await client.call(
                    "leave", {"conversation_id": cid}, namespace="/agent", timeout=5
                )
                results.append(("leave", inbox, who, True, leave["ok"]))
            bad = await clients["agent_a"][0].call(
                "view", {"conversation_id": "1; drop"}, namespace="/agent", timeout=5
            )
            results.append(("view with a bad id", inbox, "agent_a", False, bad["ok"]))

        # server -> client: a note in each conversation notifies exactly who may see it
        for _, events in clients.values():
            events.clear()
        for fx in convs.values():
            cid = fx["conversation_id"]
            resp = await call(
                desk, "admin", "POST", f"/agent/api/conversations/{cid}/note", {"text": "x"}
            )
            assert resp.status == 200
        await desk.settle()
        await asyncio.sleep(0.3)
        for inbox, fx in convs.items():
            cid = fx["conversation_id"]
            for who in WHO[1:]:
                got = any(
                    n == "event" and d.get("conversation_id") == cid for n, d in clients[who][1]
                )
                results.append(("receives 'event'", inbox, who, who in SEES[inbox], got))
        # every notice carries ids only, never customer text
        for who in WHO[1:]:
            for name, data in clients[who][1]:
                if name == "event":
                    assert set(data) <= {
                        "name",
                        "conversation_id",
                        "message_id",
                        "agent_id",
                        "previous_agent_id",
                        "status",
                    }
        # presence: supervisors and admins (and the agent itself) hear it, other agents do not
        for _, events in clients.values():
            events.clear()
        resp = await call(desk, "agent_a", "POST", "/agent/api/presence", {"presence": "away"})
        assert resp.status == 200
        await desk.settle()
        await asyncio.sleep(0.3)
        for who in WHO[1:]:
            got = any(
                n == "presence" and d["agent_id"] == desk.people["agent_a"].id
                for n, d in clients[who][1]
            )
            results.append(("receives 'presence' of agent_a", "-", who, who != "agent_b", got))
        # a signed-out session's socket stops working
        await call(desk, "agent_b", "POST", "/logout")
        await asyncio.sleep(0.3)
        results.append(
            ("socket after logout", "-", "agent_b", False, clients["agent_b"][0].connected)
        )
    finally:
        for client, _ in clients.values():
            await client.disconnect()
    wrong = [r for r in results if r[3] != r[4]]
    assert not wrong, "\n".join(
        f"{r[0]} [{r[1]}] as {r[2]}: expected {r[3]}, got {r[4]}" for r in wrong
    )
    assert len(results) >= 50
