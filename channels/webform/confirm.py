"""The confirmation mail a form's submitter gets when the form asks for one
(`confirmation_email = true`): queued in the outbox as an automatic answer on the email
channel, so the customer's reply threads into the same conversation."""

from __future__ import annotations

from collections.abc import Callable

from channels.webform.settings import FormSettings
from inbox.store.backends import Store
from inbox.store.outbox import enqueue
from inbox.types import AuthorKind, Channel, IngestResult


def confirmation_text(form: FormSettings) -> str:
    return (
        f"Thank you for contacting us through “{form.title}”. We received your message "
        "and will answer by email; reply to this email to add anything."
    )


def confirmation_subject(form: FormSettings) -> str:
    return f"We received your message: {form.title}"


class Confirmation:
    """`await confirm(email, form, result)` (`channels.webform.endpoint.Confirm`): writes
    the confirmation to the outbox, then `poke`s the outbox to send it now."""

    def __init__(self, store: Store, poke: Callable[[int], None]) -> None:
        self._store = store
        self._poke = poke

    async def __call__(self, email: str, form: FormSettings, result: IngestResult) -> None:
        message_id = await self._store.write(
            lambda conn: enqueue(
                conn,
                conversation_id=result.conversation_id,
                text=confirmation_text(form),
                subject=confirmation_subject(form),
                author_kind=AuthorKind.BOT,
                auto_reply=True,
                channel=Channel.EMAIL,
            )
        )
        self._poke(message_id)
