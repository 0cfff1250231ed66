"""The core: the domain at the top, the plumbing in rooms below it.

Domain (pure or nearly): `types`, `errors`, `events` (the one event vocabulary),
`identity`, `threads`, `mail_loops`, `ingest` (the one entry channels call), `pipeline`
(triage after ingest), `ports` (interfaces the packages above implement), `config`.
Rooms: `inbox.store` (all SQL), `inbox.bus` (events and presence across processes),
`inbox.outbox` (durable delivery), `inbox.web` (the HTTP edge), `inbox.accounts` (agents,
tokens, sign-in).
"""
