"""An agent sees, in headless Chromium, that a message was kept out of the conversation its
headers named: both render paths (the server's page and the live re-render from JSON)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from inbox.store import schema as t
from inbox.store.outbox import enqueue
from inbox.types import AuthorKind, Channel, InboundMessage
from tests.agent_ui.browser import WATCH, Watch, sign_in_page
from tests.agent_ui.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def mail(external_id: str, sender: str, text: str, **kw) -> InboundMessage:
    return InboundMessage(
        channel=Channel.EMAIL,
        external_id=external_id,
        sender=sender,
        text=text,
        received_at=datetime.now(UTC),
        inbox="inbox-a",
        **kw,
    )


async def test_the_refused_thread_is_flagged_in_the_workspace(live) -> None:
    services = live.services
    victim = await services.ingest(mail("v1@victim.example", "vic@victim.example", "Parcel?"))

    def answered(conn):
        mid = enqueue(
            conn,
            conversation_id=victim.conversation_id,
            text="It left.",
            author_kind=AuthorKind.AGENT,
        )
        conn.execute(
            sa.update(t.messages)
            .where(t.messages.c.id == mid)
            .values(provider_id="0123abcd@desk.test")
        )

    await services.store.write(answered)
    hijack = await services.ingest(
        mail(
            "h1@evil.example", "mallory@evil.example", "Refund me", in_reply_to="0123abcd@desk.test"
        )
    )
    assert hijack.conversation_id != victim.conversation_id
    await live.settle()

    context = await live.browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_init_script(WATCH)
    page = await context.new_page()
    watch = Watch(page)
    await sign_in_page(page, live.base, "sue@sup.test", PASSWORD)
    await page.goto(f"{live.base}/conversations/{hijack.conversation_id}")
    flag = page.locator("#timeline .thread-flag")
    # the server's page
    assert await flag.count() == 1
    assert f"conversation #{victim.conversation_id} of another contact" in (
        await flag.text_content() or ""
    )
    # the live re-render from JSON
    await page.wait_for_selector("body[data-updated]")
    assert await flag.count() == 1
    text = await flag.text_content() or ""
    assert f"conversation #{victim.conversation_id} of another contact" in text
    href = await flag.locator("a").get_attribute("href")
    assert href == f"/conversations/{victim.conversation_id}"
    assert await flag.is_visible()
    # the victim's conversation carries no flag and not the stranger's message
    await page.goto(f"{live.base}/conversations/{victim.conversation_id}")
    await page.wait_for_selector("body[data-updated]")
    assert await page.locator("#timeline .thread-flag").count() == 0
    assert "Refund me" not in (await page.locator("#timeline").text_content() or "")
    assert watch.errors == []
    await context.close()
