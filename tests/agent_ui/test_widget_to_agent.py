"""As people use it: `omnidesk serve` running, a customer chats through the widget on
another site, the online agent gets the conversation live in the workspace, answers, and
the customer sees the answer in the widget. Real processes, real Chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent_ui.browser import ARGS, ARTIFACTS, CHROMIUM, require_chromium, sign_in_page
from tests.conftest import SECRET, write_config
from tests.test_crash import free_port, omnidesk, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


async def test_widget_chat_reaches_the_online_agent_and_the_answer_comes_back(tmp_path):
    require_chromium()
    from playwright.async_api import async_playwright

    http, demo = free_port(), free_port()
    base = f"http://127.0.0.1:{http}"
    extra = (
        f'[server]\nport = {http}\npublic_url = "{base}"\n'
        f"[webchat]\ndemo_port = {demo}\n"
        f'[webchat.widgets.shop]\nallowed_origins = ["http://127.0.0.1:{demo}"]\n'
        'greeting = "Hi! How can we help?"\nprechat_fields = []\n'
    )
    config = write_config(tmp_path, extra).replace("\\", "/")
    cfg = Path(config)
    cfg.write_text(cfg.read_text().replace("[server]\nport = 0\n", "", 1))
    omnidesk("migrate", config=config)
    omnidesk(
        "agent",
        "add",
        "--name",
        "Ada Lovelace",
        "--email",
        "ada@desk.test",
        "--password",
        "correct horse battery",
        "--skills",
        "english:9",
        config=config,
    )
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    with open(config + ".log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omnidesk.cli", "--config", config, "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        await wait_ready(base, proc, config + ".log")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            agent = await (
                await browser.new_context(viewport={"width": 1280, "height": 800})
            ).new_page()
            await sign_in_page(agent, base, "ada@desk.test", "correct horse battery")
            async with agent.expect_response("**/agent/api/presence") as answered:
                await agent.select_option("#presence", "online")
            assert (await answered.value).ok

            customer = await (
                await browser.new_context(viewport={"width": 1280, "height": 800})
            ).new_page()
            errors: list[str] = []
            customer.on("pageerror", lambda exc: errors.append(str(exc)))
            await customer.goto(f"http://127.0.0.1:{demo}/")
            widget = customer.locator("omnidesk-chat")
            await widget.locator("button.l").click()
            await widget.get_by_text("Hi! How can we help?").wait_for()
            await widget.get_by_text("We are online").wait_for()
            await widget.locator("textarea#odm").fill("My parcel 1042 has not arrived")
            await widget.locator("textarea#odm").press("Enter")
            await widget.locator(".m.v .s", has_text="Sent").wait_for()

            # the router gives it to the only online agent, live
            mine = agent.locator("#mine li[data-id]")
            await mine.first.wait_for(timeout=15_000)
            conversation_id = await mine.first.get_attribute("data-id")
            await agent.goto(f"{base}/conversations/{conversation_id}")
            await agent.wait_for_selector("body[data-ready='1']")
            assert "My parcel 1042 has not arrived" in (await agent.text_content("#timeline") or "")
            await agent.fill(
                "#reply-text", "Sorry about that! It ships today: https://track.example/1042"
            )
            await agent.keyboard.press("Control+Enter")

            # the customer sees the answer, with the agent's name, and a safe link
            bubble = widget.locator(".m", has_text="It ships today")
            await bubble.wait_for(timeout=15_000)
            assert "Ada Lovelace" in (await bubble.text_content() or "")
            link = bubble.locator("a")
            assert await link.get_attribute("href") == "https://track.example/1042"
            assert "noopener" in (await link.get_attribute("rel") or "")
            # the widget was open: its read receipt reaches the agent's timeline live
            await agent.wait_for_selector("#timeline .msg.outbound .status.st-read", timeout=15_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await customer.screenshot(path=str(ARTIFACTS / "widget-to-agent-customer.png"))
            await agent.screenshot(path=str(ARTIFACTS / "widget-to-agent-agent.png"))
            assert errors == []
            await browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
