"""Bulk actions: one action over many conversations, one transaction per conversation,
each checked against the actor's rights (`inbox.cases.rights`), and a result per item.

    {"ids": [1, 2, 3], "action": "assign",   "agent_id": 7}
                                 "transfer", "inbox": "billing" and/or "team": "vip"
                                 "tag",      "tags": ["refund"]        (added to theirs)
                                 "status",   "status": "pending" | "on_hold" | "open" | ...
                                 "priority", "priority": "high", "reason": "..."
                                 "snooze",   "until": "2026-12-09T09:00:00+00:00"
                                 "solve"
    -> [{"id": 1, "ok": true}, {"id": 2, "ok": false, "code": "conflict", "message": "..."}]

An item's refusal (not found or not visible, forbidden, the core's `Conflict`) does not
stop the others; a bad request as a whole (unknown action, no ids, more than `MAX_IDS`)
is refused before any item is touched.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from inbox import events as ev
from inbox.actions.announce import announce
from inbox.actions.run import CaseOp, apply_case_op
from inbox.actions.transfer import check_destination, queue_events
from inbox.bus.backends import EventBus
from inbox.cases import Actor, Case, CasePolicies, CaseStatus, Change
from inbox.cases.lifecycle import set_priority, set_status
from inbox.cases.ownership import assign, transfer
from inbox.cases.rights import Rights
from inbox.errors import Forbidden, OmnideskError, PayloadTooLarge, ValidationError
from inbox.events import Event, EventName
from inbox.store import cases as case_repo
from inbox.store import conversations
from inbox.store.backends import Store
from inbox.web.untrusted import is_id

__all__ = ["ACTIONS", "MAX_IDS", "BulkRequest", "parse_bulk", "run_bulk"]

MAX_IDS = 200
ACTIONS = ("assign", "transfer", "tag", "status", "priority", "snooze", "solve")
MAX_TAGS, MAX_TAG = 20, 64


@dataclass(frozen=True)
class BulkRequest:
    ids: tuple[int, ...]
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)


def _ids(raw: object) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValidationError("'ids' must be a non-empty list of conversation ids", field="ids")
    if len(raw) > MAX_IDS:
        raise PayloadTooLarge(f"at most {MAX_IDS} conversations at once", field="ids")
    if not all(is_id(i) for i in raw):
        raise ValidationError("'ids' must be conversation ids", field="ids")
    return tuple(dict.fromkeys(raw))  # once each, in the order given


def _tags(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_TAGS:
        raise ValidationError(f"'tags' must list 1 to {MAX_TAGS} tags", field="tags")
    tags = tuple(dict.fromkeys(str(t).strip() for t in raw if isinstance(t, str)))
    if len(tags) != len(raw) or not all(0 < len(t) <= MAX_TAG for t in tags):
        raise ValidationError(f"each tag is text of 1 to {MAX_TAG} characters", field="tags")
    return tags


def _until(raw: object) -> datetime:
    try:
        until = datetime.fromisoformat(str(raw))
    except ValueError:
        raise ValidationError("'until' must be an ISO 8601 time", field="until") from None
    if until.tzinfo is None:
        raise ValidationError("'until' needs a UTC offset", field="until")
    return until.astimezone(UTC)


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not (isinstance(value, str) and len(value) <= 500):
        raise ValidationError(f"'{key}' must be text of at most 500 characters", field=key)
    return value


def parse_bulk(body: Mapping[str, Any], known_inboxes: Collection[str] | None) -> BulkRequest:
    """The request, checked as a whole (ValidationError / PayloadTooLarge)."""
    action = body.get("action")
    if action not in ACTIONS:
        raise ValidationError(f"'action' must be one of {list(ACTIONS)}", field="action")
    ids = _ids(body.get("ids"))
    params: dict[str, Any] = {"reason": _text(body, "reason")}
    if action == "assign":
        agent_id = body.get("agent_id")
        if not is_id(agent_id):
            raise ValidationError("'agent_id' must be an agent's id", field="agent_id")
        params["agent_id"] = agent_id
    elif action == "transfer":
        check_destination(body.get("inbox"), body.get("team"), known_inboxes)
        params.update(inbox=body.get("inbox"), team=body.get("team"))
    elif action == "tag":
        params["tags"] = _tags(body.get("tags"))
    elif action == "status":
        try:
            params["status"] = CaseStatus(str(body.get("status")))
        except ValueError:
            choices = [s.value for s in CaseStatus]
            raise ValidationError(f"'status' must be one of {choices}", field="status") from None
    elif action == "priority":
        params["priority"] = body.get("priority")
    elif action == "snooze":
        params["until"] = _until(body.get("until"))
    return BulkRequest(ids, str(action), params)


def _core_op(req: BulkRequest) -> CaseOp:
    p, reason = req.params, req.params.get("reason")
    if req.action == "assign":
        return partial(assign, agent_id=p["agent_id"], reason=reason or "bulk", accepted=False)
    if req.action == "transfer":
        return partial(transfer, inbox=p["inbox"], team=p["team"], reason=reason)
    if req.action == "status":
        return partial(set_status, to=p["status"], reason=reason)
    if req.action == "priority":
        return partial(set_priority, to=p["priority"], reason=reason)
    if req.action == "snooze":
        return partial(set_status, to=CaseStatus.SNOOZED, until=p["until"], reason=reason)
    return partial(set_status, to=CaseStatus.SOLVED, reason=reason)


def _guarded(req: BulkRequest, rights: Rights) -> CaseOp:
    inner = _core_op(req)
    if req.action == "transfer" and not rights.reaches(req.params["inbox"]):
        raise Forbidden(f"this token does not reach the inbox {req.params['inbox']!r}")

    def op(case: Case, /, *, actor: Actor, at: datetime, policies: CasePolicies) -> Change:
        rights.check(case, assign_to=req.params.get("agent_id"))
        return inner(case, actor=actor, at=at, policies=policies)

    return op


def _tag(conn: Any, cid: int, tags: tuple[str, ...], rights: Rights) -> None:
    rights.check(case_repo.load_case(conn, cid))
    current = conversations.get(conn, cid).tags
    conversations.set_tags(conn, cid, sorted({*current, *tags}))


async def _one(
    store: Store, bus: EventBus, policies: CasePolicies, req: BulkRequest, cid: int,
    actor: Actor, rights: Rights,
) -> None:  # fmt: skip
    if req.action == "tag":
        await store.write(lambda conn: _tag(conn, cid, req.params["tags"], rights))
        await announce(
            bus, [Event(EventName.CONVERSATION_UPDATED, ev.Updated(conversation_id=cid))]
        )
        return
    op = _guarded(req, rights)
    change, at = await store.write(lambda conn: apply_case_op(conn, cid, op, actor, policies))
    await announce(bus, queue_events(change, at))


async def run_bulk(
    store: Store,
    bus: EventBus,
    policies: CasePolicies,
    req: BulkRequest,
    actor: Actor,
    rights: Rights,
) -> list[dict[str, Any]]:
    """Apply `req` item by item; the result of each, in the order of `req.ids`."""
    if rights.read_only:
        raise Forbidden("this token is read-only")
    out: list[dict[str, Any]] = []
    for cid in req.ids:
        try:
            await _one(store, bus, policies, req, cid, actor, rights)
        except OmnideskError as exc:
            out.append({"id": cid, "ok": False, "code": exc.code, "message": exc.message})
        else:
            out.append({"id": cid, "ok": True})
    return out
