"""Ownership in headless Chromium (issue 17): an offer shows its countdown and Accept
keeps it past the timeout; an offer not accepted goes back to the queue with a notice to
the agent; a reply to a waiting conversation claims it; Take next (Shift+N) opens the
best waiting conversation, taken."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from inbox.store import schema as t
from tests.agent_ui.test_live import _agent, _browser_for, _set_presence, until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


async def _row(live, cid):
    c = t.conversations.c
    return await live.store.read(
        lambda conn: conn.execute(sa.select(c.assignee_id, c.accepted_at).where(c.id == cid)).one()
    )


async def _message(live, n):
    return (await live.conversation("inbox-a", sender=f"owner{n}@example.com"))["conversation_id"]


async def test_accept_take_back_claim_by_reply_and_take_next(live_offers):
    live = live_offers
    ann = (await _agent(live, "Ann Owner", "ann.owner@a.test", {})).id
    ctx, page, watch = await _browser_for(live, "ann.owner@a.test")
    await _set_presence(page, "online")
    await live.settle()

    # an offer: countdown, Accept, still hers after the timeout
    kept = await _message(live, 1)
    assert (await _row(live, kept)).assignee_id == ann
    await page.goto(f"{live.base}/conversations/{kept}")
    await page.wait_for_selector("#accept:not([hidden])")
    assert "left to accept" in (await page.text_content("#accept-countdown") or "")
    await page.keyboard.press("a")
    await page.wait_for_selector("#accept", state="hidden")
    assert "Yours." in (await page.text_content("#holder") or "")

    # an offer she leaves alone: taken back, and she is told
    lost = await _message(live, 2)
    assert (await _row(live, lost)).assignee_id == ann
    await page.goto(f"{live.base}/queue")  # the offer has its Accept button in the queue
    await page.wait_for_selector(f'#mine li[data-id="{lost}"] button.accept', timeout=10_000)
    await page.wait_for_selector("#ownership-notice", timeout=15_000)
    assert f"#{lost} went back to the queue" in (await page.text_content("#ownership-notice"))
    row = await _row(live, kept)
    assert row.assignee_id == ann and row.accepted_at is not None  # the accepted one stayed

    # away: nothing is offered; a reply to a waiting conversation claims it
    await _set_presence(page, "away")
    waiting = await _message(live, 3)
    assert (await _row(live, waiting)).assignee_id is None
    await page.goto(f"{live.base}/conversations/{waiting}")
    await page.wait_for_selector("#claim:not([hidden])")
    await page.fill("#reply-text", "I will take care of this.")
    async with page.expect_response(f"**/conversations/{waiting}/reply") as resp:
        await page.click("#send")
    assert (await resp.value).ok

    async def claimed() -> bool:
        got = await _row(live, waiting)
        return got.assignee_id == ann and got.accepted_at is not None

    await until(claimed)

    # take next from the queue: the router's pick, hers and accepted
    fresh = await _message(live, 4)
    assert (await _row(live, fresh)).assignee_id is None
    await page.goto(f"{live.base}/queue")
    await page.wait_for_selector("body[data-ready='1']")
    await page.keyboard.press("Shift+N")
    await page.wait_for_url("**/conversations/*")
    taken = int(page.url.rsplit("/", 1)[1])
    # the one taken back waits ahead of fresh ones once she is no longer excluded from it
    assert taken in (lost, fresh)
    got = await _row(live, taken)
    assert got.assignee_id == ann and got.accepted_at is not None
    assert not watch.errors and not watch.csp_console()
    await ctx.close()
