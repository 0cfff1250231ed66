"""End to end in headless Chromium: two agents with different skills sign in; an API
message and a chat message arrive; each lands live with the agent who has the skill (the
real router decides); an agent replies and the customer's channel receives it; a transfer
moves the conversation live between the two browsers; "away" stops new assignments.
Screenshots of the queue and conversation pages go to test-artifacts/."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import aiohttp
import pytest

from inbox.store.agents import add as add_agent
from inbox.store.tokens import create as create_token
from inbox.types import Channel, InboundMessage, Role
from tests.agent_ui.browser import ARTIFACTS, WATCH, Watch, sign_in_page
from tests.agent_ui.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
CAPACITY = {"chat": 3, "email": 10, "sms": 5, "form": 10, "api": 10}


async def _agent(live, name, email, skills):
    from agent_ui.passwords import hash_password

    hashed = hash_password(PASSWORD)
    return await live.store.write(
        lambda c: add_agent(
            c,
            name=name,
            email=email,
            role=Role.AGENT,
            skills=skills,
            capacity=CAPACITY,
            teams=["inbox-a"],
            password_hash=hashed,
        )
    )


async def _browser_for(live, email):
    context = await live.browser.new_context(viewport={"width": 1280, "height": 860})
    await context.add_init_script(WATCH)
    page = await context.new_page()
    watch = Watch(page)
    await sign_in_page(page, live.base, email, PASSWORD)
    return context, page, watch


async def until(check, timeout=10.0):
    """Poll an async check (CSP forbids Playwright's eval-based wait_for_function)."""
    for _ in range(int(timeout / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def _has(page, selector, text):
    return text in (await page.text_content(selector) or "")


async def _set_presence(page, value):
    async with page.expect_response("**/agent/api/presence") as resp:
        await page.select_option("#presence", value)
    assert (await resp.value).ok


async def test_two_agents_work_the_queue_live(live):
    ARTIFACTS.mkdir(exist_ok=True)
    ann = await _agent(live, "Ann Billing", "ann.billing@a.test", {"billing": 8, "english": 9})
    await _agent(live, "Tom Technical", "tom.tech@a.test", {"technical": 9, "english": 7})
    token = await live.store.write(lambda c: create_token(c, "e2e"))

    ann_ctx, ann_page, ann_watch = await _browser_for(live, "ann.billing@a.test")
    tom_ctx, tom_page, tom_watch = await _browser_for(live, "tom.tech@a.test")
    await _set_presence(ann_page, "online")
    await _set_presence(tom_page, "online")
    await live.settle()

    # an API message needing billing: lands with Ann, live
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            f"{live.base}/api/v1/messages",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "sender": "carla@example.com",
                "name": "Carla Jones",
                "subject": "Double charge on my invoice",
                "inbox": "inbox-a",
                "channel": "email",
                "skills": ["billing"],
                "text": "I was charged twice for order 1042. Please refund one.",
            },
        )
        assert resp.status == 201, await resp.text()
        billing = (await resp.json())["conversation_id"]
    # a chat message needing technical: lands with Tom, live
    chat = await live.services.ingest(
        InboundMessage(
            channel=Channel.CHAT,
            external_id="chat-1",
            sender="visitor-7f3a",
            text="The app crashes when I log in",
            received_at=datetime.now(UTC),
            display_name="Dev Visitor",
            inbox="inbox-a",
            skills=("technical",),
        )
    )
    await live.settle()
    await ann_page.wait_for_selector(f'#mine li[data-id="{billing}"]', timeout=10_000)
    await tom_page.wait_for_selector(f'#mine li[data-id="{chat.conversation_id}"]', timeout=10_000)
    assert await ann_page.locator(f'#mine li[data-id="{chat.conversation_id}"]').count() == 0
    assert await tom_page.locator(f'#mine li[data-id="{billing}"]').count() == 0
    await ann_page.screenshot(path=str(ARTIFACTS / "queue-agent.png"), full_page=True)

    # Ann opens it (n: next conversation), replies; the email sender receives it
    await ann_page.keyboard.press("n")
    await ann_page.wait_for_url(f"**/conversations/{billing}")
    await ann_page.wait_for_selector("body[data-ready='1']")
    await ann_page.fill("#reply-text", "/gree")
    await ann_page.wait_for_selector("#canned-menu:not([hidden])")
    await ann_page.keyboard.press("Enter")
    assert (await ann_page.input_value("#reply-text")).startswith(
        "Hello Carla Jones, this is Ann Billing."
    )
    await ann_page.fill("#reply-text", "Sorry about that, Carla: the second charge is refunded.")
    await ann_page.keyboard.press("Control+Enter")
    for _ in range(100):
        if live.recorder.sent:
            break
        await asyncio.sleep(0.1)
    assert [(o.to, o.text, o.subject) for o in live.recorder.sent] == [
        (
            "carla@example.com",
            "Sorry about that, Carla: the second charge is refunded.",
            "Re: Double charge on my invoice",
        )
    ]
    await ann_page.wait_for_selector("#timeline .msg.outbound .status.st-sent", timeout=10_000)
    # a private note is shown, never delivered
    await ann_page.keyboard.press("Escape")
    await ann_page.locator("body").click(position={"x": 5, "y": 200})
    await ann_page.keyboard.press("p")
    await ann_page.fill("#reply-text", "Customer is a VIP; watch for more charges.")
    await ann_page.click("#send")
    await ann_page.wait_for_selector("#timeline .msg.note")
    await ann_page.screenshot(path=str(ARTIFACTS / "conversation.png"), full_page=True)
    await asyncio.sleep(0.5)
    assert len(live.recorder.sent) == 1

    # collision notice: Tom opens the same conversation; Ann sees him
    tom_view = await tom_ctx.new_page()
    await tom_view.goto(f"{live.base}/conversations/{billing}")
    await tom_view.wait_for_selector("body[data-ready='1']")
    await ann_page.wait_for_selector("#collision:not([hidden])")
    assert "Tom Technical is viewing here" in await ann_page.text_content("#collision")
    await tom_view.fill("#reply-text", "typing…")
    await until(lambda: _has(ann_page, "#collision", "typing a reply"))
    await tom_view.close()

    # Tom transfers his chat to an agent who lacks its skill: the router refuses, and says why
    # (then to the billing skill: back to the queue, and the router gives it to Ann, live)
    await tom_page.goto(f"{live.base}/conversations/{chat.conversation_id}")
    await tom_page.wait_for_selector("body[data-ready='1']")
    queue_ann = await ann_ctx.new_page()
    await queue_ann.goto(f"{live.base}/queue")
    await queue_ann.wait_for_selector("body[data-updated]")
    assert await queue_ann.locator(f'#mine li[data-id="{chat.conversation_id}"]').count() == 0
    queue_tom = await tom_ctx.new_page()
    await queue_tom.goto(f"{live.base}/queue")
    await queue_tom.wait_for_selector(f'#mine li[data-id="{chat.conversation_id}"]')
    await tom_page.select_option("#transfer-agent", str(ann.id))
    await tom_page.click("#transfer-form button[type=submit]")
    await until(lambda: _has(tom_page, "#transfer-error", "skills"))
    await tom_page.select_option("#transfer-agent", "")
    await tom_page.fill("#transfer-skills", "billing")
    await tom_page.click("#transfer-form button[type=submit]")
    await queue_ann.wait_for_selector(f'#mine li[data-id="{chat.conversation_id}"]', timeout=10_000)
    await queue_tom.wait_for_selector(
        f'#mine li[data-id="{chat.conversation_id}"]', state="detached", timeout=10_000
    )
    await until(lambda: _has(tom_page, "#conv-assignee", "Ann Billing"))

    # Tom goes away: a new technical conversation waits instead of landing with him
    await _set_presence(queue_tom, "away")
    await live.settle()
    later = await live.services.ingest(
        InboundMessage(
            channel=Channel.CHAT,
            external_id="chat-2",
            sender="visitor-99",
            text="Still crashing",
            received_at=datetime.now(UTC),
            display_name="Second Visitor",
            inbox="inbox-a",
            skills=("technical",),
        )
    )
    await live.settle()
    await queue_tom.wait_for_selector(
        f'#waiting tr[data-id="{later.conversation_id}"]', timeout=10_000
    )
    await asyncio.sleep(0.5)
    assert await queue_tom.locator(f'#mine li[data-id="{later.conversation_id}"]').count() == 0
    assignee = await live.store.read(
        lambda c: c.execute(
            __import__("sqlalchemy").text("SELECT assignee_id FROM conversations WHERE id = :i"),
            {"i": later.conversation_id},
        ).scalar()
    )
    assert assignee is None
    # back online: the router gives it to him, live
    await _set_presence(queue_tom, "online")
    await live.settle()
    await queue_tom.wait_for_selector(
        f'#mine li[data-id="{later.conversation_id}"]', timeout=10_000
    )

    # a supervisor's queue: all agents with presence and load; also at tablet width
    sup_ctx, sup_page, sup_watch = await _browser_for(live, "sue@sup.test")
    await sup_page.wait_for_selector("body[data-updated]")
    assert "Tom Technical" in await sup_page.text_content("#agents")
    await sup_page.screenshot(path=str(ARTIFACTS / "queue-supervisor.png"), full_page=True)
    await sup_page.set_viewport_size({"width": 820, "height": 1180})
    await sup_page.screenshot(path=str(ARTIFACTS / "queue-tablet.png"), full_page=True)
    await sup_page.goto(f"{live.base}/conversations/{billing}")
    await sup_page.wait_for_selector("body[data-updated]")
    await sup_page.screenshot(path=str(ARTIFACTS / "conversation-tablet.png"), full_page=True)
    await sup_page.keyboard.press("?")
    await sup_page.wait_for_selector("#help:not([hidden])")
    await sup_page.screenshot(path=str(ARTIFACTS / "help-overlay.png"))

    for w in (ann_watch, tom_watch, sup_watch):
        assert w.dialogs == [] and w.errors == [] and w.csp_console() == [], (w.errors, w.console)
    for ctx in (ann_ctx, tom_ctx, sup_ctx):
        for p in ctx.pages:
            assert await p.evaluate("window.__violations") == []
        await ctx.close()
    (ARTIFACTS / "live-test.json").write_text(json.dumps({"sent": len(live.recorder.sent)}))
