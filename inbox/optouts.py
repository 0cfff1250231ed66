"""SMS opt-outs (STOP/START), kept on the contact's phone identity."""

from __future__ import annotations

from inbox.store.backends import Store
from inbox.store.fastsql import Sql


class SqlOptOuts:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def is_opted_out(self, phone: str) -> bool:
        value = await self.store.read(
            lambda conn: Sql(conn).scalar(
                "SELECT opted_out FROM identities WHERE kind = 'phone' AND value = :v", v=phone
            )
        )
        return bool(value)

    async def set(self, phone: str, opted_out: bool) -> None:
        await self.store.write(
            lambda conn: Sql(conn).run(
                "UPDATE identities SET opted_out = :o WHERE kind = 'phone' AND value = :v",
                o=opted_out,
                v=phone,
            )
        )
