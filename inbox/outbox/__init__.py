"""The outbox room: every reply leaves through here, durably.

Public: `durable` (the outbox worker: leases due delivery jobs, sends them, records the
outcome), `rq_relay` (the same delivery on RQ when scaled out, with its sweeper) and
`policy` (the rules: retries, leases, reply routes, references, delivery status order).
The messages and jobs are stored by the outbox repository, `inbox.store.outbox`.
"""
