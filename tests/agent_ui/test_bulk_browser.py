"""In Chromium: a supervisor selects 50 waiting conversations (a click, a shift-click,
the keyboard) and solves them in one bulk action; the bar shows the result per item."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from inbox.cases import CaseStatus
from inbox.store import cases
from inbox.types import Channel, InboundMessage
from tests.agent_ui.browser import WATCH, sign_in_page
from tests.agent_ui.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

N = 50


async def _set_presence(page, value):
    async with page.expect_response("**/agent/api/presence") as resp:
        await page.select_option("#presence", value)
    assert (await resp.value).ok


async def _text(page, selector):
    return await page.text_content(selector) or ""


async def until(check, timeout=15.0):
    for _ in range(int(timeout / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_bulk_solve_of_50_conversations(live):
    context = await live.browser.new_context(viewport={"width": 1400, "height": 900})
    await context.add_init_script(WATCH)
    page = await context.new_page()
    await sign_in_page(page, live.base, live.people["supervisor"].email, PASSWORD)
    await _set_presence(page, "away")  # nobody takes them: all 50 wait
    ids = []
    for n in range(N):
        result = await live.services.ingest(
            InboundMessage(
                channel=Channel.EMAIL,
                external_id=f"bulk-{n}",
                sender=f"bulk{n}@example.com",
                text=f"Question {n}",
                received_at=datetime.now(UTC),
                subject=f"Question {n}",
                inbox="inbox-a" if n % 2 else "inbox-b",
            )
        )
        ids.append(result.conversation_id)
    await live.settle()
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    rows = page.locator("#waiting tr")
    await until(lambda: _rows_are(rows, N))
    # the keyboard: j moves to the first row, x selects it, x again lets it go
    await page.locator("body").press("j")
    await page.locator("body").press("x")
    await until(lambda: _has(page, "#bulk-count", "1 selected"))
    await page.locator("body").press("x")
    await until(lambda: _has(page, "#bulk-count", "0 selected"))
    # a click on the first, a shift-click on the last: all 50
    await rows.nth(0).locator("input.bulk-pick").click()
    await rows.nth(N - 1).locator("input.bulk-pick").click(modifiers=["Shift"])
    assert await _text(page, "#bulk-count") == f"{N} selected"
    await page.select_option("#bulk-action", "solve")
    async with page.expect_response("**/agent/api/conversations/bulk") as resp:
        await page.click("#bulk-apply")
    assert (await resp.value).ok
    await until(lambda: _has(page, "#bulk-result", f"{N} done, 0 refused"))
    solved = await live.store.read(lambda c: cases.load_cases(c, ids))
    assert {case.status for case in solved.values()} == {CaseStatus.SOLVED}
    await until(lambda: _rows_are(rows, 0))
    await context.close()


async def _rows_are(rows, n):
    return await rows.count() == n


async def _has(page, selector, text):
    return text in await _text(page, selector)
