"""HTTP side of the widget: `GET /widget.js` (the widget with the socket.io client inside
one closure: no global leaks, no CDN), uploads, file downloads, and the demo host page
served on another port to show cross-origin embedding."""

from __future__ import annotations

import fnmatch
import hashlib
import html
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from channels.webchat import signing
from channels.webchat.links import FileLinks
from channels.webchat.settings import WebchatSettings, WidgetSettings
from inbox.store.files import FileStore
from inbox.web.http import listen
from inbox.web.ratelimit import Limiter

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
# an installed wheel carries the client beside the widget (setup.py copies it there); a
# checkout reads it from node_modules/, where `npm ci` put it
_PACKAGED = STATIC / "vendor" / "socket.io.min.js"
SOCKETIO_CLIENT = (
    _PACKAGED
    if _PACKAGED.is_file()
    else NODE_MODULES / "socket.io-client" / "dist" / "socket.io.min.js"
)
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}


def bundle(client: Path = SOCKETIO_CLIENT, widget: Path = STATIC / "widget.js") -> bytes:
    """The socket.io client as a CommonJS module inside the widget's own closure."""
    if not client.is_file():
        raise FileNotFoundError(f"{client} is missing: run `npm ci` in the repository root")
    lib = "\n".join(
        line
        for line in client.read_text().splitlines()
        if not line.startswith("//# sourceMappingURL")
    )
    return (
        "(function(){'use strict';var module={exports:{}},exports=module.exports;\n"
        f"{lib}\n;var io=module.exports;\n{widget.read_text()}\n}})();\n"
    ).encode()


def _type_allowed(content_type: str, allowed: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(content_type, pattern) for pattern in allowed)


class WidgetHttp:
    """The widget's HTTP routes. `limiter` is the namespace's: an upload counts against
    the same per-visitor rate as a message."""

    def __init__(
        self,
        settings: WebchatSettings,
        *,
        secret: str,
        files: FileStore,
        links: FileLinks,
        limiter: Limiter,
    ) -> None:
        self.settings = settings
        self._secret = secret
        self._files = files
        self._links = links
        self._limiter = limiter
        self._bundle: tuple[bytes, str] | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/widget.js", self.script),
            web.options("/widget/upload", self.preflight),
            web.post("/widget/upload", self.upload),
            web.get("/widget/files/{prefix}/{digest}", self.download),
        ]

    # -- the script -----------------------------------------------------------------------
    async def script(self, request: web.Request) -> web.StreamResponse:
        if self._bundle is None:
            try:
                body = bundle()
            except FileNotFoundError as exc:
                log.error("%s", exc)
                raise web.HTTPServiceUnavailable(text=str(exc)) from None
            self._bundle = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        body, etag = self._bundle
        headers = {
            "Cache-Control": "public, max-age=300",
            "ETag": etag,
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        response = web.Response(
            body=body, content_type="application/javascript", charset="utf-8", headers=headers
        )
        response.enable_compression()
        return response

    # -- uploads --------------------------------------------------------------------------
    def _widget_for(self, request: web.Request) -> tuple[WidgetSettings, str]:
        widget = self.settings.widgets.get(request.query.get("widget", ""))
        origin = request.headers.get("Origin", "")
        if widget is None or not widget.origin_allowed(origin):
            raise web.HTTPForbidden(text="origin not allowed for this widget")
        return widget, origin

    def _cors(self, origin: str) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    async def preflight(self, request: web.Request) -> web.Response:
        _widget, origin = self._widget_for(request)
        return web.Response(
            status=204,
            headers={
                **self._cors(origin),
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type, X-Visitor-Token, X-Filename",
                "Access-Control-Max-Age": "600",
            },
        )

    async def upload(self, request: web.Request) -> web.Response:
        widget, origin = self._widget_for(request)
        cors = self._cors(origin)

        def refuse(status: int, message: str, **extra: Any) -> web.Response:
            return web.json_response(
                {"ok": False, "message": message, **extra}, status=status, headers=cors
            )

        max_age = self.settings.token_max_age_days * 86400
        visitor_id = signing.check_visitor_token(
            self._secret, widget.key, request.headers.get("X-Visitor-Token"), max_age=max_age
        )
        if visitor_id is None:
            return refuse(401, "reload the page and try again")
        content_type = (request.content_type or "").lower()
        if not _type_allowed(content_type, self.settings.allowed_file_types):
            return refuse(415, f"files of type {content_type or 'unknown'} are not accepted")
        limit = self.settings.max_file_bytes
        if request.content_length is not None and request.content_length > limit:
            return refuse(413, f"the file is larger than {limit // 1024} KiB")
        wait = await self._limiter.hit(
            ("msg", visitor_id), self.settings.rate_limit, self.settings.rate_window_seconds
        )
        if wait is not None:
            return refuse(
                429, "you are sending too quickly; wait a moment", retry_after=round(wait)
            )
        data = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > limit:
                return refuse(413, f"the file is larger than {limit // 1024} KiB")
        if not data:
            return refuse(400, "the file is empty")
        magic = _MAGIC.get(content_type)
        if magic is not None and not bytes(data[:16]).startswith(magic):
            return refuse(415, f"the file is not a {content_type}")
        filename = (
            unquote(request.headers.get("X-Filename", "file"))[:200].replace("/", "_") or "file"
        )
        key = await self._files.put(bytes(data), filename=filename, content_type=content_type)
        meta = {"key": key, "filename": filename, "content_type": content_type, "size": len(data)}
        item = {**meta, "storage_key": key}
        return web.json_response(
            {
                "ok": True,
                "ref": signing.file_ref(self._secret, visitor_id, meta),
                "filename": filename,
                "content_type": content_type,
                "size": len(data),
                "url": self._links.url(item),
            },
            headers=cors,
        )

    async def download(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.match_info['prefix']}/{request.match_info['digest']}"
        ct = request.query.get("ct", "")
        if not signing.file_sig(self._secret, key, ct) == request.query.get("s", "x"):
            raise web.HTTPNotFound()
        path = self._files.path(key)
        inline = ct in INLINE_TYPES
        name = request.query.get("n", "file").replace('"', "")
        disposition = "inline" if inline else "attachment"
        headers = {
            "Cache-Control": "private, max-age=86400",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            "Content-Type": ct if inline else "application/octet-stream",
        }
        return web.FileResponse(path, headers=headers)


# -- the demo host page -------------------------------------------------------------------


def demo_page(public_url: str, widget: str) -> str:
    """A host page with hostile global styles: the widget must look the same anyway."""
    src = html.escape(f"{public_url.rstrip('/')}/widget.js", quote=True)
    key = html.escape(widget, quote=True)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example Shop: web chat demo</title>
<style>
  * {{ font-family: Georgia, serif !important; }}
  body {{ margin: 0; padding: 2rem; background: #fdf6e3; color: #5b4636; }}
  button {{ background: #e11d48; border: 4px dashed lime; }}
  div {{ outline: 1px dotted #b45309; }}
</style></head>
<body>
  <h1>Example Shop</h1>
  <p>This page is served from a different origin than omnidesk ({html.escape(public_url)}).
  Its own styles are deliberately loud; the chat widget in the corner lives in a Shadow DOM
  and is not affected by them, nor does it affect this page.</p>
  <p><button type="button">A host-page button</button></p>
  <script src="{src}" data-widget="{key}" async></script>
</body></html>
"""


def demo_app(public_url: str, widget: str) -> web.Application:
    page = demo_page(public_url, widget)

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.add_routes([web.get("/", index)])
    return app


class DemoSite:
    """Runs the demo host page on its own port next to the service."""

    def __init__(self, host: str, port: int, public_url: str, widget: str) -> None:
        self.host, self.port = host, port
        self._app = demo_app(public_url, widget)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        try:
            await listen(
                self._runner,
                self.host,
                self.port,
                what="the chat demo page",
                key="webchat.demo_port",
            )
        except OSError:
            await self.stop()
            raise
        log.info("web chat demo page on http://%s:%d/", self.host, self.port)

    async def stop_listening(self, grace: float) -> None:
        """At shutdown: one static page, so it simply stops (within 1 s)."""
        await self.stop()

    async def stop(self) -> None:
        if self._runner is not None:  # one static page: what is in flight ends within 1 s
            await self._runner.cleanup()
            self._runner = None
