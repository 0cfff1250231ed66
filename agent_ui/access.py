"""Who may see and do what in the agent workspace (pure).

* An **agent** sees the conversations of the inboxes/teams they belong to (`Agent.teams`
  against `Conversation.inbox`) and those assigned to them, and a contact only through
  those conversations.
* A **supervisor** sees every inbox, every agent's presence and load, and may merge
  contacts and transfer any conversation.
* An **admin** may do what a supervisor does, and end another agent's sessions.

Every HTTP route, socket event, room join and attachment URL asks these functions; a
conversation an agent may not see answers 404 (its existence is not disclosed).
"""

from __future__ import annotations

from inbox.types import Agent, Role

SUPERVISING = frozenset({Role.SUPERVISOR, Role.ADMIN})


def sees_all(agent: Agent) -> bool:
    return agent.role in SUPERVISING


def can_see_inbox(agent: Agent, inbox: str) -> bool:
    return sees_all(agent) or inbox in agent.teams


def can_see_conversation(agent: Agent, inbox: str, assignee_id: int | None) -> bool:
    """Its inbox is one of the agent's teams, or it was given to the agent (a supervisor's
    or the router's choice: whoever holds a conversation may work on it)."""
    return can_see_inbox(agent, inbox) or (assignee_id is not None and assignee_id == agent.id)


def visible_inboxes(agent: Agent) -> tuple[str, ...] | None:
    """The inboxes an agent may see; None for all of them."""
    return None if sees_all(agent) else tuple(agent.teams)


def can_supervise(agent: Agent) -> bool:
    return agent.role in SUPERVISING


def is_admin(agent: Agent) -> bool:
    return agent.role is Role.ADMIN


def can_take(target: Agent, inbox: str) -> bool:
    """May `target` be given a conversation of this inbox (transfer destination)?"""
    return target.active and can_see_inbox(target, inbox)
