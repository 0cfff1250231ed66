"""Links to the files of chat messages: signed, so whoever was shown a link may fetch the
file (`GET /widget/files/...`, `channels.webchat.http`) and nobody can guess one. The
socket side (messages with their files) and the HTTP side (uploads, downloads) share one
`FileLinks`, so both sign alike."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from channels.webchat import signing


class FileLinks:
    def __init__(self, secret: str, public_url: str) -> None:
        self._secret = secret
        self.public_url = public_url.rstrip("/")

    def url(self, item: dict[str, Any]) -> str:
        """The download link of a stored file (`storage_key`, `content_type`, `filename`)."""
        key, ct = (
            str(item["storage_key"]),
            str(item.get("content_type") or "application/octet-stream"),
        )
        name = quote(str(item.get("filename") or "file"))
        sig = signing.file_sig(self._secret, key, ct)
        return f"{self.public_url}/widget/files/{key}?ct={quote(ct)}&n={name}&s={sig}"

    def with_urls(self, message: dict[str, Any]) -> dict[str, Any]:
        """A wire message as the widget gets it: each file with its link, not its key."""
        files = []
        for item in message.get("files", ()):
            entry = {k: item.get(k) for k in ("filename", "content_type", "size")}
            if item.get("storage_key"):
                entry["url"] = self.url(item)
            files.append(entry)
        return {**message, "files": files}
