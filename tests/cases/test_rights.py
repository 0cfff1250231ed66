"""Who may act on which case (bulk actions' per-item check)."""

from __future__ import annotations

import pytest

from inbox.cases import Case, CaseStatus
from inbox.cases.rights import Rights
from inbox.errors import Forbidden, NotFound

A = Case(id=1, inbox="inbox-a", status=CaseStatus.OPEN, priority="normal")
B_TEAM_A = Case(id=2, inbox="inbox-b", status=CaseStatus.OPEN, priority="normal", team="inbox-a")
B_HELD_BY_7 = Case(id=3, inbox="inbox-b", status=CaseStatus.OPEN, priority="normal", assignee_id=7)
B = Case(id=4, inbox="inbox-b", status=CaseStatus.OPEN, priority="normal")

AGENT = Rights.of_agent(7, ["inbox-a"], supervising=False)
SUPERVISOR = Rights.of_agent(8, ["inbox-a"], supervising=True)
TOKEN_A = Rights.of_token(["inbox-a"], read_only=False)
READER = Rights.of_token(None, read_only=True)


@pytest.mark.parametrize(
    ("rights", "case", "error"),
    [
        (AGENT, A, None),
        (AGENT, B_TEAM_A, None),  # its team, in another inbox
        (AGENT, B_HELD_BY_7, None),  # it holds it
        (AGENT, B, NotFound),
        (SUPERVISOR, B, None),
        (TOKEN_A, A, None),
        (TOKEN_A, B, NotFound),
        (READER, A, Forbidden),
    ],
)
def test_who_may_change_which_case(rights, case, error):
    if error is None:
        rights.check(case)
    else:
        with pytest.raises(error):
            rights.check(case)


def test_agents_assign_to_themselves_only():
    AGENT.check(A, assign_to=7)
    with pytest.raises(Forbidden):
        AGENT.check(A, assign_to=9)
    SUPERVISOR.check(A, assign_to=9)


def test_a_token_moves_work_only_into_its_inboxes():
    assert TOKEN_A.reaches("inbox-a") and not TOKEN_A.reaches("inbox-b")
    assert AGENT.reaches("inbox-b") and SUPERVISOR.reaches("inbox-b")
