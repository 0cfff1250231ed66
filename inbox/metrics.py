"""Every Prometheus metric omnidesk exports, defined once, in one registry.

Layers import what they count from here (inbox imports nothing else of ours, so every
layer may). Each process serves its own `/metrics` (see `omnidesk.metrics`): counters and
histograms are this process's, and gauges describing shared state (the waiting queue, the
outbox, sockets, IMAP) are set at scrape time by the callbacks the composition root
registers with `on_scrape`.

Hot paths pay little: a labelled child is looked up once and kept (`labels()` costs
several times an `inc()` on a kept child), ingest counts once per batch, and nothing here
takes a lock of ours or does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from inbox.types import IngestResult

REGISTRY = CollectorRegistry()

# latency buckets, seconds: sub-millisecond commits up to minutes-long waits
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

# -- inbound ----------------------------------------------------------------------------
MESSAGES_INGESTED = Counter(
    "omnidesk_messages_ingested",
    "Inbound messages stored (redeliveries of a stored message not counted), by channel.",
    ["channel"],
    registry=REGISTRY,
)
INGEST_LATENCY = Histogram(
    "omnidesk_ingest_latency_seconds",
    "Seconds from a channel handing a message to ingest until it is committed.",
    buckets=_FAST,
    registry=REGISTRY,
)

# -- triage and routing -----------------------------------------------------------------
AUTO_ANSWERS = Counter(
    "omnidesk_auto_answers",
    "Auto-replies the rule engine queued, by the rule (or faq:<id>) that answered.",
    ["rule"],
    registry=REGISTRY,
)
ROUTER_DECISIONS = Counter(
    "omnidesk_router_decisions",
    "Router decisions committed, by kind (assigned, unassigned, requeued, sla_breached, relaxed).",
    ["kind"],
    registry=REGISTRY,
)
ASSIGNMENT_LATENCY = Histogram(
    "omnidesk_assignment_latency_seconds",
    "Seconds a conversation waited in the queue before the router assigned it.",
    buckets=_SLOW,
    registry=REGISTRY,
)
CONVERSATIONS_WAITING = Gauge(
    "omnidesk_conversations_waiting",
    "Conversations waiting for an agent, by inbox (read from the store at scrape time).",
    ["inbox"],
    registry=REGISTRY,
)
OLDEST_WAIT = Gauge(
    "omnidesk_conversations_oldest_wait_seconds",
    "Seconds the longest-waiting conversation has waited, by inbox (0 when none waits).",
    ["inbox"],
    registry=REGISTRY,
)

# -- outbound ---------------------------------------------------------------------------
OUTBOX_JOBS = Gauge(
    "omnidesk_outbox_jobs",
    "Outbox jobs not done, by status (pending, sending, failed; read at scrape time).",
    ["status"],
    registry=REGISTRY,
)
OUTBOX_OLDEST_DUE = Gauge(
    "omnidesk_outbox_oldest_due_seconds",
    "Seconds the oldest pending outbox job has been due (read at scrape time).",
    registry=REGISTRY,
)
OUTBOX_DELIVERIES = Counter(
    "omnidesk_outbox_deliveries",
    "Outbound sends finished, by channel and outcome (sent, failed, retry).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "omnidesk_delivery_latency_seconds",
    "Seconds from a reply entering the outbox until its provider accepted it, by channel.",
    ["channel"],
    buckets=_FAST[4:] + _SLOW[5:],
    registry=REGISTRY,
)

# -- live connections, agents' sign-in, plumbing ----------------------------------------
SOCKETS = Gauge(
    "omnidesk_sockets",
    "Socket.io connections open in this process, by kind (agent, visitor).",
    ["kind"],
    registry=REGISTRY,
)
SIGNIN_FAILURES = Counter(
    "omnidesk_signin_failures",
    "Agent sign-ins refused for a wrong email or password.",
    registry=REGISTRY,
)
SIGNIN_THROTTLED = Counter(
    "omnidesk_signin_throttled",
    "Agent sign-ins refused because the account or address failed too often.",
    registry=REGISTRY,
)
BUS_RECONNECTS = Counter(
    "omnidesk_bus_reconnects",
    "Times the event bus lost its Redis connection and subscribed again.",
    registry=REGISTRY,
)
IMAP_HEALTHY = Gauge(
    "omnidesk_imap_mailbox_healthy",
    "1 while an IMAP mailbox polled by this process is healthy, else 0.",
    ["mailbox"],
    registry=REGISTRY,
)
IMAP_CONNECTED = Gauge(
    "omnidesk_imap_mailbox_connected",
    "1 while this process holds an IMAP session to the mailbox, else 0.",
    ["mailbox"],
    registry=REGISTRY,
)

# -- hot-path helpers -------------------------------------------------------------------
_ingested: dict[str, Any] = {}
_decisions: dict[str, Any] = {}
_answers: dict[str, Any] = {}
clock = time.perf_counter  # for latencies measured in this process
_DECISION_KIND = {
    "Assigned": "assigned",
    "Unassigned": "unassigned",
    "Requeued": "requeued",
    "SlaBreached": "sla_breached",
    "Relaxed": "relaxed",
}


def _child(cache: dict[str, Any], metric: Any, label: str) -> Any:
    child = cache.get(label)
    if child is None:
        child = cache[label] = metric.labels(label)
    return child


def count_ingested(batch: Sequence[tuple[Any, Any]], results: Sequence[object]) -> None:
    """Once per ingest batch: the newly stored messages, by channel. `batch` holds the
    pending (prepared message, future) pairs, `results` their outcomes in order."""
    counts: dict[str, int] = {}
    for (item, _future), result in zip(batch, results, strict=False):
        if type(result) is IngestResult and not result.duplicate:
            counts[item.channel] = counts.get(item.channel, 0) + 1
    for channel, n in counts.items():
        _child(_ingested, MESSAGES_INGESTED, channel).inc(n)


def count_decisions(decisions: Iterable[Any], since: Mapping[int, float]) -> None:
    """Router decisions committed in one write. A routed assignment also observes how long
    its conversation waited: `since` maps a conversation to when it started waiting (epoch
    seconds, as the router keeps it); decisions carry `at` in the same clock."""
    counts: dict[str, int] = {}
    for d in decisions:
        kind = _DECISION_KIND.get(type(d).__name__, "other")
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "assigned" and d.reason == "routed":
            started = since.get(d.conversation_id)
            if started is not None:
                ASSIGNMENT_LATENCY.observe(max(d.at - started, 0.0))
    for kind, n in counts.items():
        _child(_decisions, ROUTER_DECISIONS, kind).inc(n)


def count_auto_answer(rule: str | None) -> None:
    _child(_answers, AUTO_ANSWERS, rule or "unnamed").inc()


def count_delivery(channel: str, outcome: str, queued_at: datetime | None = None) -> None:
    """One finished send: outcome "sent", "failed" or "retry"; the latency when sent."""
    OUTBOX_DELIVERIES.labels(channel, outcome).inc()
    if outcome == "sent" and queued_at is not None:
        at = queued_at if queued_at.tzinfo is not None else queued_at.replace(tzinfo=UTC)
        seconds = (datetime.now(UTC) - at).total_seconds()
        DELIVERY_LATENCY.labels(channel).observe(max(seconds, 0.0))


# -- scrape time ------------------------------------------------------------------------
Refresh = Callable[[], Awaitable[None]]


def set_waiting(
    inboxes: Iterable[str], waiting: dict[str, tuple[int, datetime | None]], now: datetime
) -> None:
    """Publish `inbox.store.metrics.waiting_by_inbox`'s answer; every configured inbox
    appears, 0 when empty."""
    CONVERSATIONS_WAITING.clear()
    OLDEST_WAIT.clear()
    for inbox in {*inboxes, *waiting}:
        n, oldest = waiting.get(inbox, (0, None))
        CONVERSATIONS_WAITING.labels(inbox).set(n)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        OLDEST_WAIT.labels(inbox).set(
            max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        )


def set_outbox(counts: dict[str, Any]) -> None:
    for status in ("pending", "sending", "failed"):
        OUTBOX_JOBS.labels(status).set(counts.get(status, 0))
    OUTBOX_OLDEST_DUE.set(counts.get("oldest_due_seconds", 0.0))


def set_mailboxes(mailboxes: Iterable[dict[str, Any]]) -> None:
    IMAP_HEALTHY.clear()
    IMAP_CONNECTED.clear()
    for box in mailboxes:
        IMAP_HEALTHY.labels(box["name"]).set(1 if box["healthy"] else 0)
        IMAP_CONNECTED.labels(box["name"]).set(1 if box["connected"] else 0)


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def exported_names() -> set[str]:
    """Every sample name this registry may export (counters end in `_total`, histograms
    have `_bucket`/`_sum`/`_count`), labelled children set or not: what a dashboard may
    query."""
    return {
        metric.name + suffix
        for metric in REGISTRY.collect()
        for suffix in _SUFFIXES.get(metric.type, ("",))
    }
