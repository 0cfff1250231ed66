from __future__ import annotations

from pathlib import Path

from emailtest_support import build_mail

from channels.email.files import put_store, store_attachments
from channels.email.parse import parse_message
from inbox.store.files import FileStore

PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 50


async def test_attachments_get_storage_keys_from_the_core_file_store(tmp_path: Path) -> None:
    parsed = parse_message(
        build_mail(attachments=(("a.png", "image/png", PNG), ("b.txt", "text/plain", b"hi")))
    )
    store = FileStore(tmp_path)
    message = await store_attachments(parsed, put_store(store))
    first, second = message.attachments
    assert await store.get(first.storage_key or "") == PNG
    assert await store.get(second.storage_key or "") == b"hi"
    assert (first.filename, first.content_type, first.size) == ("a.png", "image/png", len(PNG))


async def test_the_store_is_content_addressed(tmp_path: Path) -> None:
    parsed = parse_message(
        build_mail(attachments=(("a.png", "image/png", PNG), ("copy.png", "image/png", PNG)))
    )
    message = await store_attachments(parsed, put_store(FileStore(tmp_path)))
    keys = {a.storage_key for a in message.attachments}
    assert len(keys) == 1
    (key,) = keys
    assert (tmp_path / str(key)).read_bytes() == PNG
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [Path(str(key)).name]
