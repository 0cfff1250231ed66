"""The accounts room: who may act, and proof of it.

Public: `agents` (agents' settings as an admin types them), `tokens` (what an API token is:
its shape, hash and scope), `token_cache` (checking tokens without a query per call),
`signin_throttle` (the rule sign-in attempts are counted by). What they store is stored
by the repositories of `inbox.store` (`agents`, `tokens`, `signins`, and `action_keys` for
the idempotency keys of agent actions).
"""
