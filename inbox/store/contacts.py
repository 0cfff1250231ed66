"""The contacts repository: contacts with their identities, notes, merges, the follow-up
address a chat visitor left, and SMS opt-outs (kept on the phone identity).

Sync functions of a Connection, run by `Store.read/write/call`. A contact row becomes a
`Contact` in one place (`get_many`), whoever asks: the triage batch, the pages, the API.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.store import schema as t
from inbox.store.fastsql import Sql, as_utc, from_json, in_list
from inbox.types import AuthorKind, Contact, Identity, IdentityKind

__all__ = [
    "follow_merges",
    "get",
    "get_many",
    "is_opted_out",
    "merge",
    "merged_into",
    "notes_of",
    "of_identity",
    "save_followup",
    "set_notes",
    "set_opted_out",
]

MAX_MERGES = 16  # a chain of merges longer than this is cut there (none is ever made)
Q_MERGED_INTO = "SELECT merged_into, name FROM contacts WHERE id = :id"


def get(conn: Connection, contact_id: int) -> Contact:
    """The contact, or NotFound."""
    found = get_many(conn, [contact_id])
    if contact_id not in found:
        raise NotFound(f"no contact {contact_id}")
    return found[contact_id]


def get_many(conn: Connection, ids: Collection[int]) -> dict[int, Contact]:
    """The contacts of `ids` that exist, with their identities (in the order they were
    added): two plain-SQL reads for any number of them (triage reads a batch's contacts)."""
    if not ids:
        return {}
    sql = Sql(conn)
    listed, params = in_list("p", sorted(ids))
    idents: dict[int, list[Identity]] = {}
    for r in sql.dicts(
        f"SELECT contact_id, kind, value, verified FROM identities WHERE contact_id IN {listed} "
        "ORDER BY id",
        **params,
    ):
        idents.setdefault(r["contact_id"], []).append(
            Identity(IdentityKind(r["kind"]), r["value"], bool(r["verified"]))
        )
    return {
        r["id"]: Contact(
            id=r["id"],
            name=r["name"],
            identities=tuple(idents.get(r["id"], ())),
            created_at=as_utc(r["created_at"]),
            attributes=dict(from_json(r["attributes"]) or {}),
            tags=tuple(from_json(r["tags"]) or ()),
            merged_into=r["merged_into"],
        )
        for r in sql.dicts(
            "SELECT id, name, attributes, tags, merged_into, created_at FROM contacts "
            f"WHERE id IN {listed} ORDER BY id",
            **params,
        )
    }


def merged_into(conn: Connection, contact_id: int) -> list[Contact]:
    """The contacts merged into this one (their pointers name it), oldest first."""
    ids = [
        int(r.id)
        for r in conn.execute(
            sa.select(t.contacts.c.id).where(t.contacts.c.merged_into == contact_id)
        )
    ]
    return list(get_many(conn, ids).values())


def notes_of(conn: Connection, contact_id: int) -> str:
    """The agents' notes on the contact ("" when none), or NotFound."""
    notes = conn.execute(sa.select(t.contacts.c.notes).where(t.contacts.c.id == contact_id)).first()
    if notes is None:
        raise NotFound(f"no contact {contact_id}")
    return str(notes[0] or "")


def set_notes(conn: Connection, contact_id: int, notes: str) -> None:
    """Replace the contact's notes, or NotFound."""
    if not conn.execute(
        sa.update(t.contacts).where(t.contacts.c.id == contact_id).values(notes=notes)
    ).rowcount:
        raise NotFound(f"no contact {contact_id}")


def merge(conn: Connection, source: int, target: int) -> list[int]:
    """Fold `source` into `target`: identities and conversations move, tags and notes join;
    `source` stays as a pointer (merged_into). Returns the moved conversation ids.
    ValidationError for a contact merged into itself, NotFound for a missing one, Conflict
    when either was merged before."""
    if source == target:
        raise ValidationError("a contact cannot be merged into itself", field="into")
    ct, c = t.contacts.c, t.conversations.c
    rows = {r.id: r for r in conn.execute(sa.select(t.contacts).where(ct.id.in_((source, target))))}
    if source not in rows or target not in rows:
        raise NotFound("no such contact")
    if rows[source].merged_into is not None or rows[target].merged_into is not None:
        raise Conflict("that contact was already merged into another")
    moved = [int(r.id) for r in conn.execute(sa.select(c.id).where(c.contact_id == source))]
    conn.execute(sa.update(t.conversations).where(c.contact_id == source).values(contact_id=target))
    conn.execute(
        sa.update(t.identities).where(t.identities.c.contact_id == source).values(contact_id=target)
    )
    conn.execute(
        sa.update(t.messages)
        .where(
            t.messages.c.author_kind == AuthorKind.CONTACT.value, t.messages.c.author_id == source
        )
        .values(author_id=target)
    )
    tags = list(dict.fromkeys([*(rows[target].tags or []), *(rows[source].tags or [])]))
    notes = "\n\n".join(n for n in (rows[target].notes, rows[source].notes) if n)
    conn.execute(
        sa.update(t.contacts)
        .where(ct.id == target)
        .values(tags=tags, notes=notes, name=rows[target].name or rows[source].name)
    )
    conn.execute(sa.update(t.contacts).where(ct.id == source).values(merged_into=target))
    return moved


def follow_merges(conn: Connection, contact_id: int) -> tuple[int, bool]:
    """The contact a merged one lives on in (itself if it was not merged), and whether
    that one has a name."""
    sql = Sql(conn)
    for _ in range(MAX_MERGES):
        row = sql.first(Q_MERGED_INTO, id=contact_id)
        if row is None or row[0] is None:
            return contact_id, bool(row is not None and row[1])
        contact_id = row[0]
    return contact_id, True


def of_identity(conn: Connection, kind: IdentityKind, value: str) -> int | None:
    """The contact an identity belongs to (after merges), or None for an unknown one."""
    sql = Sql(conn)
    found = sql.scalar(
        "SELECT contact_id FROM identities WHERE kind = :kind AND value = :value",
        kind=kind.value,
        value=value,
    )
    return None if found is None else follow_merges(conn, int(found))[0]


def save_followup(conn: Connection, contact_id: int, email: str, consent: bool | None) -> None:
    """Keep the address a chat visitor left for a follow-up as a contact attribute (not an
    identity: nobody verified it), with the visitor's consent when it was asked."""
    attrs: dict[str, Any] = dict(
        conn.execute(
            sa.select(t.contacts.c.attributes).where(t.contacts.c.id == contact_id)
        ).scalar()
        or {}
    )
    attrs["email_for_followup"] = email
    if consent is not None:
        attrs["chat_consent"] = consent
    conn.execute(
        sa.update(t.contacts).where(t.contacts.c.id == contact_id).values(attributes=attrs)
    )


def is_opted_out(conn: Connection, phone: str) -> bool:
    """Whether the phone number said STOP (and not START since); False for an unknown one."""
    return bool(
        Sql(conn).scalar(
            "SELECT opted_out FROM identities WHERE kind = 'phone' AND value = :v", v=phone
        )
    )


def set_opted_out(conn: Connection, phone: str, opted_out: bool) -> None:
    """Note STOP (True) or START (False) on the phone identity; an unknown number: nothing."""
    Sql(conn).run(
        "UPDATE identities SET opted_out = :o WHERE kind = 'phone' AND value = :v",
        o=opted_out,
        v=phone,
    )
