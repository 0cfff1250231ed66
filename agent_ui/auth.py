"""Signing agents in and out, and the checks every other handler runs.

* Passwords are argon2id (`agent_ui.passwords`); an unknown email is verified against a
  dummy hash and answered exactly like a wrong password.
* Throttling (`inbox.accounts.signin_throttle`): per (account, client address) and per address,
  a few free attempts, then growing waits; a throttled attempt is answered 429 with
  Retry-After whatever the password, and checks no password. The attempt is counted before
  the password is checked, in one statement, so parallel attempts cannot slip through.
  The client address honours `[agent_ui] trusted_proxies` (`inbox.web.client_address`).
* argon2 runs on `PasswordWorker`'s threads, never on the event loop; when too many checks
  wait already, sign-in answers 503 with Retry-After at once.
* The session cookie is HttpOnly, SameSite=Lax, and Secure (with the `__Host-` prefix)
  when the public URL is https. A new session id is issued at every sign-in; the old one
  ends. Changing the password ends every session of the agent.
* CSRF: every state-changing request carries the session's token, as the `csrf_token`
  form field or the `X-CSRF-Token` header (fetch), and a foreign `Origin` is refused.
  The sign-in form itself uses a double-submit token (cookie + field).
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from agent_ui import access
from agent_ui.passwords import Busy
from agent_ui.settings import UiSettings
from agent_ui.workspace import WS_KEY, Workspace
from inbox import metrics
from inbox.accounts.signin_throttle import keys_for
from inbox.errors import AuthError, Forbidden, OmnideskError
from inbox.identity import normalize_email
from inbox.store import sessions, signins
from inbox.store.sessions import Session
from inbox.web.client_address import request_client_address

log = logging.getLogger("omnidesk.agent_ui")

_UNSET = object()
SESSION_KEY: web.RequestKey[Any] = web.RequestKey("agent_session", object)
LOGIN_COOKIE = "od_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
MIN_PASSWORD = 10


def client_ip(request: web.Request) -> str:
    """The client's address: the peer, or X-Forwarded-For read behind a trusted proxy."""
    return request_client_address(request, request.app[WS_KEY].settings.trusted_proxies)


def _cookie_value(request: web.Request, ws: Workspace) -> str:
    return request.cookies.get(ws.settings.cookie_name, "")


async def current(request: web.Request) -> Session | None:
    """The signed-in agent's session, or None (cached on the request)."""
    cached = request.get(SESSION_KEY, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[no-any-return]
    ws = request.app[WS_KEY]
    sid = _cookie_value(request, ws)
    session = None
    if sid:
        session = await ws.store.read(
            lambda conn: sessions.load_session(conn, sid, idle=ws.settings.session_idle)
        )
        if session is not None:
            await ws.store.write(lambda conn: sessions.touch_session(conn, sid))
    request[SESSION_KEY] = session
    return session


async def require_session(request: web.Request) -> Session:
    """For JSON endpoints: 401 without a session; for writes also the CSRF checks."""
    session = await current(request)
    if session is None:
        raise AuthError("sign in first")
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        await check_csrf(request, session)
    return session


def same_origin(origin: str | None, host: str | None, settings: UiSettings) -> bool:
    """Is `origin` this server as the browser reached it (its Host), or the public URL?"""
    if not origin:
        return False
    origin = origin.lower().rstrip("/")
    if origin == settings.public_origin or origin in settings.allowed_origins:
        return True
    host = (host or "").lower()
    return (
        bool(host)
        and origin.startswith(("http://", "https://"))
        and urlsplit(origin).netloc == host
    )


async def check_csrf(request: web.Request, session: Session) -> None:
    ws = request.app[WS_KEY]
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(origin, request.headers.get("Host"), ws.settings):
        raise Forbidden("cross-site request refused")
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.content_type in {
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }:
        form = await request.post()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not token or not hmac.compare_digest(token, session.csrf_token):
        raise Forbidden("missing or wrong CSRF token; reload the page")


def set_session_cookie(response: web.StreamResponse, ws: Workspace, sid: str) -> None:
    response.set_cookie(
        ws.settings.cookie_name,
        sid,
        httponly=True,
        samesite="Lax",
        secure=ws.settings.secure_cookies,
        path="/",
        max_age=int(ws.settings.session_lifetime.total_seconds()),
    )


def clear_session_cookie(response: web.StreamResponse, ws: Workspace) -> None:
    response.del_cookie(
        ws.settings.cookie_name,
        path="/",
        secure=ws.settings.secure_cookies,
        httponly=True,
        samesite="Lax",
    )


def page_context(session: Session) -> dict[str, Any]:
    """What base.html needs on every signed-in page."""
    return {
        "me": session.agent,
        "csrf": session.csrf_token,
        "presence": session.presence,
        "supervising": access.can_supervise(session.agent),
    }


# -- sign in / out ------------------------------------------------------------------------


def _login_page(
    ws: Workspace,
    *,
    error: str | None = None,
    email: str = "",
    status: int = 200,
    next_url: str = "/queue",
    retry_after: float | None = None,
) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = ws.render(
        "login.html", status=status, error=error, email=email, login_csrf=token, next_url=next_url
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=ws.settings.secure_cookies,
        path="/login",
    )
    return response


# what a browser drops from a URL or reads as "/" (WHATWG URL: tab and newline removed
# anywhere, "\\" a slash), and any other control character
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(value: Any) -> str:
    """Only a local path of this site: "/" then anything but a second "/", with no
    character a browser would drop or turn into a slash, also once percent-decoded (a
    path that decodes to "//host" is refused too). Anything else gives "/queue"."""
    if not isinstance(value, str) or len(value) > 500:
        return "/queue"
    decoded, seen = value, {value}
    for _ in range(3):
        decoded = unquote(decoded)
        if decoded in seen:
            break
        seen.add(decoded)
    for form in seen:
        if not form.startswith("/") or form.startswith("//") or _UNSAFE.search(form):
            return "/queue"
    return value


async def login_form(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    if await current(request) is not None:
        raise web.HTTPSeeOther("/queue")
    return _login_page(ws, next_url=safe_next(request.query.get("next")))


WRONG = "Wrong email or password."


async def login(request: web.Request) -> web.StreamResponse:
    ws = request.app[WS_KEY]
    form = await request.post()
    email_raw = str(form.get("email") or "")[:320]
    password = str(form.get("password") or "")[:1024]
    next_url = safe_next(form.get("next"))
    cookie_token = request.cookies.get(LOGIN_COOKIE, "")
    field_token = str(form.get("login_csrf") or "")
    if not cookie_token or not hmac.compare_digest(cookie_token, field_token):
        return _login_page(
            ws,
            error="The sign-in form expired; please try again.",
            email=email_raw,
            status=403,
            next_url=next_url,
        )
    try:
        email = normalize_email(email_raw)
    except OmnideskError:
        email = email_raw.strip().lower()
    address = client_ip(request)
    keys = keys_for(email, address)
    policy = ws.settings.throttle
    # refused by a read while throttled (a flood costs no writes); otherwise counted
    # before the check, so parallel attempts cannot all pass the limit first
    wait = await ws.store.read(lambda conn: signins.waiting(conn, keys, policy))
    if wait <= 0:
        wait = await ws.store.write(lambda conn: signins.reserve(conn, keys, policy))
    if wait > 0:
        _log_throttled(address, wait)
        metrics.SIGNIN_THROTTLED.inc()
        return _login_page(
            ws,
            error=f"Too many failed attempts. Wait {_duration(wait)} and try again.",
            email=email_raw,
            status=429,
            next_url=next_url,
            retry_after=wait,
        )
    agent_id, stored = await ws.store.read(lambda conn: sessions.password_hash_of(conn, email))
    try:
        # the dummy hash for unknown users: same cost
        ok = await ws.passwords.verify(stored, password)
    except Busy:
        await ws.store.write(lambda conn: signins.release(conn, keys))
        return _login_page(
            ws,
            error="The server is busy signing others in. Try again in a moment.",
            email=email_raw,
            status=503,
            next_url=next_url,
            retry_after=1,
        )
    if not ok or agent_id is None:
        metrics.SIGNIN_FAILURES.inc()
        await ws.store.write(lambda conn: signins.failed(conn, keys))
        return _login_page(ws, error=WRONG, email=email_raw, status=401, next_url=next_url)

    old = _cookie_value(request, ws)

    sid = await ws.store.write(
        lambda conn: sessions.sign_in(
            conn,
            agent_id,
            replaces=old,  # rotate: the pre-login id never becomes valid
            throttle_keys=keys,
            policy=policy,
            lifetime=ws.settings.session_lifetime,
            ip=address,
            user_agent=request.headers.get("User-Agent"),
        )
    )
    log.info("agent %d signed in", agent_id)
    response = web.HTTPSeeOther(next_url)
    set_session_cookie(response, ws, sid)
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


_LOGGED: dict[str, float] = {}


def _log_throttled(address: str, wait: float) -> None:
    """One WARNING per address and minute: a burst of refused attempts is not a log flood."""
    now = time.monotonic()
    if _LOGGED.get(address, 0.0) > now:
        return
    if len(_LOGGED) > 10_000:
        _LOGGED.clear()
    _LOGGED[address] = now + 60
    log.warning("sign-in throttled for %s (next attempt in %.0f s)", address, wait)


def _duration(seconds: float) -> str:
    if seconds < 90:
        n = max(1, math.ceil(seconds))
        return f"{n} second{'s' if n != 1 else ''}"
    n = math.ceil(seconds / 60)
    return f"{n} minutes"


async def logout(request: web.Request) -> web.StreamResponse:
    ws = request.app[WS_KEY]
    await require_session(request)
    sid = _cookie_value(request, ws)
    await ws.store.write(lambda conn: sessions.end_session(conn, sid))
    if ws.live is not None:
        await ws.live.disconnect_session(sid)
    response = web.HTTPSeeOther("/login")
    clear_session_cookie(response, ws)
    raise response


async def password_form(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await current(request)
    if session is None:
        raise web.HTTPSeeOther("/login?next=/account/password")
    return ws.render("password.html", **page_context(session), error=None)


async def change_password(request: web.Request) -> web.StreamResponse:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    form = await request.post()
    old_pw = str(form.get("current") or "")[:1024]
    new_pw = str(form.get("new") or "")[:1024]
    _, stored = await ws.store.read(
        lambda conn: sessions.password_hash_of(conn, session.agent.email)
    )
    error = None
    try:
        if not await ws.passwords.verify(stored, old_pw):
            error = "The current password is wrong."
        elif len(new_pw) < MIN_PASSWORD:
            error = f"The new password needs at least {MIN_PASSWORD} characters."
        if error:
            return ws.render("password.html", **page_context(session), error=error, status=400)
        hashed = await ws.passwords.hash(new_pw)
    except Busy as exc:
        context = page_context(session)
        response = ws.render("password.html", **context, error=exc.message, status=503)
        response.headers["Retry-After"] = "1"
        return response
    await ws.store.write(lambda conn: sessions.set_password(conn, session.agent.id, hashed))
    if ws.live is not None:
        await ws.live.disconnect_agent(session.agent.id)
    response = web.HTTPSeeOther("/login")
    clear_session_cookie(response, ws)
    raise response
