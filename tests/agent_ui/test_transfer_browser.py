"""In Chromium: an agent transfers a waiting conversation to another team from the
conversation page; the router gives it to that team's agent, whose queue shows it live."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inbox.types import Channel, InboundMessage
from tests.agent_ui.browser import WATCH, sign_in_page
from tests.agent_ui.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


async def _page_for(live, email):
    context = await live.browser.new_context(viewport={"width": 1280, "height": 860})
    await context.add_init_script(WATCH)
    page = await context.new_page()
    await sign_in_page(page, live.base, email, PASSWORD)
    return context, page


async def _set_presence(page, value):
    async with page.expect_response("**/agent/api/presence") as resp:
        await page.select_option("#presence", value)
    assert (await resp.value).ok


async def test_transfer_to_a_team_reaches_that_teams_agent(live):
    ann_ctx, ann = await _page_for(live, live.people["agent_a"].email)
    await _set_presence(ann, "away")  # nobody of inbox-a takes it
    bob_ctx, bob = await _page_for(live, live.people["agent_b"].email)
    await _set_presence(bob, "online")
    result = await live.services.ingest(
        InboundMessage(
            channel=Channel.EMAIL,
            external_id="transfer-team-1",
            sender="carla@example.com",
            text="My card was charged twice",
            received_at=datetime.now(UTC),
            subject="Charged twice",
            inbox="inbox-a",
        )
    )
    cid = result.conversation_id
    await live.settle()
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
