"""Where attachment bytes go before `ingest`: a callable `store(file) -> storage key`.

Keys are content addresses, so storing the same attachment twice (a redelivered message,
a crash before commit) keeps one copy. Production uses `inbox.store.files.FileStore` through
`put_store`; `MemoryAttachmentStore` serves tests and benchmarks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
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


class _Puts(Protocol):
    async def put(self, data: bytes, *, filename: str = "", content_type: str = "") -> str: ...


def put_store(store: _Puts) -> StoreFn:
    """A `StoreFn` over an object with `async put(data, *, filename, content_type) -> key`,
    such as `inbox.store.files.FileStore`."""

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
