"""MMS media fetching: SSRF refusals and the happy path, against a local aiohttp server."""

from __future__ import annotations

import ipaddress

import pytest
from aiohttp import web
from sms_support import inbound_params, make_settings, sign

from channels.sms.media import (
    MediaFetcher,
    MediaRefused,
    MemoryMediaStore,
    host_allowed,
    refusal_reason,
)
from channels.sms.optout import MemoryOptOutStore
from channels.sms.webhook import SmsWebhook

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


@pytest.fixture
async def media_server(aiohttp_server):
    seen_auth: list[tuple[str, str | None]] = []

    async def image(request):
        seen_auth.append((request.host.split(":")[0], request.headers.get("Authorization")))
        return web.Response(body=PNG, content_type="image/png")

    async def big(request):
        return web.Response(body=b"x" * 5000, content_type="image/png")

    async def big_chunked(request):
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b"x" * 1000)
        await resp.write_eof()
        return resp

    async def html(request):
        return web.Response(text="<html>", content_type="text/html")

    async def redirect(request):
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/image.png", image)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/page", html)
    app.router.add_get("/redirect", redirect)
    server = await aiohttp_server(app, host="127.0.0.1")
    server.seen_auth = seen_auth
    return server


@pytest.fixture
async def fetchers():
    made = []

    def make(allow_loopback=False, **kw):
        params = {
            "allowed_hosts": ["127.0.0.1", "localhost"],
            "allowed_types": ["image/*"],
            "max_bytes": 2000,
            "schemes": ("http", "https"),
            "auth": ("ACuser", "secret"),
        }
        params.update(kw)
        fetcher = MediaFetcher(allow_loopback_for_tests=allow_loopback, **params)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.close()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata endpoint
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_refusal_reason(address, reason):
    assert refusal_reason(ipaddress.ip_address(address)) == reason


def test_host_allowed_patterns():
    hosts = ["api.twilio.com", "*.twilio.com"]
    assert host_allowed("api.twilio.com", hosts)
    assert host_allowed("media.us1.twilio.com", hosts)
    assert host_allowed("API.Twilio.COM.", hosts)
    assert not host_allowed("twilio.com.evil.example", hosts)
    assert not host_allowed("eviltwilio.com", hosts)
    assert not host_allowed("twilio.com", ["*.twilio.com"])


async def test_loopback_refused(media_server, fetchers):
    fetcher = fetchers()
    with pytest.raises(MediaRefused, match="loopback"):
        await fetcher.fetch(str(media_server.make_url("/image.png")))
    # a host *name* resolving to loopback is refused too
    url = f"http://localhost:{media_server.port}/image.png"
    with pytest.raises(MediaRefused, match="loopback"):
        await fetcher.fetch(url)
    assert media_server.seen_auth == []  # never connected


async def test_host_not_in_allow_list_refused(media_server, fetchers):
    fetcher = fetchers(allow_loopback=True, allowed_hosts=["api.twilio.com"])
    with pytest.raises(MediaRefused, match="not an allowed provider host"):
        await fetcher.fetch(str(media_server.make_url("/image.png")))
    assert media_server.seen_auth == []


async def test_https_only_by_default(media_server, fetchers):
    fetcher = fetchers(allow_loopback=True, schemes=("https",))
    with pytest.raises(MediaRefused, match="scheme 'http'"):
        await fetcher.fetch(str(media_server.make_url("/image.png")))


async def test_happy_path_with_test_hook(media_server, fetchers):
    fetcher = fetchers(allow_loopback=True)
    media = await fetcher.fetch(str(media_server.make_url("/image.png")))
    assert media.data == PNG
    assert media.content_type == "image/png"
    assert media_server.seen_auth == [("127.0.0.1", "Basic QUN1c2VyOnNlY3JldA==")]


async def test_redirect_to_private_address_refused(media_server, fetchers):
    fetcher = fetchers(allow_loopback=True)
    for target in (
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x",
        "http://[::ffff:192.168.1.1]/x",
        "file:///etc/passwd",
    ):
        url = str(media_server.make_url("/redirect").with_query(to=target))
        with pytest.raises(MediaRefused):
            await fetcher.fetch(url)


async def test_redirect_followed_by_hand_without_credentials_to_other_host(media_server, fetchers):
    fetcher = fetchers(allow_loopback=True)
    target = f"http://localhost:{media_server.port}/image.png"
    url = str(media_server.make_url("/redirect").with_query(to=target))
    media = await fetcher.fetch(url)
    assert media.data == PNG
    assert media_server.seen_auth == [("localhost", None)]


async def test_redirect_loop_refused(media_server, fetchers):
    fetcher = fetchers(allow_loopback=True, max_redirects=2)
    inner = str(media_server.make_url("/image.png"))
    url = inner
    for _ in range(3):
        url = str(media_server.make_url("/redirect").with_query(to=url))
    with pytest.raises(MediaRefused, match="more than 2 redirects"):
        await fetcher.fetch(url)


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_size_limit(media_server, fetchers, path):
    fetcher = fetchers(allow_loopback=True)
    with pytest.raises(MediaRefused, match="limit"):
        await fetcher.fetch(str(media_server.make_url(path)))


async def test_type_limit(media_server, fetchers):
    fetcher = fetchers(allow_loopback=True)
    with pytest.raises(MediaRefused, match="text/html"):
        await fetcher.fetch(str(media_server.make_url("/page")))


async def test_mms_webhook_stores_attachments_and_notes_refusals(
    aiohttp_client, media_server, fetchers, ingest
):
    store = MemoryMediaStore()
    hook = SmsWebhook(
        ingest=ingest,
        settings=make_settings(),
        optouts=MemoryOptOutStore(),
        media_store=store,
        media_fetcher=fetchers(allow_loopback=True),
    )
    app = web.Application()
    app.add_routes(hook.routes())
    client = await aiohttp_client(app)
    params = inbound_params(
        body="photo",
        NumMedia="2",
        MediaUrl0=str(media_server.make_url("/image.png")),
        MediaContentType0="image/png",
        MediaUrl1="http://169.254.169.254/latest/meta-data/",
        MediaContentType1="image/jpeg",
    )
    resp = await client.post(
        "/sms/twilio/inbound",
        data=params,
        headers={"X-Twilio-Signature": sign("https://desk.example.com/sms/twilio/inbound", params)},
    )
    assert resp.status == 200
    [msg] = ingest.messages
    [attachment] = msg.attachments
    assert (attachment.content_type, attachment.size) == ("image/png", len(PNG))
    assert store.blobs[attachment.storage_key] == (attachment.filename, "image/png", PNG)
    [error] = msg.metadata["media_errors"]
    assert error.startswith("media 1:")
