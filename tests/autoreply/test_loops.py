"""Mail-loop guards (RFC 3834), rate limits, circuit breaker, and two instances talking."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from autoreply.engine import Engine
from autoreply.limiter import ReplyLimiter
from autoreply.loops import INSTANCE_HEADER, auto_reply_headers, loop_reason
from tests.autoreply.factories import NOON, incoming, make_engine

ANSWER_ALL = '[templates.t]\ntext = "We got your message"\n[[rule]]\nname = "ack"\nthen = { reply = "t", tags = ["acked"] }\n'


@pytest.mark.parametrize(
    ("kwargs", "expect"),
    [
        ({"headers": {"auto-submitted": "auto-replied"}}, "Auto-Submitted"),
        ({"headers": {"auto-submitted": "auto-generated; owner=x"}}, "Auto-Submitted"),
        ({"headers": {"precedence": "bulk"}}, "Precedence"),
        ({"headers": {"precedence": "List"}}, "Precedence"),
        ({"headers": {"precedence": "junk"}}, "Precedence"),
        ({"headers": {"list-id": "<news.example.com>"}}, "mailing-list"),
        ({"headers": {"list-unsubscribe": "<mailto:u@x>"}}, "mailing-list"),
        ({"headers": {"x-auto-response-suppress": "OOF, AutoReply"}}, "X-Auto-Response-Suppress"),
        ({"headers": {"return-path": "<>"}}, "empty return path"),
        ({"metadata": {"return_path": ""}}, "empty return path"),
        ({"sender": "MAILER-DAEMON@mx.example.com"}, "robot"),
        ({"sender": "no-reply@shop.example"}, "robot"),
        ({"sender": "noreply+abc@shop.example"}, "robot"),
        ({"sender": "postmaster@example.org"}, "robot"),
        ({"auto_submitted": True}, "auto_submitted"),
        ({"headers": {INSTANCE_HEADER.lower(): "me"}}, "our own outbound"),
        ({"external_id": "<abc@mail.me.example>"}, "is ours"),
        # the parser's rules, which the engine lacked before the classifier was shared
        ({"headers": {"precedence": "auto-reply"}}, "Precedence"),
        ({"headers": {"x-auto-reply": "yes"}}, "x-auto-reply"),
        ({"metadata": {"return_path": "<>"}}, "empty return path"),
        ({"sender": "shop-noreply@shop.example"}, "robot"),
    ],
)
def test_never_auto_answer(kwargs, expect):
    inc = incoming("where is my order", **kwargs)
    reason = loop_reason(inc.inbound, instance_id="me", own_domains=["mail.me.example"])
    assert reason is not None and expect in reason
    engine = make_engine(ANSWER_ALL, instance_id="me", own_domains=("mail.me.example",))
    d = inc.decide(engine)
    assert d.reply is None and d.suppressed == reason
    assert "acked" in d.tags  # the other actions still apply
    assert any(r.startswith("auto-reply suppressed") for r in d.reasons)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"auto-submitted": "no"}},
        {"headers": {"precedence": "first-class"}},
        {"headers": {INSTANCE_HEADER.lower(): "someone-else"}},
        {"sender": "noreen@example.com"},
        {"metadata": {"return_path": "ada@example.com"}},
    ],
)
def test_ordinary_mail_is_answered(kwargs):
    inc = incoming("hello", **kwargs)
    assert loop_reason(inc.inbound, instance_id="me", own_domains=["mail.me.example"]) is None
    assert inc.decide(make_engine(ANSWER_ALL, instance_id="me")).reply is not None


def test_auto_reply_headers():
    headers = auto_reply_headers("eu-1")
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers[INSTANCE_HEADER] == "eu-1"


def test_per_contact_limit_and_window():
    engine = make_engine(ANSWER_ALL, per_contact_max=2, per_contact_window_seconds=3600)
    inc = incoming("hi")
    results = [inc.decide(engine, NOON + timedelta(minutes=i)).reply is not None for i in range(4)]
    assert results == [True, True, False, False]
    d = inc.decide(engine, NOON + timedelta(minutes=5))
    assert d.suppressed is not None and "rate limit: 2 auto-replies" in d.suppressed
    assert "headers" not in d.extra
    # another contact is not affected; the first one is again after the window
    assert (
        incoming("hi", contact_id=2).decide(engine, NOON + timedelta(minutes=6)).reply is not None
    )
    assert inc.decide(engine, NOON + timedelta(minutes=61)).reply is not None


def test_global_circuit_breaker_trips_and_cools_down():
    limiter = ReplyLimiter(
        per_contact=100, window_seconds=3600, global_per_minute=5, breaker_cooldown_seconds=300
    )
    engine = make_engine(ANSWER_ALL)
    engine = Engine(engine.settings, engine.ruleset, None, limiter)
    sent = [
        incoming("hi", contact_id=n).decide(engine, NOON + timedelta(seconds=n)).reply is not None
        for n in range(8)
    ]
    assert sent == [True] * 5 + [False] * 3
    later = incoming("hi", contact_id=99).decide(engine, NOON + timedelta(seconds=120))
    assert later.reply is None and "circuit breaker open" in (later.suppressed or "")
    assert (
        incoming("hi", contact_id=99).decide(engine, NOON + timedelta(seconds=400)).reply
        is not None
    )


def test_decide_alone_does_not_consume_the_limit():
    from autoreply.engine import decide

    engine = make_engine(ANSWER_ALL, per_contact_max=1)
    inc = incoming("hi")
    for _ in range(3):
        d = decide(
            engine.state,
            inc.message,
            inc.conversation,
            inc.contact,
            NOON,
            settings=engine.settings,
            inbound=inc.inbound,
            limiter=engine.limiter,
        )
        assert d.reply is not None


def _as_inbound_of_other_side(reply, sender: str, headers: dict[str, str], n: int):
    """What the other instance's email adapter would produce from our outbound mail."""
    inc = incoming(
        reply.text,
        subject=reply.subject,
        sender=sender,
        headers={k.lower(): v for k, v in headers.items()},
        external_id=f"<r{n}@x>",
    )
    return inc


def test_two_instances_exchange_exactly_one_auto_reply():
    a = make_engine(ANSWER_ALL, instance_id="instance-a")
    b = make_engine(ANSWER_ALL, instance_id="instance-b")
    # a person at B's support address writes to A (no automatic headers)
    inbound = incoming("Hello A, this is B's mailbox", sender="support@b.example")
    engines = [(a, "support@a.example"), (b, "support@b.example")]
    sent = 0
    turn = 0
    for n in range(10):
        engine, own_address = engines[turn % 2]
        decision = inbound.decide(engine, NOON + timedelta(seconds=n))
        if decision.reply is None:
            break
        sent += 1
        # the sender stamps our headers; the other side receives it as inbound
        inbound = _as_inbound_of_other_side(
            decision.reply, own_address, decision.extra["headers"], n
        )
        turn += 1
    assert sent == 1
    assert "Auto-Submitted" in (decision.suppressed or "")


def test_even_if_a_relay_strips_auto_submitted_the_rate_limit_ends_it():
    a = make_engine(ANSWER_ALL, instance_id="instance-a", per_contact_max=2)
    b = make_engine(ANSWER_ALL, instance_id="instance-b", per_contact_max=2)
    inbound = incoming("ping", sender="support@b.example")
    sent = 0
    for n in range(50):
        engine = (a, b)[n % 2]
        decision = inbound.decide(engine, NOON + timedelta(seconds=n))
        if decision.reply is None:
            break
        sent += 1
        inbound = replace(inbound, inbound=replace(inbound.inbound, metadata={"headers": {}}))
    assert sent == 4  # 2 per side, then each side's per-contact limit
