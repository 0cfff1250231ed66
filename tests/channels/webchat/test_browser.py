"""End to end in real headless Chromium: a host page on another origin embeds the widget,
a customer chats, an agent reply appears, the server restarts, the conversation goes on."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web
from webchat_support import webchat_toml

from channels.webchat.http import demo_app
from inbox.store.outbox import enqueue
from inbox.types import AuthorKind
from tests.conftest import IN_CI, write_config
from tests.test_crash import free_port, omnidesk, start, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def require_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: under CI=true a browser test may not skip")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    if not (Path(__file__).resolve().parents[3] / "node_modules/socket.io-client").is_dir():
        pytest.fail("node_modules/socket.io-client is missing: run `npm ci`")


def sql(db: str, fn):
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            return fn(conn)
    finally:
        engine.dispose()


def reply(db: str, text: str) -> int:
    def run(conn):
        conversation_id = conn.execute(
            sa.text("SELECT id FROM conversations WHERE channel = 'chat' ORDER BY id DESC LIMIT 1")
        ).scalar_one()
        return enqueue(
            conn, conversation_id=conversation_id, text=text, author_kind=AuthorKind.AGENT
        )

    return sql(db, run)


async def test_widget_on_another_origin_survives_a_server_restart(tmp_path):
    require_chromium()
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    port, host_port = free_port(), free_port()
    host_origin = f"http://127.0.0.1:{host_port}"
    config = write_config(tmp_path, webchat_toml(origin=host_origin, rate_limit=100))
    cfg = Path(config)
    cfg.write_text(cfg.read_text().replace("port = 0", f"port = {port}"))
    db = str(tmp_path / "omnidesk.db")
    omnidesk("migrate", config=config)
    url = f"http://127.0.0.1:{port}"

    # the host page: another port, so another origin than the service
    runner = web.AppRunner(demo_app(url, "shop"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", host_port).start()

    proc = start(config)
    try:
        await wait_ready(url, proc, config + ".log")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1000, "height": 720})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(host_origin + "/")
                widget = page.locator("omnidesk-chat")
                launcher = widget.locator("button.l")
                await launcher.wait_for()
                # the host page's loud `button` style does not leak in: config colour
                assert (
                    await launcher.evaluate("b => getComputedStyle(b).backgroundColor")
                    == "rgb(37, 99, 235)"
                )
                await launcher.click()
                await widget.get_by_text("Hello from the shop").wait_for()
                await widget.get_by_role("button", name="Skip").click()  # the pre-chat form
                box = widget.get_by_label("Message")
                await box.fill("Hi, my parcel did not arrive <b>yet</b>")
                await box.press("Enter")
                await widget.locator(".m.v .s", has_text="Sent").wait_for()
                # the widget said it is sent only after the commit: it is in the database
                stored = sql(
                    db, lambda c: c.execute(sa.text("SELECT text FROM messages")).scalars().all()
                )
                assert stored == ["Hi, my parcel did not arrive <b>yet</b>"]
                await widget.get_by_text("<b>yet</b>", exact=False).wait_for()  # text, not HTML

                reply(db, "Sorry! Track it at https://track.example/p/1 or javascript:alert(1)")
                bubble = widget.locator(".m", has_text="Sorry! Track it")
                await bubble.wait_for(timeout=15000)
                link = bubble.locator("a")
                assert await link.count() == 1  # only the http(s) link became a link
                assert await link.get_attribute("href") == "https://track.example/p/1"
                assert "noopener" in (await link.get_attribute("rel") or "")
                await page.screenshot(path=str(ARTIFACTS / "webchat-1-reply.png"))

                # restart the server (forced) while the page stays open
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                await widget.get_by_text("Reconnecting").wait_for(timeout=15000)
                missed = reply(db, "Written while the server was down")
                proc = start(config)
                await wait_ready(url, proc, config + ".log")
                await widget.get_by_text("Written while the server was down").wait_for(
                    timeout=20000
                )

                await box.fill("Thanks, still here after the restart")
                await box.press("Enter")
                await (
                    widget.locator(".m.v", has_text="still here")
                    .locator(".s", has_text="Sent")
                    .wait_for(timeout=15000)
                )
                reply(db, "Great, the parcel is on its way again")
                await widget.get_by_text("Great, the parcel").wait_for(timeout=15000)
                await page.screenshot(path=str(ARTIFACTS / "webchat-2-after-restart.png"))

                texts = await widget.locator(
                    ".m:not(.greet) > div:not(.n):not(.s)"
                ).all_inner_texts()
                assert texts == [
                    "Hi, my parcel did not arrive <b>yet</b>",
                    "Sorry! Track it at https://track.example/p/1 or javascript:alert(1)",
                    "Written while the server was down",
                    "Thanks, still here after the restart",
                    "Great, the parcel is on its way again",
                ]  # nothing lost, nothing shown twice, in order
                assert missed > 0 and errors == []
                # the page reloads: a returning visitor sees the history from the database
                await page.reload()
                await (
                    page.locator("omnidesk-chat")
                    .get_by_text("Great, the parcel")
                    .wait_for(timeout=15000)
                )
                await page.set_viewport_size({"width": 390, "height": 740})
                await page.screenshot(path=str(ARTIFACTS / "webchat-3-mobile.png"))
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
