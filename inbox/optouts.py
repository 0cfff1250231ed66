"""SMS opt-outs (STOP/START), kept on the contact's phone identity."""

from __future__ import annotations

from inbox.store import contacts
from inbox.store.backends import Store


class SqlOptOuts:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def is_opted_out(self, phone: str) -> bool:
        return await self.store.read(lambda conn: contacts.is_opted_out(conn, phone))

    async def set(self, phone: str, opted_out: bool) -> None:
        await self.store.write(lambda conn: contacts.set_opted_out(conn, phone, opted_out))
