"""Every `then` action, and how several matching rules combine."""

from __future__ import annotations

from tests.autoreply.factories import FAQ_TEXT, incoming, make_engine

RULES = """
[templates.ack]
subject = "Re: {{ message.subject }}"
text = "Hi {{ contact.name }}, rule {{ rule.name }} answered. {{ handoff_hint }}"

[[rule]]
name = "urgent"
when = { text_any = ["urgent"] }
then = { priority = "urgent", tags = ["urgent"], stop = false }

[[rule]]
name = "low"
when = { text_any = ["whenever"] }
then = { priority = "low", tags = ["later"], stop = false }

[[rule]]
name = "billing"
when = { text_any = ["invoice", "refund"] }
then = { skills = ["billing", "finance"], queue = "billing", assign_to = "billing-team", tags = ["billing"], stop = false }

[[rule]]
name = "answer"
when = { text_any = ["invoice"] }
then = { reply = "ack", tags = ["answered"], stop = true }

[[rule]]
name = "after-stop"
when = { text_any = ["invoice"] }
then = { tags = ["never"] }

[[rule]]
name = "thanks"
when = { body_all = ["thanks", "solved"] }
then = { resolve = true, tags = ["closed-by-customer"] }
"""


def test_reply_renders_template_with_variables():
    d = incoming("Need my invoice", subject="Invoice 42").decide(make_engine(RULES))
    assert d.rule == "answer"
    assert d.reply is not None
    assert d.reply.subject == "Re: Invoice 42"
    assert d.reply.text.startswith("Hi Ada, rule answer answered.")
    assert 'Reply "agent"' in d.reply.text
    assert d.extra["headers"]["Auto-Submitted"] == "auto-replied"
    assert any("auto-reply with template 'ack'" in r for r in d.reasons)


def test_skills_queue_assign_tags_and_stop():
    d = incoming("Need my invoice").decide(make_engine(RULES))
    assert d.skills == ("billing", "finance")
    assert d.extra["queue"] == "billing"
    assert d.assign_to == "billing-team"
    assert d.tags == ("billing", "answered")  # "never" is after a stopping rule
    assert d.extra["matched"] == ("billing", "answer")
    assert "after-stop" not in " ".join(d.reasons)


def test_continue_lets_later_rules_fire_and_priority_takes_the_most_urgent():
    d = incoming("urgent, but whenever you can: my refund").decide(make_engine(RULES))
    assert d.priority == "urgent"
    assert d.tags == ("urgent", "later", "billing")
    assert d.rule == "urgent"  # first matched rule when none replies
    assert d.reply is None
    assert d.needs_human


def test_resolve():
    d = incoming("thanks, it is solved now").decide(make_engine(RULES))
    assert d.resolve and not d.needs_human
    assert d.rule == "thanks"


def test_reasons_say_why_each_rule_fired():
    d = incoming("URGENT refund").decide(make_engine(RULES))
    joined = "\n".join(d.reasons)
    assert "rule 'urgent' (rules.toml:" in joined
    assert "text contains ['urgent']" in joined
    assert "text contains ['refund']" in joined


def test_no_rule_matched_is_explained():
    d = incoming("hello there").decide(make_engine(RULES))
    assert d.rule is None and d.reply is None
    assert d.reasons == ("no rule matched",)


def test_faq_fallback_answers_and_tells_how_to_reach_a_person():
    engine = make_engine(RULES, faq=FAQ_TEXT)
    d = incoming("I forgot my pasword", channel="chat").decide(engine)
    assert d.rule == "faq:password-reset"
    assert d.reply is not None
    assert d.reply.text.startswith("Use Forgot password on the sign-in page.")
    assert 'Reply "agent" at any time to reach a person.' in d.reply.text
    assert d.extra["faq"]["id"] == "password-reset"
    # a rule that answers wins over the FAQ
    assert incoming("invoice: I forgot my password").decide(engine).rule == "answer"


def test_faq_fallback_can_be_disabled():
    engine = make_engine(RULES, faq=FAQ_TEXT, faq_fallback=False)
    assert incoming("I forgot my password").decide(engine).reply is None


def test_faq_rule_with_builtin_template():
    rules = '[[rule]]\nname = "faq-chat"\nwhen = { channel = "chat", faq = true }\nthen = { reply = "faq", tags = ["faq"] }\n'
    engine = make_engine(rules, faq=FAQ_TEXT, faq_fallback=False)
    d = incoming("do you sell gift cards", channel="chat").decide(engine)
    assert d.rule == "faq-chat" and d.reply is not None
    assert "Gift cards are sold" in d.reply.text
    assert incoming("do you sell gift cards", channel="email").decide(engine).reply is None


def test_handoff_keyword_raises_priority_and_sends_nothing():
    engine = make_engine(RULES, faq=FAQ_TEXT)
    d = incoming("Agent please", first=False, priority="normal").decide(engine)
    assert d.handoff and d.reply is None
    assert d.priority == "high"
    assert d.rule == "handoff"
    assert "customer asked for a person" in d.reasons[0]
    assert incoming("HUMAN", priority="high").decide(engine).priority == "urgent"
    assert incoming("talk to a real person").decide(engine).handoff
    # a long message that merely mentions an agent is not a handoff request
    long = "my travel agent booked this and the invoice shows the wrong address for delivery"
    assert not incoming(long).decide(engine).handoff


def test_handoff_priority_floor_from_settings():
    engine = make_engine(RULES, handoff_priority="urgent")
    assert incoming("agent", priority="low").decide(engine).priority == "urgent"


def test_disabled_engine_does_nothing():
    d = incoming("invoice").decide(make_engine(RULES, enabled=False))
    assert d.rule is None and d.reply is None and d.reasons == ("auto-reply is disabled",)
