"""The supervisors' view of escalations (issue 17): `/escalations` lists the conversations
escalated by an SLA breach or by an agent ("needs help"), not yet solved, the one due
first at the top, each with the reason it was escalated (its last escalation entry in the
activity log). Supervisors and admins only: an agent gets 403, someone signed out the
sign-in page. The page re-reads itself when a socket notice says a conversation was
escalated (`agent_ui.live` tells the `supervisors` room).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from agent_ui import access
from agent_ui.cases_api import POLICIES_KEY
from agent_ui.views import page_context, page_session
from agent_ui.workspace import WS_KEY
from inbox.cases import Case, CasePolicies, ChangeKind
from inbox.cases.due import summary
from inbox.store import agents
from inbox.store import cases as repo

__all__ = ["escalations_page"]

FORBIDDEN = "Only supervisors and admins see escalations"


@dataclass(frozen=True, slots=True)
class Row:
    case: Case
    reason: str | None
    by: str
    sla_due_at: datetime | None
    sla_state: str | None


def _rows(conn: Any, policies: CasePolicies, now: datetime) -> list[Row]:
    rows = []
    for case in repo.escalated(conn):
        entry = next(
            (
                e
                for e in reversed(repo.timeline(conn, case.id))
                if e.kind is ChangeKind.ESCALATION and e.after is True
            ),
            None,
        )
        due = summary(case, now, policies)
        rows.append(
            Row(
                case,
                None if entry is None else entry.reason,
                "" if entry is None else entry.actor.kind.value,
                due.due_at,
                None if due.sla_state is None else due.sla_state.value,
            )
        )
    return rows


async def escalations_page(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await page_session(request)
    presence = await ws.store.read(lambda conn: agents.presence_of(conn, session.agent.id))
    context: dict[str, Any] = page_context(ws, session, presence)
    if not access.can_supervise(session.agent):
        return ws.render("forbidden.html", status=403, **context, reason=FORBIDDEN)
    policies = request.app[POLICIES_KEY]
    now = datetime.now(UTC)
    rows = await ws.store.read(lambda conn: _rows(conn, policies, now))
    return ws.render("escalations.html", **context, rows=rows)
