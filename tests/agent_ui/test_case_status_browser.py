"""Statuses in Chromium against a real `omnidesk serve` process (the sweeper runs as its
worker duty): a snooze set on the conversation page ends and the conversation is back in
the queue, live; a snooze that ends while the server is down fires at the first pass after
the restart; a solved conversation closes by itself after `auto_close_after`; an agent's
"needs help" reaches a signed-in supervisor's escalations page."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import expect

from tests.agent_ui.browser import ARGS, CHROMIUM, free_port, require_chromium, sign_in_page
from tests.agent_ui.conftest import EXTRA, PASSWORD, write_desk_config
from tests.conftest import SECRET
from tests.test_crash import wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CASES = """
[cases]
auto_close_after = "3s"
"""


def cli(config: str, *args: str) -> str:
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    done = subprocess.run(
        [sys.executable, "-m", "omnidesk.cli", "--config", config, *args],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = write_desk_config(tmp_path, EXTRA + CASES, self.port)
        self.proc: subprocess.Popen[bytes] | None = None

    def setup(self) -> dict[str, str]:
        cli(self.config, "migrate")
        people = (
            ("Ann Agent", "ann@a.test", "agent", "inbox-a"),
            ("Sue Supervisor", "sue@sup.test", "supervisor", "inbox-a"),
        )
        for name, email, role, teams in people:
            cli(self.config, "agent", "add", "--name", name, "--email", email, "--role", role,
                "--teams", teams, "--capacity", "email:10,api:10", "--password", PASSWORD)  # fmt: skip
        token = cli(self.config, "token", "create", "browser-test").splitlines()[-1].strip()
        return {"Authorization": f"Bearer {token}"}

    async def start(self) -> None:
        env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
        with open(self.config + ".log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "omnidesk.cli", "--config", self.config, "serve"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        await wait_ready(self.base, self.proc, self.config + ".log")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(self.proc.wait, 30)
        self.proc = None


@pytest.fixture
async def served(tmp_path):
    require_chromium()
    from playwright.async_api import async_playwright

    server = Server(tmp_path)
    server.token = server.setup()
    await server.start()
    pw = await async_playwright().start()
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        yield server, browser
    finally:
        await browser.close()
        await pw.stop()
        await server.stop()


async def api(server, method: str, path: str, body=None):
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, server.base + path, json=body, headers=server.token
        ) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json()


async def customer_writes(server, sender: str) -> int:
    body = {"sender": sender, "text": "Hello, help please", "inbox": "inbox-a"}
    return int((await api(server, "POST", "/api/v1/messages", body))["conversation_id"])


async def in_queue(server, cid: int) -> bool:
    queue = await api(server, "GET", "/api/v1/queue")
    return cid in [row["conversation_id"] for row in queue["data"]]


async def open_page(page, server, cid: int) -> None:
    await page.goto(f"{server.base}/conversations/{cid}")
    await page.wait_for_selector("body[data-ready='1']")


async def snooze(page, seconds: float) -> None:
    await page.select_option("#status-select", "snoozed")
    # datetime-local is the browser's local time: the page's own clock fills it
    await page.evaluate(
        """(s) => {
          const d = new Date(Date.now() + s * 1000);
          const p = (n) => String(n).padStart(2, "0");
          document.getElementById("snooze-until").value =
            `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
            `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
        }""",
        seconds,
    )
    async with page.expect_response(lambda r: r.url.endswith("/status")) as answer:
        await page.click("#status-form button[type=submit]")
    response = await answer.value
    assert response.status == 200, await response.text()
    await expect(page.locator("#conv-status")).to_have_text("snoozed", timeout=15_000)


async def test_snooze_ends_live_and_across_a_restart_and_solved_closes(served):
    server, browser = served
    page = await browser.new_page()
    await sign_in_page(page, server.base, "ann@a.test", PASSWORD)
    await page.select_option("#presence", "away")  # nobody takes what comes back
    first = await customer_writes(server, "una@example.com")
    await open_page(page, server, first)

    await snooze(page, 3)
    assert not await in_queue(server, first)
    assert await page.text_content("#conv-snoozed") != "—"
    # the sweeper wakes it; the page hears the status change live
    await expect(page.locator("#conv-status")).to_have_text("open", timeout=15_000)
    assert await in_queue(server, first)

    second = await customer_writes(server, "vic@example.com")
    await open_page(page, server, second)
    await snooze(page, 4)
    await server.stop()
    await asyncio.sleep(5)  # the snooze ends while nothing runs
    await server.start()
    for _ in range(100):
        if await in_queue(server, second):
            break
        await asyncio.sleep(0.1)
    assert await in_queue(server, second)
    await open_page(page, server, second)
    assert (await page.text_content("#conv-status")).strip() == "open"

    await page.select_option("#status-select", "solved")
    await page.click("#status-form button[type=submit]")
    await expect(page.locator("#conv-status")).to_have_text("resolved", timeout=15_000)
    await expect(page.locator("#conv-status")).to_have_text("closed", timeout=15_000)
    await page.close()


async def test_needs_help_reaches_a_signed_in_supervisor(served):
    server, browser = served
    cid = await customer_writes(server, "wes@example.com")
    sup = await (await browser.new_context()).new_page()
    await sign_in_page(sup, server.base, "sue@sup.test", PASSWORD)
    await sup.goto(f"{server.base}/escalations")
    await sup.wait_for_selector("body[data-ready='1']")
    assert await sup.query_selector(f"tr[data-id='{cid}']") is None

    agent = await (await browser.new_context()).new_page()
    await sign_in_page(agent, server.base, "ann@a.test", PASSWORD)
    assert (await agent.goto(f"{server.base}/escalations")).status == 403
    await open_page(agent, server, cid)
    await agent.fill("#escalate-note", "customer threatens to cancel")
    await agent.click("#escalate")
    await expect(agent.locator("#conv-escalated")).to_have_text("yes", timeout=15_000)
    row = await sup.wait_for_selector(f"tr[data-id='{cid}']", timeout=15_000)
    assert "customer threatens to cancel" in await row.text_content()
