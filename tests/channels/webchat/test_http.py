"""`GET /widget.js`, uploads and file links, and the `[webchat]` settings reader."""

from __future__ import annotations

import gzip
import io
import uuid

import pytest
from webchat_support import ORIGIN
from yarl import URL

from channels.webchat import read_webchat_settings
from inbox.config import ConfigSection
from inbox.errors import ConfigError

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


async def test_widget_js_is_cacheable_javascript_for_any_site(chat_service):
    resp = await chat_service.get("/widget.js", headers={"Origin": "http://anywhere.example"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "max-age" in resp.headers["Cache-Control"]
    body = await resp.text()
    assert "var io=module.exports" in body and "attachShadow" in body
    assert "sourceMappingURL" not in body
    again = await chat_service.get("/widget.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    print(
        f"widget.js bundle: {len(body.encode())} bytes, {len(gzip.compress(body.encode(), 9))} gzipped"
    )


async def upload(chat_service, token, data, content_type, origin=ORIGIN):
    return await chat_service.post(
        "/widget/upload?widget=shop",
        data=io.BytesIO(data),
        headers={
            "Origin": origin,
            "Content-Type": content_type,
            "X-Visitor-Token": token,
            "X-Filename": "a%20b.png",
        },
    )


async def test_upload_then_send_with_the_file(chat_service, connect_visitor):
    visitor = await connect_visitor(chat_service.url)
    hello = await visitor.hello()
    token = hello["token"]
    assert (
        await upload(chat_service, token, PNG, "image/png", origin="http://evil.example")
    ).status == 403
    assert (await upload(chat_service, "forged", PNG, "image/png")).status == 401
    assert (
        await upload(chat_service, token, b"MZ\x90\0", "application/x-msdownload")
    ).status == 415
    assert (
        await upload(chat_service, token, b"<svg onload=alert(1)>", "image/png")
    ).status == 415  # not a PNG
    assert (
        await upload(chat_service, token, b"x" * (5 * 1024 * 1024 + 1), "text/plain")
    ).status == 413
    resp = await upload(chat_service, token, PNG, "image/png")
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    up = await resp.json()
    ack = await visitor.call(
        "message", {"client_id": str(uuid.uuid4()), "text": "", "files": [up["ref"]]}
    )
    assert ack["ok"], ack
    shown = (await visitor.hello())["messages"][-1]["files"][0]
    assert shown["filename"] == "a b.png" and shown["content_type"] == "image/png"
    link = URL(shown["url"]).path_qs  # public_url is the configured one (port 0 here)
    got = await chat_service.get(link)
    assert (
        got.status == 200 and await got.read() == PNG and got.headers["Content-Type"] == "image/png"
    )
    assert (await chat_service.get(link[:-3] + "xyz")).status == 404
    # another visitor cannot attach this visitor's upload
    other = await connect_visitor(chat_service.url)
    await other.hello()
    refused = await other.call(
        "message", {"client_id": str(uuid.uuid4()), "text": "", "files": [up["ref"]]}
    )
    assert refused == {"ok": False, "error": "invalid", "message": "unknown file"}


def section(data):
    return ConfigSection(data, ("webchat",))


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"widgets": {"w": {}}}, "webchat.widgets.w.allowed_origins"),
        (
            {"widgets": {"w": {"allowed_origins": ["shop.example"]}}},
            "webchat.widgets.w.allowed_origins",
        ),
        (
            {"widgets": {"w": {"allowed_origins": ["https://a.example"], "color": "blue"}}},
            "webchat.widgets.w.color",
        ),
        (
            {
                "widgets": {
                    "w": {"allowed_origins": ["https://a.example"], "prechat_fields": ["age"]}
                }
            },
            "webchat.widgets.w.prechat_fields",
        ),
        (
            {"widgets": {"w": {"allowed_origins": ["https://a.example"], "colour": "#fff"}}},
            "webchat.widgets.w.colour",
        ),
        ({"rate_limit": 0}, "webchat.rate_limit"),
        ({"demo_port": 8081}, "webchat.demo_widget"),
        (
            {
                "widgets": {
                    "w": {
                        "allowed_origins": ["https://a.example"],
                        "business_hours": {"timezone": "Mars/Olympus"},
                    }
                }
            },
            "webchat.widgets.w.business_hours.timezone",
        ),
    ],
)
def test_settings_errors_name_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        read_webchat_settings(section(data), inboxes=["default"])
    assert err.value.key == key


def test_business_hours():
    from datetime import UTC, datetime

    s = read_webchat_settings(
        section(
            {
                "widgets": {
                    "w": {
                        "allowed_origins": ["https://a.example"],
                        "business_hours": {
                            "timezone": "Europe/Paris",
                            "mon": ["09:00-18:00"],
                            "holidays": ["2026-01-05"],
                        },
                    }
                }
            }
        )
    )
    hours = s.widgets["w"].hours
    assert hours.open_at(datetime(2026, 1, 12, 9, 30, tzinfo=UTC))  # Monday 10:30 in Paris
    assert not hours.open_at(datetime(2026, 1, 12, 17, 30, tzinfo=UTC))  # 18:30 in Paris
    assert not hours.open_at(datetime(2026, 1, 13, 9, 30, tzinfo=UTC))  # Tuesday: closed
    assert not hours.open_at(datetime(2026, 1, 5, 9, 30, tzinfo=UTC))  # holiday
