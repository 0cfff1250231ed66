"""The case lifecycle's domain core (pure: no SQL, no I/O): statuses and their moves,
priorities, SLA clocks over business hours, ownership, and the activity entries every
change produces.

Public surface:

* types: `Case`, `Change`, `CaseStatus`, `CaseSla`, `SlaClock`, `SlaTargets`,
  `SlaMetric`, `SlaState`, `SlaEvent`, `ActivityEntry`, `Actor`, `ActorKind`,
  `ChangeKind`, `BusinessHours`, `WALL_CLOCK`, `Priorities`, `AssignmentMode`,
  `InboxPolicy`, `CasePolicies`;
* operations, each `Case -> Change` (or a refusal: `Conflict`, `ValidationError`):
  `open_case`, `set_status`, `set_priority`, `escalate`, `deescalate`, `assign`,
  `accept`, `claim`, `unassign`, `transfer`, `customer_wrote`, `agent_replied`, `tick`,
  and `next_wake` (when `tick` is next due);
* rules as data: `TRANSITIONS`, `on_customer_reply`, `auto_close_at`;
* config: `read_case_policies` (the `[cases]` section).
"""

from inbox.cases.activity import ActivityEntry, Actor, ActorKind, ChangeKind
from inbox.cases.case import Case, Change, open_case
from inbox.cases.due import next_wake, tick
from inbox.cases.hours import WALL_CLOCK, BusinessHours
from inbox.cases.lifecycle import deescalate, escalate, set_priority, set_status
from inbox.cases.messages import agent_replied, customer_wrote
from inbox.cases.ownership import accept, assign, claim, transfer, unassign
from inbox.cases.policy import AssignmentMode, CasePolicies, InboxPolicy
from inbox.cases.priority import Priorities
from inbox.cases.settings import read_case_policies
from inbox.cases.sla import CaseSla, SlaClock, SlaEvent, SlaMetric, SlaState, SlaTargets
from inbox.cases.status import TRANSITIONS, CaseStatus, auto_close_at, on_customer_reply

__all__ = [
    "TRANSITIONS",
    "WALL_CLOCK",
    "ActivityEntry",
    "Actor",
    "ActorKind",
    "AssignmentMode",
    "BusinessHours",
    "Case",
    "CasePolicies",
    "CaseSla",
    "CaseStatus",
    "Change",
    "ChangeKind",
    "InboxPolicy",
    "Priorities",
    "SlaClock",
    "SlaEvent",
    "SlaMetric",
    "SlaState",
    "SlaTargets",
    "accept",
    "agent_replied",
    "assign",
    "auto_close_at",
    "claim",
    "customer_wrote",
    "deescalate",
    "escalate",
    "next_wake",
    "on_customer_reply",
    "open_case",
    "read_case_policies",
    "set_priority",
    "set_status",
    "tick",
    "transfer",
    "unassign",
]
