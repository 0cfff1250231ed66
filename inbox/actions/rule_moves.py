"""The rule actions that move a conversation: `queue` (an inbox or a team) and
`assign_to` (an agent's email or a team), applied through the case core with the rule as
the actor, so the activity log names the rule.

    queue = "billing"            billing is an inbox: transfer(inbox=billing)
    queue = "vip"                not an inbox: a team, transfer(team=vip)
    assign_to = "ann@example.com"  an offer to the active agent with that email
    assign_to = "vip"            transfer(team=vip)

The pipeline calls `apply_moves` in the transaction that stored the triage decision, so
the conversation is announced as queued (or offered) where the rule sent it, never first
where it arrived. A move the core refuses (the conversation is already there, it was
solved meanwhile, the agent is unknown or disabled) is logged and leaves the
conversation where triage put it: a rule must never lose a message.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from inbox.actions.run import CaseOp, apply_case_op
from inbox.cases import Actor, CasePolicies, Change
from inbox.cases.ownership import assign, transfer
from inbox.errors import Conflict, ValidationError
from inbox.ports import TriageDecision
from inbox.store import agents

__all__ = ["Move", "Moved", "apply_moves", "moves_of"]

log = logging.getLogger("omnidesk.pipeline")


class Move(NamedTuple):
    action: str  # "queue" or "assign_to"
    target: str
    rule: str


class Moved(NamedTuple):
    changes: list[tuple[Change, datetime]]
    offered: bool  # an agent was given the conversation: it no longer waits in a queue


def moves_of(decision: TriageDecision) -> list[Move]:
    """The moves a decision asks for, each with the rule that asked (queue first)."""
    by: Mapping[str, str] = decision.extra.get("moved_by") or {}
    out = []
    queue = decision.extra.get("queue")
    if queue:
        out.append(Move("queue", str(queue), by.get("queue") or decision.rule or "rule"))
    if decision.assign_to:
        rule = by.get("assign_to") or decision.rule or "rule"
        out.append(Move("assign_to", decision.assign_to, rule))
    return out


def _op(conn: Any, move: Move, inboxes: Collection[str]) -> CaseOp | None:
    reason = f"rule {move.rule}: {move.action} {move.target}"
    if move.action == "assign_to" and "@" in move.target:
        agent_id = agents.active_id_by_email(conn, move.target)
        if agent_id is None:
            log.warning("%s: no active agent has this email; left in its queue", reason)
            return None
        return partial(assign, agent_id=agent_id, reason=reason)
    if move.action == "queue" and move.target in inboxes:
        return partial(transfer, inbox=move.target, reason=reason)
    return partial(transfer, team=move.target, reason=reason)


def apply_moves(
    conn: Any,
    conversation_id: int,
    moves: list[Move],
    *,
    policies: CasePolicies,
    inboxes: Collection[str],
) -> Moved:
    """Apply `moves` to the conversation inside the caller's write transaction; the
    changes are for the caller to announce after its commit."""
    changes: list[tuple[Change, datetime]] = []
    offered = False
    for move in moves:
        op = _op(conn, move, inboxes)
        if op is None:
            continue
        try:
            change, at = apply_case_op(conn, conversation_id, op, Actor.rule(move.rule), policies)
        except (Conflict, ValidationError) as exc:
            log.info(
                "rule %s: %s %s not applied to conversation=%d: %s",
                move.rule,
                move.action,
                move.target,
                conversation_id,
                exc.message,
            )
            continue
        changes.append((change, at))
        offered = offered or change.case.assignee_id is not None
    return Moved(changes, offered)
