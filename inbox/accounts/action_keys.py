"""Idempotency keys of agent actions: `inbox.store.action_keys` (the keys and answers live
in the store, in the action's own transaction). Named here too while agent_ui imports them
from here."""

from __future__ import annotations

from inbox.store.action_keys import KEEP, keep, once, recall

__all__ = ["KEEP", "keep", "once", "recall"]
