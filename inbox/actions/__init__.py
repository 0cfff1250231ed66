"""The one set of case actions (issue 17): what an agent, a supervisor, a rule, an API
token or a timer does to a conversation, each one function that the browser, `/api/v1`,
rules and the sweeper call alike.

Above the store and the pure case core (`inbox.cases`), below every caller; no SQL here
(the store's repository `inbox.store.cases` speaks it). `run_case_op` is the frame every
action runs in: read, the core's operation, the version-guarded write with its activity
entries, one retry on a lost race, the events after the commit (`announce`).
"""

from inbox.actions.announce import announce, events_for
from inbox.actions.run import CaseOp, Clock, apply_case_op, run_case_op

__all__ = ["CaseOp", "Clock", "announce", "apply_case_op", "events_for", "run_case_op"]
