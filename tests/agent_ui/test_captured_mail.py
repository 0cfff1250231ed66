"""The admin page of captured outbound mail: who may open it, and hostile mail (scripts in
the subject, the sender's name, the text and HTML bodies; header injection) shown inert,
over HTTP and in headless Chromium."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from html import unescape
from typing import Any

import pytest

from channels.email.capture import CaptureSender, MailFolder, captured_mail_dir
from channels.email.compose import Composer
from channels.email.settings import EmailSettings
from inbox.ports import Outbound
from tests.agent_ui.browser import WATCH, Watch, sign_in_page
from tests.agent_ui.conftest import PASSWORD
from tests.agent_ui.test_xss import PAYLOADS
from tests.conftest import SECRET

# what the page must never contain as live markup
LIVE = re.compile(
    r"<(script|img|svg|iframe(?! class=\"mail-html\")|body|object|embed|base|meta|link|style)\b",
    re.I,
)

# a captured file whose subject tried to smuggle a Bcc header through an encoded word
INJECTED = (
    b"From: =?utf-8?q?Eve_=3Cscript=3Ealert(1)=3C/script=3E?= <eve@example.org>\r\n"
    b"To: ann@example.org\r\n"
    b"Subject: =?utf-8?q?Hi=0D=0ABcc=3A_everyone=40example=2Enet=0D=0A=0D=0A"
    b"=3Cscript=3Ealert(2)=3C/script=3E?=\r\n"
    b"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
    b"In-Reply-To: <x@y>\r\n\r\nbody\r\n"
)


def sender_for(services: Any) -> CaptureSender:
    folder = MailFolder(captured_mail_dir(services.config.data_dir))
    return CaptureSender(folder, Composer(EmailSettings(domain="desk.test"), SECRET))


def outbound(n: int, **changes: Any) -> Outbound:
    fields: dict[str, Any] = {
        "message_id": n,
        "conversation_id": n,
        "channel": "email",
        "to": f"c{n}@example.org",
        "text": "hello",
        "conversation_token": f"t{n}",
        "subject": f"Message {n}",
    }
    fields.update(changes)
    return Outbound(**fields)


def raw_mail(folder: MailFolder, key: str, *, subject: str, text: str, html: str) -> str:
    """A captured file written as is: an HTML body our composer would have sanitized."""
    msg = EmailMessage()
    msg["From"] = "Support <support@desk.test>"
    msg["To"] = "ann@example.org"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 07 Dec 2026 10:00:00 +0000"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return folder.put(key, msg.as_bytes(policy=policy.SMTP))


def body_of(page: str) -> str:
    return page.split('<main id="main"', 1)[1]


async def test_only_admins_open_captured_mail(desk):
    key = await sender_for(desk.services).send(outbound(1, subject="Where is my order?"))
    for who in ("agent_a", "agent_b", "supervisor", "admin"):
        await desk.login(who)
    for path in ("/admin/mail", f"/admin/mail/{key}", "/admin/mail/no-such-message"):
        for who, expected in (
            ("anon", 303),
            ("agent_a", 403),
            ("agent_b", 403),
            ("supervisor", 403),
            ("admin", 404 if "no-such" in path else 200),
        ):
            desk.client.session.cookie_jar.clear()
            headers = desk.headers(None if who == "anon" else who, json=False)
            resp = await desk.client.get(path, headers=headers, allow_redirects=False)
            assert resp.status == expected, (who, path, resp.status)
            text = await resp.text()
            if expected == 303:
                assert resp.headers["Location"] == f"/login?next={path}"
            if expected != 200:
                assert "Where is my order?" not in text
            if expected == 403:  # a page a browser can show, not the API's JSON
                assert resp.content_type == "text/html"
                assert "Only admins see captured outbound mail" in text
    # only an admin's navigation has the link
    for who in ("agent_a", "supervisor", "admin"):
        desk.client.session.cookie_jar.clear()
        page = await (await desk.client.get("/queue", headers=desk.headers(who))).text()
        assert ('href="/admin/mail"' in page) is (who == "admin"), who


async def test_hostile_captured_mail_is_rendered_as_text(desk):
    sender = sender_for(desk.services)
    keys = []
    for n, payload in enumerate(PAYLOADS, start=1):
        keys.append(
            await sender.send(
                outbound(n, subject=payload, from_name=payload[:60], text=payload, html=payload)
            )
        )
    folder = MailFolder(captured_mail_dir(desk.services.config.data_dir))
    folder.put("injected@example.org", INJECTED)
    raw = [
        raw_mail(folder, f"raw{n}@x", subject=p, text=p, html=f"<p>{p}</p>")
        for n, p in enumerate(PAYLOADS)
    ]
    await desk.login("admin")

    listing = await desk.client.get("/admin/mail", headers=desk.headers("admin"))
    assert listing.status == 200
    page = body_of(await listing.text())
    assert not LIVE.search(page), LIVE.search(page)
    assert "Hi Bcc: everyone@example.net &lt;script&gt;alert(2)&lt;/script&gt;" in page
    for payload in PAYLOADS:
        if "<" in payload:
            assert payload not in page

    for key, payload in [*zip(keys, PAYLOADS, strict=True), *zip(raw, PAYLOADS, strict=True)]:
        resp = await desk.client.get(f"/admin/mail/{key}", headers=desk.headers("admin"))
        assert resp.status == 200
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
        html = body_of(await resp.text())
        frame = re.search(r'<iframe class="mail-html" [^>]*sandbox=""[^>]*srcdoc="([^"]*)"', html)
        assert frame is not None, payload
        if key in raw:  # as written, unsanitized: inside the sandbox only
            assert f"<p>{payload}</p>" in unescape(frame.group(1))
        outside = html.replace(frame.group(0), "")
        assert not LIVE.search(outside), (payload, LIVE.search(outside))
        if "<" in payload:
            assert payload not in outside

    resp = await desk.client.get("/admin/mail/injected@example.org", headers=desk.headers("admin"))
    html = body_of(await resp.text())
    assert "<dt>Bcc" not in html and not LIVE.search(html)
    assert "<dd>Hi Bcc: everyone@example.net &lt;script&gt;alert(2)&lt;/script&gt;</dd>" in html


@pytest.mark.browser
@pytest.mark.timeout(300)
async def test_hostile_captured_mail_never_runs_in_chromium(live):
    sender = sender_for(live.services)
    together = "\n".join(PAYLOADS)
    folder = MailFolder(captured_mail_dir(live.services.config.data_dir))
    keys = [
        raw_mail(folder, "raw-html@x", subject="all in the HTML body", text="-", html=together),
        await sender.send(outbound(1, subject="sanitized HTML body", html=together)),
        await sender.send(outbound(2, subject="all in the text body", text=together)),
    ]
    for n, payload in enumerate(PAYLOADS[:12], start=3):
        keys.append(await sender.send(outbound(n, subject=payload, from_name=payload[:60])))
    folder.put("injected@example.org", INJECTED)
    keys.append("injected@example.org")

    context = await live.browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_init_script(WATCH)
    page = await context.new_page()
    watch = Watch(page)
    await sign_in_page(page, live.base, "ada@admin.test", PASSWORD)
    await page.goto(f"{live.base}/admin/mail")
    subjects = await page.locator("#mail-table tbody td[data-label=Subject] a").all_text_contents()
    for payload in PAYLOADS[:12]:
        assert " ".join(payload.split()) in subjects  # shown literally
    for key in keys:
        await page.goto(f"{live.base}/admin/mail/{key}")
        await page.wait_for_load_state("load")
    await page.goto(f"{live.base}/admin/mail/{keys[0]}")
    frame = page.frame_locator("#mail-html")
    assert await frame.locator("script").count() >= 3  # the scripts are there, and inert
    await page.wait_for_timeout(500)
    assert watch.dialogs == []
    assert live.beacons == [], live.beacons
    assert watch.errors == []
    # nothing blocked in the page itself (the sandboxed body's own refusals aside)
    assert await page.evaluate("window.__violations") == []
    await context.close()
