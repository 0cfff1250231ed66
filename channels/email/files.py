"""Where attachment bytes go before `ingest`: a callable `store(file) -> storage key`.

Keys are content addresses (``sha256/ab/abcdef...``) so storing the same attachment
twice (a redelivered message, a crash before commit) writes one file. Two backends: a
directory (embedded deployments) and memory (tests and benchmarks).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from channels.email.parse import AttachmentFile, ParsedEmail
from inbox.types import InboundMessage

StoreFn = Callable[[AttachmentFile], Awaitable[str]]


def storage_key(file: AttachmentFile) -> str:
    return f"sha256/{file.sha256[:2]}/{file.sha256}"


class MemoryAttachmentStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def __call__(self, file: AttachmentFile) -> str:
        key = storage_key(file)
        self.blobs[key] = file.data
        return key


class DirectoryAttachmentStore:
    """Files under `root`, written atomically (temp file + rename) off the event loop."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    async def __call__(self, file: AttachmentFile) -> str:
        key = storage_key(file)
        await asyncio.to_thread(self._write, key, file.data)
        return key

    def _write(self, key: str, data: bytes) -> None:
        path = self.root / key
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _Puts(Protocol):
    async def put(self, data: bytes, *, filename: str = "", content_type: str = "") -> str: ...


def put_store(store: _Puts) -> StoreFn:
    """A `StoreFn` over an object with `async put(data, *, filename, content_type) -> key`,
    such as `inbox.files.FileStore`."""

    async def put(file: AttachmentFile) -> str:
        return await store.put(
            file.data,
            filename=file.attachment.filename,
            content_type=file.attachment.content_type,
        )

    return put


async def store_attachments(parsed: ParsedEmail, store: StoreFn | None) -> InboundMessage:
    """The message with `storage_key` set on every attachment whose bytes were stored."""
    message = parsed.message
    if store is None or not parsed.files:
        return message
    attachments = list(message.attachments)
    for file in parsed.files:
        key = await store(file)
        attachments[file.index] = dataclasses.replace(file.attachment, storage_key=key)
    return dataclasses.replace(message, attachments=tuple(attachments))
