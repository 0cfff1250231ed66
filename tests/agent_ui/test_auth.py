"""Sign-in, sessions, cookies, CSRF, throttling and password change, through the real app."""

from __future__ import annotations

import re
import subprocess
import sys

import sqlalchemy as sa

from inbox.store import schema as t
from tests.agent_ui.conftest import PASSWORD, sign_in


async def _form(client):
    client.session.cookie_jar.clear()
    page = await client.get("/login")
    return re.search(r'name="login_csrf" value="([^"]+)"', await page.text()).group(1)


async def _attempt(client, email, password, ip_headers=None):
    token = await _form(client)
    client.session.cookie_jar.clear()  # sent by hand: a Secure cookie is not sent over http
    return await client.post(
        "/login",
        data={"email": email, "password": password, "login_csrf": token},
        allow_redirects=False,
        headers={"Cookie": f"od_login_csrf={token}", **(ip_headers or {})},
    )


def _error_text(html: str) -> str:
    m = re.search(r'<p class="error" role="alert" id="login-error">([^<]*)</p>', html)
    return m.group(1) if m else ""


async def test_sign_in_sets_a_strict_session_cookie_and_rotates_the_id(desk):
    resp = await _attempt(desk.client, "ann@a.test", PASSWORD)
    assert resp.status == 303 and resp.headers["Location"] == "/queue"
    header = next(h for h in resp.headers.getall("Set-Cookie") if h.startswith("od_session="))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Secure" not in header  # public URL is http in this test
    first = resp.cookies["od_session"].value
    # signing in again from the same browser ends the old id and issues a new one
    token = await _form(desk.client)
    again = await desk.client.post(
        "/login",
        data={"email": "ann@a.test", "password": PASSWORD, "login_csrf": token},
        headers={"Cookie": f"od_session={first}; od_login_csrf={token}"},
        allow_redirects=False,
    )
    assert again.status == 303
    second = again.cookies["od_session"].value
    assert second != first
    desk.client.session.cookie_jar.clear()
    old = await desk.client.get("/agent/api/queue", headers={"Cookie": f"od_session={first}"})
    new = await desk.client.get("/agent/api/queue", headers={"Cookie": f"od_session={second}"})
    assert (old.status, new.status) == (401, 200)
    # only a hash of the id is stored
    stored = await desk.store.read(
        lambda c: [r.id_hash for r in c.execute(sa.select(t.agent_sessions.c.id_hash))]
    )
    assert stored and first not in stored and second not in stored


async def test_secure_host_cookie_when_the_public_url_is_https(tmp_path, aiohttp_client):
    from omnidesk.app import make_web_app
    from tests.agent_ui.conftest import add_people, build_desk

    _config, services = await build_desk(
        tmp_path, router=False, public_url="https://desk.example.com"
    )
    try:
        client = await aiohttp_client(make_web_app(services))
        await add_people(services)
        resp = await _attempt(client, "ann@a.test", PASSWORD)
        assert resp.status == 303
        header = next(
            h for h in resp.headers.getall("Set-Cookie") if h.startswith("__Host-od_session=")
        )
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
        assert "Domain" not in header
    finally:
        await services.close()


async def test_unknown_user_and_wrong_password_get_identical_answers(desk):
    wrong = await _attempt(desk.client, "ann@a.test", "not the password")
    unknown = await _attempt(desk.client, "nobody@nowhere.test", "not the password")
    assert wrong.status == unknown.status == 401
    assert (
        _error_text(await wrong.text())
        == _error_text(await unknown.text())
        == "Wrong email or password."
    )
    assert "od_session" not in wrong.cookies and "od_session" not in unknown.cookies


async def test_five_failures_per_account_then_429_even_with_the_right_password(desk):
    statuses = []
    for i in range(5):
        # different addresses: only the account limit applies
        resp = await _attempt(desk.client, "ann@a.test", f"wrong-{i}")
        statuses.append(resp.status)
    assert statuses == [401] * 5
    blocked = await _attempt(desk.client, "ann@a.test", PASSWORD)
    assert blocked.status == 429
    assert "Too many failed attempts" in await blocked.text()
    # unknown accounts are throttled the same way (no way to tell them apart)
    for i in range(5):
        await _attempt(desk.client, "ghost@nowhere.test", f"x{i}")
    ghost = await _attempt(desk.client, "ghost@nowhere.test", "x")
    assert ghost.status == 429


async def test_failures_over_many_accounts_from_one_address_block_every_account_from_it(desk):
    from inbox.accounts.signin_throttle import ThrottlePolicy

    for i in range(ThrottlePolicy().address_free_attempts):
        assert (await _attempt(desk.client, f"a{i}@x.test", f"p{i}")).status == 401
    # a different, real account from the same address is now refused too
    resp = await _attempt(desk.client, "bob@b.test", PASSWORD)
    assert resp.status == 429


async def test_one_agents_typos_do_not_hold_back_the_others_on_a_shared_address(desk):
    from inbox.accounts import signin_throttle
    from inbox.store import signins

    for i in range(6):  # one agent mistypes until throttled
        await _attempt(desk.client, "bob@b.test", f"wrong{i}")
    assert (await _attempt(desk.client, "bob@b.test", "wrong-again")).status == 429
    # the colleague at the next desk (same address) signs in at once, again and again
    for _ in range(3):
        desk.client.session.cookie_jar.clear()
        assert (await _attempt(desk.client, "ann@a.test", PASSWORD)).status == 303
    # and each success forgave one of the address's failures: it drifts back to zero
    key = signin_throttle.keys_for("ann@a.test", "127.0.0.1")[1]
    assert await desk.store.read(lambda c: signins.counted(c, key)) == 2


async def test_failures_older_than_the_window_do_not_count(desk):
    import time

    from inbox.accounts import signin_throttle
    from inbox.store import signins

    policy = signin_throttle.ThrottlePolicy()  # the defaults, as the desk runs
    old = time.time() - policy.forget - 60
    keys = signin_throttle.keys_for("ann@a.test", "127.0.0.1")
    for _ in range(policy.free_attempts + 3):
        await desk.store.write(lambda c: signins.reserve(c, keys, policy, now=old))
    assert await desk.store.read(lambda c: signins.counted(c, keys[0])) == 5
    assert await desk.store.write(lambda c: signins.reserve(c, keys, policy)) == 0.0
    assert (await _attempt(desk.client, "ann@a.test", PASSWORD)).status == 303


async def test_login_form_needs_its_double_submit_token(desk):
    desk.client.session.cookie_jar.clear()
    resp = await desk.client.post(
        "/login",
        data={"email": "ann@a.test", "password": PASSWORD, "login_csrf": "forged"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert "od_session" not in resp.cookies


async def test_csrf_token_is_required_on_every_state_change(desk):
    conv = await desk.conversation("inbox-a")
    await desk.login("agent_a")
    path = f"/agent/api/conversations/{conv['conversation_id']}/note"
    body = '{"text": "private"}'
    missing = await desk.client.post(path, data=body, headers=desk.headers("agent_a", csrf=False))
    wrong = await desk.client.post(
        path, data=body, headers={**desk.headers("agent_a", csrf=False), "X-CSRF-Token": "nope"}
    )
    # another agent's valid token is not this session's token
    await desk.login("agent_b")
    other = await desk.client.post(
        path,
        data=body,
        headers={
            **desk.headers("agent_a", csrf=False),
            "X-CSRF-Token": desk.people["agent_b"].csrf,
        },
    )
    foreign = await desk.client.post(
        path, data=body, headers={**desk.headers("agent_a"), "Origin": "https://evil.example"}
    )
    good = await desk.client.post(
        path,
        data=body,
        headers={**desk.headers("agent_a"), "Origin": str(desk.client.make_url("/")).rstrip("/")},
    )
    assert [missing.status, wrong.status, other.status, foreign.status, good.status] == [
        403,
        403,
        403,
        403,
        200,
    ]
    # the form posts (logout) take the token as a field
    logout_bad = await desk.client.post(
        "/logout",
        data={"csrf_token": "nope"},
        headers=desk.headers("agent_a", csrf=False, json=False),
        allow_redirects=False,
    )
    assert logout_bad.status == 403
    notes = await desk.store.read(
        lambda c: c.execute(
            sa.select(sa.func.count())
            .select_from(t.messages)
            .where(t.messages.c.delivery_status == "note")
        ).scalar_one()
    )
    assert notes == 1  # only the request with the right token wrote


async def test_logout_ends_the_session(desk):
    p = await desk.login("agent_a")
    resp = await desk.client.post(
        "/logout",
        data={"csrf_token": p.csrf},
        headers=desk.headers("agent_a", csrf=False, json=False),
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    after = await desk.client.get("/agent/api/queue", headers=desk.headers("agent_a"))
    assert after.status == 401


async def test_password_change_ends_every_session_of_the_agent(desk):
    first = await desk.login("agent_a")
    cookie1 = first.cookie
    second_cookie, second_csrf = await sign_in(desk.client, "ann@a.test", PASSWORD)
    short = await desk.client.post(
        "/account/password",
        data={"csrf_token": second_csrf, "current": PASSWORD, "new": "short"},
        headers={"Cookie": f"od_session={second_cookie}"},
        allow_redirects=False,
    )
    assert short.status == 400
    wrong = await desk.client.post(
        "/account/password",
        data={"csrf_token": second_csrf, "current": "nope", "new": "a much longer one"},
        headers={"Cookie": f"od_session={second_cookie}"},
        allow_redirects=False,
    )
    assert wrong.status == 400
    ok = await desk.client.post(
        "/account/password",
        data={"csrf_token": second_csrf, "current": PASSWORD, "new": "a brand new passphrase"},
        headers={"Cookie": f"od_session={second_cookie}"},
        allow_redirects=False,
    )
    assert ok.status == 303
    desk.client.session.cookie_jar.clear()
    for cookie in (cookie1, second_cookie):
        resp = await desk.client.get("/agent/api/queue", headers={"Cookie": f"od_session={cookie}"})
        assert resp.status == 401
    assert (await _attempt(desk.client, "ann@a.test", PASSWORD)).status == 401
    assert (await _attempt(desk.client, "ann@a.test", "a brand new passphrase")).status == 303


async def test_open_redirects_are_refused(desk):
    token = await _form(desk.client)
    resp = await desk.client.post(
        "/login",
        data={
            "email": "ann@a.test",
            "password": PASSWORD,
            "login_csrf": token,
            "next": "//evil.example/x",
        },
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/queue"


def test_migrations_have_one_head():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from alembic.script import ScriptDirectory; from inbox.store.migrate import alembic_config;"
            "print(len(ScriptDirectory.from_config(alembic_config('sqlite://')).get_heads()))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"
