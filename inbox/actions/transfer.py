"""Transfer a conversation to an inbox and/or a team (an agent's or an API token's move,
and the bulk action's): the case core's `transfer`, then the router hears that the
conversation waits in its new queue.

`events_for` announces `conversation.queued` only when a conversation comes to wait (an
agent let it go); one that was already waiting and changed inbox or team is announced
here as queued again, so the router re-reads its row and places it with the new team's
skill (`routing.settings.team_skill`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import partial

from inbox.actions.announce import announce, events_for
from inbox.actions.run import Clock, apply_case_op, utc_now
from inbox.bus.backends import EventBus
from inbox.cases import Actor, CasePolicies, Change
from inbox.cases.ownership import transfer
from inbox.errors import ValidationError
from inbox.events import Event, EventName, Queued
from inbox.store.backends import Store

__all__ = ["check_destination", "queue_events", "transfer_to_queue"]

MAX_NAME = 100  # the width of conversations.inbox/team


def check_destination(inbox: str | None, team: str | None, known: Collection[str] | None) -> None:
    """Refuse a destination the config does not know (`known`: its inboxes, which are its
    teams too; None: not checked)."""
    if inbox is None and team is None:
        raise ValidationError("transfer to an 'inbox' or a 'team'", field="inbox")
    for key, name in (("inbox", inbox), ("team", team)):
        if name is None:
            continue
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise ValidationError(f"'{key}' must be a name", field=key)
        if known is not None and name not in known:
            raise ValidationError(f"no {key} {name!r}; one of {sorted(known)}", field=key)


def queue_events(change: Change, at: datetime) -> list[Event]:
    """`events_for(change)`, and `conversation.queued` when it waits and moved queue."""
    events = events_for(change, at)
    case, before = change.case, change.before
    moved = (case.inbox, case.team) != (before.inbox, before.team)
    queued = any(e.name == EventName.CONVERSATION_QUEUED for e in events)
    if case.waiting and moved and not queued:
        data = Queued(conversation_id=case.id, priority=case.priority)
        data["inbox"], data["team"] = case.inbox, case.team
        events.append(Event(EventName.CONVERSATION_QUEUED, data, at))
    return events


async def transfer_to_queue(
    store: Store,
    bus: EventBus,
    policies: CasePolicies,
    conversation_id: int,
    actor: Actor,
    *,
    inbox: str | None = None,
    team: str | None = None,
    reason: str | None = None,
    clock: Clock = utc_now,
) -> Change:
    """Move the conversation to `inbox` and/or `team` (its agent lets it go): it waits
    there for an agent of it. Raises `NotFound`, or the core's refusal (`Conflict`: a
    solved conversation, or it is already there)."""
    op = partial(transfer, inbox=inbox, team=team, reason=reason)
    change, at = await store.write(
        lambda conn: apply_case_op(conn, conversation_id, op, actor, policies, clock)
    )
    await announce(bus, queue_events(change, at))
    return change
