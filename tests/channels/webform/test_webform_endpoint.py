"""POST /forms/{name} over real HTTP: every field type, errors, honeypot, rate limit,
uploads, idempotency, XSS stored as text."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest
from aiohttp import web
from webform_support import RecordingIngest, forms_settings, valid_contact

from channels.webform.endpoint import FormEndpoint
from inbox.types import Channel

PUBLIC = "https://desk.example.com"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 50


class MemoryStore:
    def __init__(self) -> None:
        self.blobs: dict[str, tuple[str, str, bytes]] = {}

    async def put(self, data: bytes, *, filename: str, content_type: str) -> str:
        key = uuid.uuid4().hex
        self.blobs[key] = (filename, content_type, data)
        return key


@pytest.fixture
def ingest():
    return RecordingIngest()


@pytest.fixture
def confirmations():
    return []


@pytest.fixture
def store():
    return MemoryStore()


@pytest.fixture
async def client(aiohttp_client, ingest, confirmations, store):
    async def confirm(email, form, result):
        confirmations.append((email, form.name, result.message_id))

    endpoint = FormEndpoint(
        ingest=ingest,
        settings=forms_settings(),
        public_url=PUBLIC,
        attachment_store=store,
        confirm=confirm,
    )
    app = web.Application()
    app.add_routes(endpoint.routes())
    return await aiohttp_client(app)


JSON_HEADERS = {"Accept": "application/json"}


async def test_browser_urlencoded_submit_stores_and_redirects(client, ingest, confirmations):
    resp = await client.post("/forms/contact", data=valid_contact(), allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == f"{PUBLIC}/forms/contact/thanks"
    [msg] = ingest.messages
    assert msg.channel is Channel.FORM
    assert msg.sender == "ada@example.com"  # later email replies thread to this contact
    assert msg.display_name == "Ada Lovelace"
    assert msg.subject == "Billing"
    assert (msg.inbox, msg.priority, msg.skills) == ("support", "high", ("billing",))
    assert msg.external_id.startswith("form:contact:sha256:")
    assert msg.metadata["fields"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+14155550123",
        "topic": "Billing",
        "message": "My invoice is wrong.\nPlease help.",
        "consent": True,
        "quantity": 3,
    }
    assert "Message:\nMy invoice is wrong.\nPlease help." in msg.text
    assert "I agree to be contacted: yes" in msg.text
    assert msg.html is None
    assert confirmations == [("ada@example.com", "contact", 1)]


async def test_json_submit(client, ingest):
    payload = {**valid_contact(), "consent": True, "quantity": 2.5}
    resp = await client.post("/forms/contact", json=payload)
    assert resp.status == 200
    body = await resp.json()
    assert body == {"ok": True, "redirect": f"{PUBLIC}/forms/contact/thanks", "duplicate": False}
    assert ingest.messages[0].metadata["fields"]["quantity"] == 2.5


async def test_multipart_with_attachment(client, ingest, store):
    data = aiohttp.FormData()
    for key, value in valid_contact().items():
        data.add_field(key, value)
    data.add_field("attachment", PNG, filename="../../etc/shot.png", content_type="image/png")
    resp = await client.post("/forms/contact", data=data, allow_redirects=False)
    assert resp.status == 303
    [msg] = ingest.messages
    [att] = msg.attachments
    assert (att.filename, att.content_type, att.size) == ("shot.png", "image/png", len(PNG))
    assert store.blobs[att.storage_key] == ("shot.png", "image/png", PNG)
    assert "Attachment: shot.png" in msg.text


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("name", "x" * 51, "longer than 50"),
        ("email", "not-an-email", "valid email"),
        ("phone", "12", "valid phone"),
        ("topic", "Refunds", "not one of the choices"),
        ("message", "y" * 501, "longer than 500"),
        ("consent", "", "must be checked"),
        ("consent", "maybe", "checked or not"),
        ("quantity", "11", "at most 10"),
        ("quantity", "0", "at least 1"),
        ("quantity", "three", "not a number"),
        ("quantity", "nan", "not a number"),
    ],
)
async def test_each_field_type_validated(client, ingest, field, value, error):
    resp = await client.post(
        "/forms/contact", data=valid_contact(**{field: value}), headers=JSON_HEADERS
    )
    assert resp.status == 422
    body = await resp.json()
    assert list(body["fields"]) == [field]
    assert error in body["fields"][field][0]
    assert ingest.messages == []


async def test_missing_required_fields_listed(client, ingest):
    resp = await client.post("/forms/contact", json={"name": "x"})
    assert resp.status == 422
    fields = (await resp.json())["fields"]
    assert sorted(fields) == ["consent", "email", "message", "topic"]
    assert fields["email"] == ["is required"]
    assert ingest.messages == []


async def test_optional_fields_may_be_absent(client, ingest):
    values = valid_contact(name=None, phone=None, quantity=None)
    resp = await client.post("/forms/contact", data=values, headers=JSON_HEADERS)
    assert resp.status == 200
    assert ingest.messages[0].display_name is None


async def test_browser_error_page_escapes_everything(client, ingest):
    values = valid_contact(name=XSS[:50], email=XSS, message=XSS)
    resp = await client.post("/forms/contact", data=values, headers={"Accept": "text/html"})
    assert resp.status == 422
    assert resp.content_type == "text/html"
    page = await resp.text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "Email: is not a valid email address" in page  # errors re-listed, by label
    assert ingest.messages == []


async def test_xss_payload_stored_as_plain_text(client, ingest):
    resp = await client.post(
        "/forms/contact", data=valid_contact(message=XSS, name=XSS[:50]), allow_redirects=False
    )
    assert resp.status == 303
    [msg] = ingest.messages
    assert msg.html is None
    assert msg.metadata["fields"]["message"] == XSS  # exactly what was typed, as text
    assert XSS in msg.text


async def test_honeypot_looks_accepted_stores_nothing(client, ingest, confirmations):
    values = valid_contact(website="http://spam.example")
    resp = await client.post("/forms/contact", data=values, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == f"{PUBLIC}/forms/contact/thanks"
    resp = await client.post("/forms/contact", json=values)
    assert (await resp.json())["ok"] is True
    assert ingest.messages == [] and confirmations == []


async def test_rate_limit_per_address(client, ingest):
    def post(i, **headers):
        data = {"email": f"u{i}@example.com", "message": f"m{i}"}
        return client.post("/forms/simple", data=data, headers=headers, allow_redirects=False)

    assert [(await post(i)).status for i in range(2)] == [303, 303]
    resp = await post(3)
    assert resp.status == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 60
    resp = await post(4, Accept="application/json")
    assert resp.status == 429 and (await resp.json())["error"] == "rate_limited"
    # another client behind the trusted proxy (127.0.0.1) has its own budget
    assert (await post(5, **{"X-Forwarded-For": "203.0.113.9"})).status == 303
    assert len(ingest.messages) == 3


@pytest.mark.redis
async def test_rate_limit_is_one_count_across_web_processes(
    aiohttp_client, ingest, store, redis_url
):
    """Two web processes behind one load balancer: the limit holds for the pair (Redis)."""
    from inbox.web.ratelimit import rate_limiter

    clients, limiters = [], []
    for _ in range(2):
        limiter = rate_limiter(redis_url)
        limiters.append(limiter)
        endpoint = FormEndpoint(
            ingest=ingest,
            settings=forms_settings(),
            public_url=PUBLIC,
            attachment_store=store,
            limiter=limiter,
        )
        app = web.Application()
        app.add_routes(endpoint.routes())
        clients.append(await aiohttp_client(app))
    try:
        statuses = []
        for i in range(3):  # first, second, first: a per-process count would allow all three
            data = {"email": f"u{i}@example.com", "message": f"m{i}"}
            resp = await clients[i % 2].post("/forms/simple", data=data, allow_redirects=False)
            statuses.append(resp.status)
        assert statuses == [303, 303, 429]
    finally:
        for limiter in limiters:
            await limiter.close()


async def test_redirect_to_configured_thank_you_url(client):
    resp = await client.post(
        "/forms/simple", data={"email": "a@example.com"}, allow_redirects=False
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "https://www.example.com/thanks"


async def test_oversized_upload_413(client, ingest):
    data = aiohttp.FormData()
    for key, value in valid_contact().items():
        data.add_field(key, value)
    data.add_field("attachment", b"x" * 1001, filename="big.png", content_type="image/png")
    resp = await client.post("/forms/contact", data=data, headers=JSON_HEADERS)
    assert resp.status == 413
    assert "attachment" in (await resp.json())["fields"]
    assert ingest.messages == []


async def test_an_oversized_field_keeps_the_others_and_names_its_limit(client, ingest):
    """A text past the part limit (a script can bypass the textarea's maxlength) is refused
    with its limit, and the page shows what the sender typed in the other fields again."""
    data = aiohttp.FormData(default_to_multipart=True)  # as the hosted page posts
    contact = valid_contact()
    for key, value in contact.items():
        if key != "message":
            data.add_field(key, value)
    data.add_field("message", "y" * 100_000)
    resp = await client.post("/forms/contact", data=data, allow_redirects=False)
    assert resp.status == 413
    page = await resp.text()
    assert "too long: at most 500 characters" in page
    assert f'value="{contact["email"]}"' in page
    assert f'value="{contact["name"]}"' in page
    assert ingest.messages == []


async def test_too_many_files_and_wrong_type(client, ingest):
    data = aiohttp.FormData()
    for key, value in valid_contact().items():
        data.add_field(key, value)
    for i in range(3):
        data.add_field("attachment", PNG, filename=f"{i}.png", content_type="image/png")
    resp = await client.post("/forms/contact", data=data, headers=JSON_HEADERS)
    assert resp.status == 413
    data = aiohttp.FormData()
    for key, value in valid_contact().items():
        data.add_field(key, value)
    data.add_field("attachment", b"<html>", filename="a.html", content_type="text/html")
    resp = await client.post("/forms/contact", data=data, headers=JSON_HEADERS)
    assert resp.status == 422
    assert "not accepted" in (await resp.json())["fields"]["attachment"][0]
    assert ingest.messages == []


async def test_body_over_limit_413_before_reading(client, ingest):
    resp = await client.post(
        "/forms/contact",
        data=b"x" * 100,
        headers={"Content-Length": str(17 * 1024 * 1024), "Content-Type": "text/plain"},
    )
    assert resp.status == 413
    assert ingest.messages == []


async def test_double_submit_with_submission_id_stores_one(client, ingest, confirmations):
    values = valid_contact(submission_id="3b1f0c9e-8d4c-4c43-9a51-1c6f0d8b2e77")
    responses = await asyncio.gather(
        *(client.post("/forms/contact", data=values, headers=JSON_HEADERS) for _ in range(3))
    )
    bodies = [await r.json() for r in responses]
    assert all(b["ok"] for b in bodies)
    assert sorted(b["duplicate"] for b in bodies) == [False, True, True]
    [msg] = ingest.messages
    assert msg.external_id == "form:contact:3b1f0c9e-8d4c-4c43-9a51-1c6f0d8b2e77"
    assert len(confirmations) == 1


async def test_without_submission_id_content_hash_dedupes(client, ingest):
    for _ in range(2):
        resp = await client.post("/forms/contact", data=valid_contact(), headers=JSON_HEADERS)
        assert resp.status == 200
    resp = await client.post(
        "/forms/contact", data=valid_contact(message="other"), headers=JSON_HEADERS
    )
    assert resp.status == 200
    assert len(ingest.messages) == 2


async def test_unknown_form_and_bad_json(client):
    assert (await client.post("/forms/nope", data={"a": "b"})).status == 404
    resp = await client.post(
        "/forms/contact", data="[1,2]", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400


async def test_file_field_through_json_is_ignored_not_stored(client, ingest):
    resp = await client.post(
        "/forms/contact", json={**valid_contact(), "attachment": "data:image/png;base64,AAAA"}
    )
    assert resp.status == 200
    assert ingest.messages[0].attachments == ()
    assert "attachment" not in ingest.messages[0].metadata["fields"]


async def test_cors_preflight_and_response(client):
    origin = {"Origin": "https://www.example.com"}
    resp = await client.options("/forms/simple", headers=origin)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    resp = await client.options("/forms/simple", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.post("/forms/simple", json={"email": "a@example.com"}, headers=origin)
    assert resp.headers["Access-Control-Allow-Origin"] == "https://www.example.com"


async def test_hosted_page_and_thanks(client):
    resp = await client.get("/forms/contact")
    assert resp.status == 200
    page = await resp.text()
    assert f'action="{PUBLIC}/forms/contact"' in page
    assert (await client.get("/forms/contact/thanks")).status == 200
