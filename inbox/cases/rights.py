"""Who may act on which case (pure): the per-item check of bulk actions.

    who            sees                                              may
    agent          cases of its teams (inbox or team), and the      tag, status, priority,
                   cases it holds                                    snooze, solve, transfer,
                                                                     assign to itself
    supervisor,    every case                                        everything, assign to
    admin                                                            anyone
    API token      cases of its inboxes (all: every case)            everything; a read-only
                                                                     token nothing

A case the actor may not see is refused as not found (its existence is not disclosed),
as the workspace's pages refuse it (`agent_ui.access`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from inbox.cases.case import Case
from inbox.errors import Forbidden, NotFound

__all__ = ["Rights"]


@dataclass(frozen=True, slots=True)
class Rights:
    """What one actor may do: `teams` None means every inbox and team."""

    teams: frozenset[str] | None
    supervising: bool = False
    agent_id: int | None = None
    read_only: bool = False

    @classmethod
    def of_agent(cls, agent_id: int, teams: Collection[str], supervising: bool) -> Rights:
        return cls(None if supervising else frozenset(teams), supervising, agent_id)

    @classmethod
    def of_token(cls, inboxes: Collection[str] | None, read_only: bool) -> Rights:
        teams = None if inboxes is None else frozenset(inboxes)
        return cls(teams, supervising=True, read_only=read_only)

    def sees(self, case: Case) -> bool:
        if self.teams is None:
            return True
        if case.inbox in self.teams or (case.team is not None and case.team in self.teams):
            return True
        return self.agent_id is not None and case.assignee_id == self.agent_id

    def check(self, case: Case, *, assign_to: int | None = None) -> None:
        """Raise unless this actor may change `case` (given to `assign_to`, if named)."""
        if self.read_only:
            raise Forbidden("this token is read-only")
        if not self.sees(case):
            raise NotFound(f"no conversation {case.id}")
        if assign_to is not None and not self.supervising and assign_to != self.agent_id:
            raise Forbidden(
                "agents assign conversations to themselves; a supervisor assigns others"
            )

    def reaches(self, inbox: str | None) -> bool:
        """May a case be moved to `inbox` by this actor? (A token only within its inboxes;
        agents pass work to any inbox: that is what a transfer is for.)"""
        if inbox is None or self.agent_id is not None or self.teams is None:
            return True
        return inbox in self.teams
