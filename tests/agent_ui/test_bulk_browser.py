"""In Chromium: a supervisor selects 50 waiting conversations (a click, a shift-click,
the keyboard) and solves them in one bulk action; the bar shows the result per item."""

from __future__ import annotations

import pytest

from inbox.cases import CaseStatus
from inbox.store import cases
from tests.agent_ui.test_live import _browser_for, _has, _set_presence, until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

N = 50


async def test_bulk_solve_of_50_conversations(live):
    context, page, _ = await _browser_for(live, live.people["supervisor"].email)
    await _set_presence(page, "away")  # nobody takes them: all 50 wait
    ids = []
    for n in range(N):
        inbox = "inbox-a" if n % 2 else "inbox-b"
        made = await live.conversation(inbox, sender=f"bulk{n}@example.com", subject=f"Q {n}")
        ids.append(made["conversation_id"])
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    rows = page.locator("#waiting tr")

    async def rows_are(n: int) -> bool:
        return await rows.count() == n

    await until(lambda: rows_are(N))
    # the keyboard: j moves to the first row, x selects it, x again lets it go
    await page.locator("body").press("j")
    await page.locator("body").press("x")
    await until(lambda: _has(page, "#bulk-count", "1 selected"))
    await page.locator("body").press("x")
    await until(lambda: _has(page, "#bulk-count", "0 selected"))
    # a click on the first, a shift-click on the last: all 50
    await rows.nth(0).locator("input.bulk-pick").click()
    await rows.nth(N - 1).locator("input.bulk-pick").click(modifiers=["Shift"])
    assert await page.text_content("#bulk-count") == f"{N} selected"
    await page.select_option("#bulk-action", "solve")
    async with page.expect_response("**/agent/api/conversations/bulk") as resp:
        await page.click("#bulk-apply")
    assert (await resp.value).ok
    await until(lambda: _has(page, "#bulk-result", f"{N} done, 0 refused"))
    solved = await live.store.read(lambda c: cases.load_cases(c, ids))
    assert len(solved) == N and {case.status for case in solved.values()} == {CaseStatus.SOLVED}
    await until(lambda: rows_are(0))
    await context.close()
