"""Sign-in under load, through real HTTP requests to the running app: parallel wrong
passwords get only the allowed argon2 checks, the owner on another address still signs in,
and argon2 work does not stall the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from aiohttp import ClientSession, DummyCookieJar
from argon2 import PasswordHasher

from tests.agent_ui.conftest import PASSWORD, add_people, build_desk

FREE = 5
TOKEN = "t" * 32  # the sign-in form's double-submit token: cookie and field agree

# a long first delay: every refused attempt of the burst is refused whatever its timing
SETTINGS = f"""
[agent_ui]
trusted_proxies = ["127.0.0.1"]
signin_free_attempts = {FREE}
signin_delay_seconds = 300
"""


@pytest.fixture
def argon2_checks(monkeypatch):
    """Counts every argon2 verification the app makes (the web app runs in this process)."""
    calls: list[str] = []
    lock = threading.Lock()
    real = PasswordHasher.verify

    def counting(self, hash, password):
        with lock:
            calls.append(str(password))
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return calls


async def _desk_client(tmp_path, aiohttp_client, extra=SETTINGS):
    from omnidesk.app import make_web_app

    _config, services = await build_desk(tmp_path, extra, router=False)
    # no cookie jar: each request sends only the cookies written here
    client = await aiohttp_client(make_web_app(services), cookie_jar=DummyCookieJar())
    await add_people(services)
    return client, services


async def _sign_in(client, email, password, forwarded=None, next_url=None):
    headers = {"Cookie": f"od_login_csrf={TOKEN}"}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    data = {"email": email, "password": password, "login_csrf": TOKEN}
    if next_url is not None:
        data["next"] = next_url
    resp = await client.post("/login", data=data, headers=headers, allow_redirects=False)
    await resp.read()
    return resp


async def test_100_parallel_wrong_passwords_get_at_most_the_free_checks(
    tmp_path, aiohttp_client, argon2_checks
):
    client, services = await _desk_client(tmp_path, aiohttp_client)
    try:
        attacker = "203.0.113.7"
        # the owner, behind the same trusted proxy on another address, signs in meanwhile
        during = asyncio.ensure_future(_sign_in(client, "ann@a.test", PASSWORD, "198.51.100.4"))
        answers = await asyncio.gather(
            *(_sign_in(client, "ann@a.test", f"guess-{i}", attacker) for i in range(100))
        )
        assert (await during).status == 303
        statuses = sorted(r.status for r in answers)
        # the attack's checks, and the owner's
        assert len(argon2_checks) <= FREE + 1, f"{len(argon2_checks)} argon2 checks"
        assert argon2_checks.count(PASSWORD) == 1
        assert statuses == [401] * FREE + [429] * (100 - FREE)
        refused = [r for r in answers if r.status == 429]
        # the wait left of the 300 s after the fifth failure (less if the burst was slow)
        assert all(0 < int(r.headers["Retry-After"]) <= 300 for r in refused)

        # and after it
        owner = await _sign_in(client, "ann@a.test", PASSWORD, "198.51.100.4")
        assert owner.status == 303 and owner.headers["Location"] == "/queue"
        # while the attacker's address stays throttled, even with the right password
        again = await _sign_in(client, "ann@a.test", PASSWORD, attacker)
        assert again.status == 429
        assert len(argon2_checks) == FREE + 2
    finally:
        await services.close()


async def test_a_forged_forwarded_header_does_not_escape_the_throttle(
    tmp_path, aiohttp_client, argon2_checks
):
    # no trusted proxy: X-Forwarded-For is anyone's to write, so it is ignored
    client, services = await _desk_client(
        tmp_path, aiohttp_client, SETTINGS.replace('["127.0.0.1"]', "[]")
    )
    try:
        answers = await asyncio.gather(
            *(_sign_in(client, "ann@a.test", f"guess-{i}", f"198.51.100.{i}") for i in range(30))
        )
        assert sorted(r.status for r in answers) == [401] * FREE + [429] * 25
        assert len(argon2_checks) == FREE
    finally:
        await services.close()


async def test_throttled_page_says_how_long_to_wait(tmp_path, aiohttp_client):
    client, services = await _desk_client(tmp_path, aiohttp_client)
    try:
        for i in range(FREE):
            assert (await _sign_in(client, "ann@a.test", f"x{i}")).status == 401
        resp = await _sign_in(client, "ann@a.test", PASSWORD)
        assert resp.status == 429
        # 300 s from the last failure, less what a loaded machine took since
        assert 290 <= int(resp.headers["Retry-After"]) <= 300, resp.headers["Retry-After"]
        text = await resp.text()
        assert "Too many failed attempts. Wait 5 minutes and try again." in text
    finally:
        await services.close()


async def test_healthz_stays_fast_during_100_parallel_sign_ins(tmp_path, aiohttp_client):
    client, services = await _desk_client(tmp_path, aiohttp_client)
    try:
        # correct passwords from 100 addresses: no throttle, every one needs argon2
        logins = [
            asyncio.ensure_future(_sign_in(client, "ann@a.test", PASSWORD, f"198.51.100.{i}"))
            for i in range(100)
        ]
        samples = []
        # its own connection: the sign-ins fill the test client's pool of 100
        async with ClientSession() as probe:
            url = client.make_url("/healthz")
            while not all(f.done() for f in logins) or len(samples) < 20:
                start = time.perf_counter()
                async with probe.get(url) as resp:
                    await resp.read()
                samples.append(time.perf_counter() - start)
                assert resp.status == 200
                await asyncio.sleep(0.01)
        statuses = [f.result().status for f in logins]
        # each sign-in was checked (303), or refused at once while the checks were full
        assert set(statuses) <= {303, 503} and statuses.count(303) >= 10
        samples.sort()
        p99 = samples[int(len(samples) * 0.99) - 1] if len(samples) >= 100 else samples[-1]
        # the target is 50 ms (bench/signin.py measures it); the bound is generous for a
        # shared, loaded machine (with argon2 on the event loop: 0.87 s on the main branch)
        assert p99 < 0.5, f"/healthz p99 {p99 * 1000:.0f} ms over {len(samples)} samples"
    finally:
        await services.close()


async def test_a_busy_answer_gives_the_attempt_back(tmp_path, aiohttp_client):
    extra = SETTINGS + "password_threads = 1\npassword_queue = 0\n"
    client, services = await _desk_client(tmp_path, aiohttp_client, extra)
    try:
        answers = await asyncio.gather(
            *(_sign_in(client, "ann@a.test", f"guess-{i}") for i in range(8))
        )
        busy = [r for r in answers if r.status == 503]
        assert busy and all(r.headers["Retry-After"] == "1" for r in busy)
        assert "The server is busy" in await busy[0].text()
        # only the checked attempts count against the pair
        from inbox.accounts import signin_throttle
        from inbox.store import signins

        pair = signin_throttle.keys_for("ann@a.test", "127.0.0.1")[0]
        counted = await services.store.read(lambda c: signins.counted(c, pair))
        assert counted == sum(1 for r in answers if r.status == 401)
    finally:
        await services.close()


# -- next= ------------------------------------------------------------------------------

HOSTILE_NEXT = [
    "/\t/evil.example",
    "/\n/evil.example",
    "\t//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "//evil.example",
    "///evil.example",
    "https://evil.example",
    "https:evil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%09/evil.example",
    "/%5Cevil.example",
    "/%252F/evil.example",
    "javascript:alert(1)",
    " /\\evil.example",
    "evil.example",
    "",
]


@pytest.mark.parametrize("value", HOSTILE_NEXT)
def test_safe_next_refuses_anything_but_a_local_path(value):
    from agent_ui.auth import safe_next

    assert safe_next(value) == "/queue"


@pytest.mark.parametrize(
    "value", ["/queue", "/conversations/12", "/contacts/3?tab=notes", "/queue?q=a%2Fb%20c"]
)
def test_safe_next_keeps_local_paths(value):
    from agent_ui.auth import safe_next

    assert safe_next(value) == value


async def test_sign_in_redirect_never_leaves_the_site(tmp_path, aiohttp_client):
    client, services = await _desk_client(tmp_path, aiohttp_client)
    try:
        for value in ["/\t/evil.example", "/\\evil.example", "/%09/evil.example"]:
            resp = await _sign_in(client, "ann@a.test", PASSWORD, next_url=value)
            assert resp.status == 303 and resp.headers["Location"] == "/queue", value
        page = await client.get("/login", params={"next": "/\t/evil.example"})
        assert 'name="next" value="/queue"' in await page.text()
        ok = await _sign_in(client, "ann@a.test", PASSWORD, next_url="/conversations/7")
        assert ok.headers["Location"] == "/conversations/7"
    finally:
        await services.close()
