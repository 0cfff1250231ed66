"""The outbox's rules (inbox.outbox.policy), as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inbox.outbox.policy import MAX_ATTEMPTS, advances, retry_at, thread_ids_of
from inbox.types import DeliveryStatus as S

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_failed_send_is_retried_with_a_growing_wait_until_the_last_attempt():
    waits = [retry_at(NOW, n, False) - NOW for n in range(1, MAX_ATTEMPTS)]
    assert waits[:3] == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    assert all(w <= timedelta(minutes=30) for w in waits)
    assert retry_at(NOW, MAX_ATTEMPTS, False) is None
    assert retry_at(NOW, 1, True) is None  # a permanent error is not retried


def test_a_delivery_status_only_moves_forward_and_failure_is_final():
    assert advances(S.SENT, S.DELIVERED) and advances(S.DELIVERED, S.FAILED)
    assert not advances(S.DELIVERED, S.SENT) and not advances(S.READ, S.READ)
    assert not advances(S.FAILED, S.READ)


def test_references_keep_the_first_and_the_latest_ids_once_each():
    earlier = [("inbound", "email", f"<{i}@c.test>", None) for i in range(5)]
    earlier += [("outbound", "email", None, "<ours@d.test>"), ("inbound", "sms", "SM1", None)]
    earlier += [("inbound", "email", "<1@c.test>", None)]  # seen already
    ids, in_reply_to = thread_ids_of(earlier, keep=2)
    assert ids == ("<0@c.test>", "<4@c.test>", "<ours@d.test>")
    assert in_reply_to == "<4@c.test>"
    assert thread_ids_of([], keep=2) == ((), None)
