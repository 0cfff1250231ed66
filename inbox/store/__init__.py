"""The store room: everything that speaks SQL, and nothing else does.

Public: `backends` (`Store`, `open_store`: run a function of a SQLAlchemy Connection in a
committed transaction on SQLite or PostgreSQL), `migrate` (Alembic upgrades), `files`
(the attachment file store), and the repositories, one module of such functions per
aggregate (callers do `await store.read(lambda conn: conversations.get(conn, cid))` or
`await store.call(fn, *args)`):

* `conversations`, `messages`, `contacts`, `agents`, `sessions`, `cases` (the case
  lifecycle: load, save a change under its version, the activity log);
* `assignments` (who holds which conversation: the workspace's and the router's reads and
  writes), `fence` (the router leader's fencing token);
* `outbox` (outbound messages and their delivery jobs), `cursors` (where a source stands);
* `tokens` (API tokens), `signins` (sign-in attempts), `action_keys` (idempotency keys of
  agent actions), `health` (the readiness heartbeat), `metrics` (gauges read at scrape time);
* `pages`: reads that compose those for one page of the workspace or one API answer;
* `triage`: what the triage pipeline reads and the transaction that stores its decisions;
* `ingest_writes`: the ingest transaction, with its reads in `ingest_reads` (one message
  at a time) and `batch_reads` (set-based, for a batch).

Private to the store: `schema` (the one SQL schema), `fastsql` (plain SQL for hot paths),
`write_process` and `child_process` (SQLite writes in a child process).
"""
