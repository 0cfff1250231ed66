"""The attachment file store under the data directory, content-addressed.

A key is the SHA-256 of the bytes, so a redelivered webhook or a double-submitted form
stores its attachment once. Files are written to a temporary name, fsynced and renamed,
so a crash never leaves a half-written attachment under a real key.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path

from inbox.errors import NotFound

_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}$")


class FileStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    async def put(self, data: bytes, *, filename: str = "", content_type: str = "") -> str:
        """Store bytes; returns the storage key kept on `Attachment.storage_key`."""
        return await asyncio.to_thread(self._put, data)

    def _put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest}"
        path = self.root / key
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return key

    def path(self, key: str) -> Path:
        """The file of a key; refuses anything that is not a key this store made."""
        if not _KEY.match(key):
            raise NotFound("no such attachment")
        path = self.root / key
        if not path.is_file():
            raise NotFound("no such attachment")
        return path

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)
