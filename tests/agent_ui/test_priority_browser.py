"""In Chromium: an agent sets a conversation's priority with a reason, sees the new
priority and the entry in the timeline among the messages; a change made elsewhere (a
supervisor through the core) arrives live on `activity.appended`; and after the messages
are deleted the entries are still there."""

from __future__ import annotations

import functools

import pytest
import sqlalchemy as sa

from inbox import cases
from inbox.actions import run_case_op
from inbox.cases import Actor
from inbox.store import schema as t
from omnidesk.wiring import case_policies
from tests.agent_ui.browser import WATCH, Watch, sign_in_page
from tests.agent_ui.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


async def test_set_priority_with_a_reason_and_see_it_in_the_timeline(live) -> None:
    made = await live.conversation("inbox-a", text="Our shop is down", subject="Shop down")
    cid = made["conversation_id"]
    context = await live.browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_init_script(WATCH)
    page = await context.new_page()
    watch = Watch(page)
    await sign_in_page(page, live.base, "ann@a.test", PASSWORD)
    await page.goto(f"{live.base}/conversations/{cid}")
    await page.wait_for_selector("body[data-activity]")
    assert (await page.text_content("#conv-priority") or "").strip() == "normal"

    # without a reason the page asks for one and nothing is sent
    await page.select_option("#priority-level", "urgent")
    await page.click("#priority-form button[type=submit]")
    assert "Say why" in (await page.text_content("#priority-error") or "")

    await page.fill("#priority-reason", "the customer's shop is down")
    await page.click("#priority-form button[type=submit]")
    entry = page.locator("#timeline li.activity.act-priority")
    await entry.first.wait_for()
    text = await entry.first.text_content() or ""
    assert "Ann Agent" in text and "from normal to urgent" in text
    assert "the customer's shop is down" in text
    await page.locator("#conv-priority .pri-urgent").wait_for()  # (the page's CSP: no eval)
    # placed after the customer's message, which came first
    order = await page.eval_on_selector_all(
        "#timeline > li", "items => items.map(li => li.classList.contains('activity'))"
    )
    assert order.index(True) > order.index(False)

    # a supervisor's change through the core arrives live
    sue = live.people["supervisor"].id
    op = functools.partial(cases.set_priority, to="low", reason="fixed on their side")
    policies = case_policies(live.services.config)
    await run_case_op(live.services.store, live.services.bus, policies, cid, op, Actor.agent(sue))
    await entry.nth(1).wait_for()
    last = await entry.last.text_content() or ""
    assert "Sue Supervisor" in last and "from urgent to low" in last
    assert "fixed on their side" in last

    # the messages go; the log stays
    await live.store.write(
        lambda conn: conn.execute(sa.delete(t.messages).where(t.messages.c.conversation_id == cid))
    )
    await page.reload()
    await page.wait_for_selector("body[data-activity]")
    assert await page.locator("#timeline li.msg").count() == 0
    assert await entry.count() == 2
    assert watch.errors == [] and watch.csp_console() == []
    await context.close()
