"""The store room: everything that speaks SQL, and nothing else does.

Public: `backends` (`Store`, `open_store`: run a function of a SQLAlchemy Connection in a
committed transaction on SQLite or PostgreSQL), `schema` (the one SQL schema),
`migrate` (Alembic upgrades), `repo` (rows to core types), `fastsql` (plain SQL for hot
paths), `ingest_reads` (the reads and writes of ingest), `files` (the attachment file
store). Repositories, one module per aggregate (plain functions of a Connection, run
by `Store.read/write/call`): `agents`, `tokens` (API tokens), `signins` (sign-in attempts),
`action_keys` (idempotency keys of agent actions), `health` (the readiness heartbeat),
`metrics` (gauges read at scrape time), `outbox` (outbound messages and their delivery
jobs), `assignments` (who holds which conversation; the router's reads and writes),
`fence` (the router leader's fencing token), `cursors` (where a source stands). Private:
`write_process` and `child_process` (SQLite writes in a child process).
"""
