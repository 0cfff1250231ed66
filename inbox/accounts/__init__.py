"""The accounts room: who may act, and proof of it.

Public: `agents` (agents in the store: add, list, disable), `tokens` (API tokens and their
scopes), `token_cache` (checking tokens without a query per call), `signin_throttle`
(sign-in attempts counted in the store), `action_keys` (idempotency keys of agent actions).
"""
