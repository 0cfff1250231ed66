"""The queue page with 1,000 waiting conversations, measured in Chromium: page weight,
time to interactive, long tasks, frame gaps while the wait/SLA clocks tick, and a live
re-render. Figures go to test-artifacts/queue-perf.json."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from inbox.store import schema as t
from tests.agent_ui.browser import ARTIFACTS, WATCH, Watch, sign_in_page
from tests.agent_ui.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
N = 1000

PERF = """
window.__longtasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longtasks.push({start: e.startTime, duration: e.duration});
  }).observe({type: 'longtask', buffered: true});
} catch (e) {}
new MutationObserver(() => {
  if (document.body && document.body.dataset.ready === '1' && !window.__readyAt) window.__readyAt = performance.now();
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-ready']});
"""

FRAMES = """
() => new Promise((resolve) => {
  const gaps = []; let last = performance.now(); const end = last + 3000;
  function frame(now) { gaps.push(now - last); last = now; if (now < end) requestAnimationFrame(frame); else resolve(gaps); }
  requestAnimationFrame(frame);
})
"""

# how many waiting rows' wait clocks change at the next tick of the clock: rows are found
# by id each time (a live re-render may replace a row's element); polled for up to 5 s, as
# timers run late on a loaded machine; with no change, what the first row shows is returned
TICKED = """
() => new Promise((resolve) => {
  const text = () => new Map([...document.querySelectorAll('#waiting tr')].map((tr) => [tr.dataset.id, tr.cells[6].textContent]));
  const before = text(); const started = performance.now();
  (function poll() {
    const now = text();
    const changed = [...now].filter(([id, t]) => before.has(id) && before.get(id) !== t).length;
    if (changed || performance.now() - started > 5000) {
      const first = document.querySelector('#waiting tr');
      resolve({changed, first: first && [first.dataset.since, first.cells[6].textContent]});
    } else setTimeout(poll, 100);
  })();
})
"""


def _fill(conn, n: int) -> None:
    now = datetime.now(UTC)
    priorities = ["urgent", "high", "normal", "low"]
    channels = ["email", "chat", "sms", "form", "api"]
    contact_ids = (
        conn.execute(
            sa.insert(t.contacts).returning(t.contacts.c.id),
            [
                {
                    "name": f"Customer {i:04d}",
                    "attributes": {},
                    "tags": [],
                    "notes": "",
                    "created_at": now,
                }
                for i in range(n)
            ],
        )
        .scalars()
        .all()
    )
    conn.execute(
        sa.insert(t.conversations),
        [
            {
                "contact_id": cid,
                "channel": channels[i % 5],
                "inbox": "inbox-a" if i % 2 else "inbox-b",
                "status": "open",
                "priority": priorities[i % 4],
                "subject": f"Order {10000 + i} has not arrived yet",
                "required_skills": ["billing", "english"][: i % 3],
                "token": f"perf-{i}",
                "tags": [],
                "created_at": now,
                "last_message_at": now,
                "waiting_since": now
                - timedelta(seconds=3 * i),  # all under an hour: clocks show seconds
            }
            for i, cid in enumerate(contact_ids)
        ],
    )


async def test_queue_page_with_1000_waiting(live):
    ARTIFACTS.mkdir(exist_ok=True)
    await live.store.write(lambda c: _fill(c, N))
    context = await live.browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_init_script(WATCH + PERF)
    page = await context.new_page()
    watch = Watch(page)
    await sign_in_page(page, live.base, "sue@sup.test", PASSWORD)
    # a cold load of the queue page, measured
    await page.goto(f"{live.base}/queue")
    await page.wait_for_selector("body[data-ready='1']")
    await page.wait_for_selector("body[data-updated]")  # and one live re-render from JSON
    assert await page.locator("#waiting tr").count() == N
    nav = await page.evaluate("""() => {
      const n = performance.getEntriesByType('navigation')[0];
      const res = performance.getEntriesByType('resource');
      const sum = (k) => res.reduce((a, r) => a + (r[k] || 0), 0);
      return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd, ready: window.__readyAt,
              html_bytes: n.encodedBodySize, html_transfer: n.transferSize,
              assets_bytes: sum('encodedBodySize'), assets: res.map(r => [r.name.split('/').pop(), r.encodedBodySize])};
    }""")
    gaps = await page.evaluate(FRAMES)  # 3 s of the 1 s wait/SLA tick over 1,000 rows
    # a live update: a new conversation arrives, the page re-reads and re-renders 1,001 rows
    before = await page.get_attribute("body", "data-updated")
    started = time.perf_counter()
    await live.conversation("inbox-a", name="Latecomer")
    await page.wait_for_selector(f"body:not([data-updated='{before}'])")
    rerender_ms = (time.perf_counter() - started) * 1000
    assert await page.locator("#waiting tr").count() == N + 1
    long_tasks = await page.evaluate("window.__longtasks")
    await page.screenshot(path=str(ARTIFACTS / "queue-1000.png"))
    figures = {
        "rows": N,
        "html_kb": round(nav["html_bytes"] / 1024, 1),
        "assets_kb": round(nav["assets_bytes"] / 1024, 1),
        "page_weight_kb": round((nav["html_bytes"] + nav["assets_bytes"]) / 1024, 1),
        "assets": nav["assets"],
        "dom_content_loaded_ms": round(nav["dcl"]),
        "load_ms": round(nav["load"]),
        "time_to_interactive_ms": round(nav["ready"]),
        "longest_task_ms": round(max((x["duration"] for x in long_tasks), default=0)),
        "long_tasks": len(long_tasks),
        "max_frame_gap_ms_while_ticking": round(max(gaps), 1),
        "frames_in_3s": len(gaps),
        "live_rerender_ms": round(rerender_ms),
    }
    ticked = await page.evaluate(TICKED)
    figures["rows_changed_per_tick"] = ticked["changed"]
    (ARTIFACTS / "queue-perf.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    # The times above are figures for the README, not assertions: on this 2-core machine
    # they swing with its load (time to interactive 504 ms quiet, 2,957 ms while six test
    # processes ran beside it; longest task 120-638 ms), so no bound separates a regression
    # from a busy machine. What is asserted is the design that keeps the page smooth: the
    # wait/SLA clocks touch only the rows on screen, not all 1,000 each second (a per-second
    # update of every row gave a 633 ms frame gap).
    assert ticked["changed"] > 0, (
        f"the clocks do not tick: first row (since, wait) {ticked['first']}"
    )
    assert ticked["changed"] < 200, ticked
    assert watch.errors == [] and watch.csp_console() == []
    await context.close()
