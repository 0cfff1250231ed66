"""In Chromium: an agent transfers a waiting conversation to another team from the
conversation page; the router gives it to that team's agent, whose queue shows it live."""

from __future__ import annotations

import pytest

from tests.agent_ui.test_live import _browser_for, _set_presence

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


async def test_transfer_to_a_team_reaches_that_teams_agent(live):
    ann_ctx, ann, _ = await _browser_for(live, live.people["agent_a"].email)
    await _set_presence(ann, "away")  # nobody of inbox-a takes it
    bob_ctx, bob, _ = await _browser_for(live, live.people["agent_b"].email)
    await _set_presence(bob, "online")
    cid = (await live.conversation("inbox-a", subject="Charged twice"))["conversation_id"]
    await ann.goto(f"{live.base}/conversations/{cid}")
    await ann.wait_for_selector("body[data-ready='1']")
    labels = await ann.locator("#transfer-queue option").all_text_contents()
    assert "inbox-b" in labels and "team inbox-b" in labels
    assert await bob.locator(f'#mine li[data-id="{cid}"]').count() == 0
    async with ann.expect_response("**/transfer") as resp:
        await ann.select_option("#transfer-queue", "team:inbox-b")
        await ann.click("#transfer-form button[type=submit]")
    assert (await resp.value).ok
    await bob.wait_for_selector(f'#mine li[data-id="{cid}"]', timeout=10_000)
    await ann_ctx.close()
    await bob_ctx.close()
