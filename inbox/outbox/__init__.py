"""The outbox room: every reply leaves through here, durably.

Public: `durable` (the outbox: an outbound message and its delivery job written in one
transaction, the worker lease, retries) and `rq_relay` (the same delivery on RQ when
scaled out, with its sweeper).
"""
