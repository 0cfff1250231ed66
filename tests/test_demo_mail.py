"""The README's "Trying it": `omnidesk demo` and `omnidesk serve` on a copy of the shipped
config.example.toml (its rules, no relay), the README's mail over a real SMTP client, and
the auto-reply found in the captured outbox through the admin page: over HTTP as each
demo role, and in headless Chromium at desktop and phone width."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.agent_ui.browser import (
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    Watch,
    free_port,
    require_chromium,
    sign_in_page,
)
from tests.conftest import SECRET
from tests.test_crash import wait_ready

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The embedded app on the example config; its demo agents' passwords by role."""
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    http, smtp = free_port(), free_port()
    sets = [
        f'data_dir="{tmp_path / "var"}"',
        f"server.port={http}",
        f"smtp.port={smtp}",
        f"webchat.demo_port={free_port()}",
    ]
    base = [sys.executable, "-m", "omnidesk.cli", "--config", str(tmp_path / "config.toml")]
    for item in sets:
        base += ["--set", item]
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    seeded = subprocess.run(
        [*base, "demo"], capture_output=True, text=True, env=env, check=True, timeout=60
    ).stdout
    found = re.findall(r"agent (\S+)\s+(\w+)\s+password: (\S+)", seeded)
    who = {role: (email, password) for email, role, password in found}
    assert set(who) == {"agent", "supervisor", "admin"}, seeded
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*base, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield {
            "url": f"http://127.0.0.1:{http}",
            "smtp": smtp,
            "proc": proc,
            "log": log,
            "db": tmp_path / "var" / "omnidesk.db",
            "outbox": tmp_path / "var" / "captured-mail",
            "who": who,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def send_readme_mail(port: int) -> None:
    """Exactly what the README's "Trying it" sends."""
    m = EmailMessage()
    m["From"] = "ann@example.org"
    m["To"] = "support@support.example.com"
    m["Subject"] = "Where is my order?"
    m.set_content("It has not arrived.")
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.send_message(m)


async def signed_in(url: str, email: str, password: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await session.get(f"{url}/login")).text()
    token = re.search(r'name="login_csrf" value="([^"]+)"', page)
    assert token is not None
    resp = await session.post(
        f"{url}/login",
        data={"email": email, "password": password, "login_csrf": token.group(1)},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    return session


async def test_readme_demo_auto_reply_is_in_the_admins_captured_mail(demo):
    url = demo["url"]
    await wait_ready(url, demo["proc"], str(demo["log"]))
    send_readme_mail(demo["smtp"])

    admin = await signed_in(url, *demo["who"]["admin"])
    try:
        for _ in range(200):  # the auto-reply goes out through the outbox, just after the 250
            listing = await admin.get(f"{url}/admin/mail")
            assert listing.status == 200
            page = await listing.text()
            if "Re: Where is my order?" in page:
                break
            await asyncio.sleep(0.05)
        assert "Re: Where is my order?" in page
        assert "ann@example.org" in page and "support@support.example.com" in page
        assert 'href="/admin/mail"' in page  # in the workspace's navigation
        key = re.search(r'href="/admin/mail/([^"]+)"', page)
        assert key is not None
        detail = await admin.get(f"{url}/admin/mail/{key.group(1)}")
        assert detail.status == 200
        html = await detail.text()
    finally:
        await admin.close()
    message_id = (
        sqlite3.connect(demo["db"])
        .execute("SELECT provider_id, delivery_status FROM messages WHERE direction = 'outbound'")
        .fetchall()
    )
    # delivered like any send: marked sent, with the Message-ID as its provider id
    assert len(message_id) == 1 and message_id[0][1] == "sent" and message_id[0][0]
    provider_id = message_id[0][0]
    assert provider_id in html  # the Message-ID header
    inbound = (
        sqlite3.connect(demo["db"])
        .execute("SELECT external_id FROM messages WHERE direction = 'inbound'")
        .fetchone()[0]
    )
    # the README's mail has no Message-ID: it is stored under a key of ours, which the
    # reply must not name (no mail client knows it); the reply token threads instead
    assert inbound.startswith("sha256:")
    assert re.search(r"<dt>In-Reply-To</dt><dd[^>]*></dd>", html) and inbound not in html
    assert "You can follow your order at any time" in html  # the text body
    frame = re.search(r'<iframe[^>]*sandbox=""[^>]*srcdoc="([^"]*)"', html)
    assert frame is not None  # the HTML body, in an iframe allowed to run nothing
    assert '<a href="https://shop.example.com/orders"' in unescape(frame.group(1))
    assert list(demo["outbox"].glob("*.eml")) == [demo["outbox"] / f"{provider_id}.eml"]
    log = demo["log"].read_text()
    assert "captured in" in log and "unreachable" not in log and "retry" not in log.lower()

    # the other demo roles: 403 on the page and a message; signed out: the sign-in page
    for role in ("supervisor", "agent"):
        other = await signed_in(url, *demo["who"][role])
        try:
            for path in ("/admin/mail", f"/admin/mail/{key.group(1)}"):
                resp = await other.get(f"{url}{path}", allow_redirects=False)
                assert resp.status == 403, (role, path)
                assert "Where is my order" not in await resp.text()
            queue = await (await other.get(f"{url}/queue")).text()
            assert 'href="/admin/mail"' not in queue  # not in their navigation
        finally:
            await other.close()
    async with aiohttp.ClientSession() as anon:
        for path in ("/admin/mail", f"/admin/mail/{key.group(1)}"):
            resp = await anon.get(f"{url}{path}", allow_redirects=False)
            assert resp.status == 303 and resp.headers["Location"].startswith("/login")

    # the same, as an admin sees it in Chromium: desktop and phone width
    require_chromium()
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    email, password = demo["who"]["admin"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name, viewport in (
                ("desktop", {"width": 1280, "height": 900}),
                ("phone", {"width": 390, "height": 844}),
            ):
                context = await browser.new_context(viewport=viewport)
                page = await context.new_page()
                watch = Watch(page)
                await sign_in_page(page, url, email, password)
                async with page.expect_navigation():
                    await page.click("#nav-mail")
                assert page.url.endswith("/admin/mail")
                row = page.locator("#mail-table tbody tr").first
                assert "Re: Where is my order?" in await row.inner_text()
                await page.screenshot(path=str(ARTIFACTS / f"captured-mail-{name}.png"))
                async with page.expect_navigation():
                    await row.locator("a").click()
                headers = await page.inner_text("#mail-headers")
                assert "ann@example.org" in headers and "Re: Where is my order?" in headers
                assert "follow your order" in await page.inner_text("#mail-text")
                frame = page.frame_locator("#mail-html")
                assert "shop.example.com/orders" in await frame.locator("a").inner_text()
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{name}: the page scrolls sideways"
                await page.locator("#mail-html").scroll_into_view_if_needed()
                await page.screenshot(path=str(ARTIFACTS / f"captured-mail-message-{name}.png"))
                assert watch.errors == [] and watch.dialogs == []
                assert watch.csp_console() == []
                await context.close()
        finally:
            await browser.close()
