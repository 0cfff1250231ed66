"""Signing agents in and out, and the checks every other handler runs.

* Passwords are argon2id (`agent_ui.passwords`); an unknown email is verified against a
  dummy hash and answered exactly like a wrong password.
* Throttling: after 5 failures in 15 minutes for an account or a client address, sign-in
  answers 429 whatever the password (counted in the database, so every web process agrees).
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
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from agent_ui import access, sessions
from agent_ui.passwords import hash_password, verify_password
from agent_ui.sessions import Session
from agent_ui.settings import UiSettings
from agent_ui.workspace import WS_KEY, Workspace
from inbox.errors import AuthError, Forbidden, OmnideskError
from inbox.identity import normalize_email

log = logging.getLogger("omnidesk.agent_ui")

_UNSET = object()
SESSION_KEY: web.RequestKey[Any] = web.RequestKey("agent_session", object)
LOGIN_COOKIE = "od_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
MIN_PASSWORD = 10


class Throttled(OmnideskError):
    status = 429
    code = "too_many_attempts"


def client_ip(request: web.Request) -> str:
    # the direct peer; behind a proxy, configure it to pass the real address (not trusted here)
    return request.remote or "unknown"


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
) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = ws.render(
        "login.html", status=status, error=error, email=email, login_csrf=token, next_url=next_url
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=ws.settings.secure_cookies,
        path="/login",
    )
    return response


def safe_next(value: Any) -> str:
    """Only same-site paths: never an open redirect."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value[:500]
    return "/queue"


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
    keys = sessions.throttle_keys(email, client_ip(request))
    if await ws.store.read(lambda conn: sessions.is_throttled(conn, keys)):
        log.warning("sign-in throttled for %s", keys[1])
        return _login_page(
            ws,
            error="Too many failed attempts. Wait 15 minutes and try again.",
            email=email_raw,
            status=429,
            next_url=next_url,
        )
    agent_id, stored = await ws.store.read(lambda conn: sessions.password_hash_of(conn, email))
    ok = verify_password(stored, password)  # the dummy hash for unknown users: same cost
    if not ok or agent_id is None:
        await ws.store.write(lambda conn: sessions.record_failure(conn, keys))
        return _login_page(ws, error=WRONG, email=email_raw, status=401, next_url=next_url)

    old = _cookie_value(request, ws)

    def start(conn: Any) -> str:
        if old:
            sessions.end_session(conn, old)  # rotate: the pre-login id never becomes valid
        sessions.clear_failures(conn, keys[0])
        return sessions.create_session(
            conn,
            agent_id,
            lifetime=ws.settings.session_lifetime,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent"),
        )

    sid = await ws.store.write(start)
    log.info("agent %d signed in", agent_id)
    response = web.HTTPSeeOther(next_url)
    set_session_cookie(response, ws, sid)
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


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
    if not verify_password(stored, old_pw):
        error = "The current password is wrong."
    elif len(new_pw) < MIN_PASSWORD:
        error = f"The new password needs at least {MIN_PASSWORD} characters."
    if error:
        return ws.render("password.html", **page_context(session), error=error, status=400)
    hashed = hash_password(new_pw)
    await ws.store.write(lambda conn: sessions.set_password(conn, session.agent.id, hashed))
    if ws.live is not None:
        await ws.live.disconnect_agent(session.agent.id)
    response = web.HTTPSeeOther("/login")
    clear_session_cookie(response, ws)
    raise response
