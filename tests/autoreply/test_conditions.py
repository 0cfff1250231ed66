"""Every `when` condition, matching and not matching, through the real engine."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from autoreply.hours import BusinessHours
from tests.autoreply.factories import FAQ_TEXT, NOON, incoming, make_engine

TAG_RULE = """
[[rule]]
name = "r"
when = {{ {when} }}
then = {{ tags = ["hit"] }}
"""


def fires(when: str, inc, **kw) -> bool:  # type: ignore[no-untyped-def]
    engine = make_engine(TAG_RULE.format(when=when), **kw)
    decision = inc.decide(engine)
    return decision.rule == "r" and "hit" in decision.tags


def test_channel_single_and_list():
    assert fires('channel = "chat"', incoming(channel="chat"))
    assert not fires('channel = "chat"', incoming(channel="email"))
    assert fires('channel = ["sms", "email"]', incoming(channel="email"))


def test_inbox_and_recipient():
    assert fires('inbox = "Support"', incoming(inbox="support"))
    assert not fires('inbox = "sales"', incoming(inbox="support"))
    inc = incoming(inbox="support", metadata={"to": ["Billing@Shop.example"]})
    assert fires('recipient = "billing@shop.example"', inc)
    assert not fires('recipient = "sales@shop.example"', inc)


def test_subject_any_all_none_are_whole_word_case_and_accent_insensitive():
    inc = incoming("body", subject="REMBOURSEMENT de ma Commande")
    assert fires('subject_any = ["remboursement"]', inc)
    assert fires('subject_any = ["rémboursement"]', inc)
    assert fires('subject_all = ["commande", "ma"]', inc)
    assert not fires('subject_all = ["commande", "colis"]', inc)
    assert fires('subject_none = ["colis"]', inc)
    assert not fires('subject_none = ["commande"]', inc)
    # whole words only: "order" is not found in "reorder"
    assert not fires('subject_any = ["order"]', incoming(subject="Please reorder"))


def test_body_and_text_phrases():
    inc = incoming("Hi, where is my ORDER? thanks", subject="Question")
    assert fires('body_any = ["where is my order"]', inc)
    assert not fires('body_any = ["where is my parcel"]', inc)
    assert not fires('subject_any = ["where is my order"]', inc)
    assert fires('text_all = ["question", "order"]', inc)  # one in subject, one in body
    assert fires('text_none = ["refund"]', inc)
    assert not fires('text_none = ["thanks"]', inc)


def test_regex_and_linear_time():
    inc = incoming("Order #A-12345 is late", subject="late")
    assert fires(r'body_regex = "#[A-Z]-\\d{5}"', inc)
    assert not fires(r'subject_regex = "\\d{5}"', inc)
    assert fires(r'text_regex = "(?i)^late"', inc)
    # catastrophic for backtracking engines; RE2 is linear
    hostile = incoming("a" * 100_000 + "!")
    start = time.perf_counter()
    assert not fires('body_regex = "(a+)+$"', hostile)
    assert time.perf_counter() - start < 1.0


def test_faq_condition_with_threshold():
    inc = incoming("how long does shiping take", channel="chat")
    assert fires("faq = true", inc, faq=FAQ_TEXT)
    assert not fires("faq = true", incoming("I want to talk about the weather"), faq=FAQ_TEXT)
    assert not fires("faq = true, faq_min_score = 100", inc, faq=FAQ_TEXT)


PARIS = BusinessHours(
    ZoneInfo("Europe/Paris"),
    tuple(((9 * 60, 18 * 60),) if day < 5 else () for day in range(7)),
    frozenset({datetime(2026, 12, 25).date()}),
)


def test_business_hours_inside_outside_holiday():
    rule_in = 'business_hours = "inside"'
    rule_out = 'business_hours = "outside"'
    inc = incoming()
    wednesday_11_paris = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    wednesday_20_paris = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
    christmas_11_paris = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    for now, inside in (
        (wednesday_11_paris, True),
        (wednesday_20_paris, False),
        (christmas_11_paris, False),
        (saturday, False),
    ):
        e_in = make_engine(TAG_RULE.format(when=rule_in), hours=PARIS)
        e_out = make_engine(TAG_RULE.format(when=rule_out), hours=PARIS)
        assert (inc.decide(e_in, now).rule == "r") is inside, now
        assert (inc.decide(e_out, now).rule == "r") is not inside, now
    nxt = PARIS.next_open(wednesday_20_paris)
    assert nxt is not None and (nxt.day, nxt.hour) == (26, 9)
    assert (
        PARIS.next_open(datetime(2026, 12, 24, 19, 0, tzinfo=UTC)).day == 28
    )  # skips 25th + weekend


def test_first_message_only():
    assert fires("first_message = true", incoming(first=True))
    assert not fires("first_message = true", incoming(first=False))
    assert fires("first_message = false", incoming(first=False))
    # the caller may say so explicitly
    engine = make_engine(TAG_RULE.format(when="first_message = true"))
    assert incoming(first=False).decide(engine, first_message=True).rule == "r"


def test_contact_tags_and_attributes():
    inc = incoming(tags=("VIP", "b2b"), attributes={"plan": "Gold", "seats": 12})
    assert fires('contact_tags_any = ["vip", "press"]', inc)
    assert not fires('contact_tags_all = ["vip", "press"]', inc)
    assert fires('contact_tags_all = ["vip", "b2b"]', inc)
    assert fires('contact_attributes = { plan = ["gold", "platinum"] }', inc)
    assert fires("contact_attributes = { seats = 12 }", inc)
    assert not fires('contact_attributes = { plan = "free" }', inc)
    assert not fires('contact_attributes = { region = "eu" }', inc)


def test_language_heuristic():
    french = incoming("Bonjour, ma commande n'est pas arrivée, merci de vérifier")
    assert fires('language = "fr"', french)
    assert not fires('language = "de"', french)
    assert fires('language = ["de", "nl"]', incoming("Hallo, meine Bestellung ist nicht da, danke"))
    assert not fires('language = "en"', incoming("ok"))  # too short to tell


def test_all_conditions_must_hold():
    when = 'channel = "email", subject_any = ["invoice"], first_message = true'
    assert fires(when, incoming(subject="Invoice please"))
    assert not fires(when, incoming(subject="Invoice please", channel="chat"))
    assert not fires(when, incoming(subject="Invoice please", first=False))


def test_rule_without_conditions_always_fires():
    engine = make_engine('[[rule]]\nname = "r"\nthen = { tags = ["all"] }\n')
    assert incoming("anything").decide(engine).tags == ("all",)


def test_disabled_rule_is_skipped():
    engine = make_engine('[[rule]]\nname = "r"\nenabled = false\nthen = { tags = ["x"] }\n')
    assert incoming("anything").decide(engine).rule is None
    assert NOON.tzinfo is UTC
