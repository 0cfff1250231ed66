"""XSS: hostile customer text, names, subjects and file names rendered in the agent UI in
real headless Chromium: no script runs (dialogs trapped, a beacon URL never hit) and the
page reports no CSP violation. Both render paths are covered: the server's jinja2 pages
and the scripts' live re-render from JSON (textContent)."""

from __future__ import annotations

import pytest

from inbox.store.files import FileStore
from inbox.types import Attachment
from tests.agent_ui.browser import WATCH, Watch, sign_in_page
from tests.agent_ui.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

B = "/xss-beacon"
PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    f"<img src={B}?img>",
    '"><svg onload=alert(3)>',
    "'><svg/onload=alert(4)>",
    "<svg><script>alert(5)</script></svg>",
    '<iframe src="javascript:alert(6)"></iframe>',
    f'<iframe srcdoc="<img src={B}?srcdoc>"></iframe>',
    "<body onload=alert(7)>",
    '<a href="javascript:alert(8)">click</a>',
    f'<link rel=stylesheet href="{B}?css">',
    f'<meta http-equiv="refresh" content="0;url={B}?meta">',
    f'<object data="{B}?object"></object>',
    f'<embed src="{B}?embed">',
    f"<video><source onerror=\"fetch('{B}?video')\"></video>",
    f"<audio src=x onerror=\"new Image().src='{B}?audio'\">",
    "<details open ontoggle=alert(9)>",
    "<input autofocus onfocus=alert(10)>",
    "<select autofocus onfocus=alert(11)>",
    "<textarea autofocus onfocus=alert(12)>",
    "</textarea><script>alert(13)</script>",
    "</title><script>alert(14)</script>",
    "</script><script>alert(15)</script>",
    '" onmouseover="alert(16)" x="',
    "' onfocus='alert(17)' autofocus='",
    "javascript:alert(18)",
    "data:text/html,<script>alert(19)</script>",
    f"<style>@import '{B}?style';</style>",
    f'<div style="background:url({B}?inline-style)">x</div>',
    f'<base href="{B}?base/">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(20)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(21)>">',
    "<svg><animate onbegin=alert(22) attributeName=x dur=1s>",
    '<form action="javascript:alert(23)"><button>go</button></form>',
    f'<img srcset="{B}?srcset 1x">',
    f'<picture><source srcset="{B}?picture"><img></picture>',
    "{{7*7}} {% raw %}${7*7}",
    "{{ config.__class__.__init__.__globals__ }}",
    "${alert(24)}",
    "`-alert(25)-`",
    "<scr<script>ipt>alert(26)</scr</script>ipt>",
    "&lt;script&gt;alert(27)&lt;/script&gt;",
    "%3Cscript%3Ealert(28)%3C/script%3E",
    "\u003cscript\u003ealert(29)\u003c/script\u003e",
    "<img src=x onerror=&#97;&#108;&#101;&#114;&#116;(30)>",
    '<svg><use href="data:image/svg+xml,<svg id=x xmlns=%22http://www.w3.org/2000/svg%22><image href=1 onerror=alert(31) /></svg>#x"></use></svg>',
    "<xss id=x tabindex=1 onfocusin=alert(32)></xss>",
    "<marquee onstart=alert(33)>",
    "<isindex type=image src=1 onerror=alert(34)>",
    "\u202e<script>alert(35)</script>",
    "\"'><img src=x onerror=alert(36)>.pdf",
    "../../etc/passwd<img src=x onerror=alert(37)>",
    f"<img src=x onerror=\"navigator.sendBeacon('{B}?beacon')\">",
    f"<script src={B}?script></script>",
    "<template><img src=x onerror=alert(38)></template>",
    f'<svg><image href="{B}?svgimage"/></svg>',
]


async def test_hostile_customer_input_never_runs_in_the_agent_ui(live):
    assert len(PAYLOADS) >= 50
    files = FileStore(live.services.config.data_dir / "attachments")
    key = await files.put(b"plain bytes", filename="x")
    from datetime import UTC, datetime

    from inbox.types import Channel, InboundMessage

    convs = []
    for i, payload in enumerate(PAYLOADS):
        msg = InboundMessage(
            channel=Channel.EMAIL,
            external_id=f"xss-{i}",
            sender=f"xss{i}@example.com",
            text=payload,
            received_at=datetime.now(UTC),
            display_name=payload[:200],
            subject=payload,
            inbox="inbox-a" if i % 2 else "inbox-b",
            attachments=(Attachment(payload[:200], "text/html", 11, storage_key=key),),
        )
        result = await live.services.ingest(msg)
        convs.append((result.conversation_id, result.contact_id, payload))
    await live.settle()

    context = await live.browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_init_script(WATCH)
    page = await context.new_page()
    watch = Watch(page)
    await sign_in_page(page, live.base, "sue@sup.test", PASSWORD)  # a supervisor sees both inboxes

    violations: list[str] = []
    # the queue: server-rendered, then re-rendered from JSON once the socket connects
    await page.wait_for_selector("body[data-updated]")
    assert await page.locator("#waiting tr").count() == len(PAYLOADS)
    violations += await page.evaluate("window.__violations")
    texts = set(await page.locator("#waiting tr td:nth-child(3) a").all_text_contents())
    assert {p[:200] for p in PAYLOADS} == texts  # every name shown literally

    for cid, contact_id, payload in convs:
        await page.goto(f"{live.base}/conversations/{cid}")
        await page.wait_for_selector(
            "body[data-updated]"
        )  # the live (JSON, textContent) render ran
        assert await page.locator("#timeline .msg-text").first.text_content() == payload
        assert await page.locator("#timeline .attachments a").first.text_content() == payload[:200]
        violations += await page.evaluate("window.__violations")
        await page.goto(f"{live.base}/contacts/{contact_id}")
        await page.wait_for_selector("body[data-ready='1']")
        assert (
            await page.locator("h1").first.text_content()
            == f"{payload[:200]} contact #{contact_id}"
        )
        violations += await page.evaluate("window.__violations")

    assert watch.dialogs == []
    assert live.beacons == []
    assert violations == []
    assert watch.csp_console() == []
    assert watch.errors == []
    await context.close()
