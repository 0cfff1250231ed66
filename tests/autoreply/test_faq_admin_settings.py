"""FAQ matching and suggestions, admin commands, the [autoreply] settings reader."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from rapidfuzz import fuzz, process

from autoreply.admin import check_files, explain
from autoreply.engine import Engine
from autoreply.faq import FaqEntry, FaqIndex, load_faq_files, load_faq_text
from autoreply.settings import read_settings
from autoreply.text import normalize
from inbox.config_section import ConfigSection
from inbox.errors import ConfigError
from inbox.tomlpos import TomlSource
from tests.autoreply.factories import FAQ_TEXT, NOON, write

ROOT = Path(__file__).resolve().parents[2]


def test_faq_match_typos_reordering_and_no_match():
    index = FaqIndex(load_faq_text("faq.toml", FAQ_TEXT))
    assert index.match("How long does shiping take??").entry.id == "shipping-time"
    assert index.match("my password I forgot").entry.id == "password-reset"
    assert index.match("Tell me about quantum physics") is None
    strict = index.match("when will the order arrive", threshold=100)
    assert strict is None or strict.score == 100


def test_suggest_returns_distinct_entries_best_first():
    index = FaqIndex(load_faq_text("faq.toml", FAQ_TEXT))
    found = index.suggest("how do I use my gift card password", k=3)
    ids = [m.entry.id for m in found]
    assert len(ids) == len(set(ids)) and 1 <= len(ids) <= 3
    assert ids[0] == "gift-card"
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)


def test_index_agrees_with_the_bare_scan_on_the_demo_faq():
    entries = load_faq_files([ROOT / "rules" / "faq.toml"])
    index = FaqIndex(entries)
    queries = [q for e in entries for q in e.questions] + [
        "how long shiping takes",
        "can i pay with paypal please",
        "refund when",
        "i forgot my pasword",
        "do you deliver to canada",
        "my parcel arrived broken",
        "gift card balance check",
        "what is the weather like",
        "close account",
        "where do i type the coupon",
    ]
    agree = 0
    for query in queries:
        bare = process.extractOne(
            normalize(query),
            index.questions,
            scorer=fuzz.token_set_ratio,
            score_cutoff=index.threshold,
        )
        mine = index.match(query)
        agree += (bare and index.owner(bare[2]).id) == (mine and mine.entry.id)
    assert agree / len(queries) >= 0.98


def test_engine_suggest_for_agents():
    index = FaqIndex(
        [FaqEntry("a", ("How do I pay?",), "Card."), FaqEntry("b", ("Do you ship?",), "Yes.")]
    )
    engine = Engine(read_settings(ConfigSection({})), _empty_ruleset(), index)
    assert engine.suggest("pay how")[0].entry.id == "a"


def _empty_ruleset():
    from autoreply.loader import load_rules_texts

    return load_rules_texts([("empty.toml", "")])


def test_demo_files_are_valid_and_check_files_reports_errors(tmp_path):
    assert check_files([ROOT / "rules" / "demo.toml", ROOT / "rules" / "faq.toml"]) == []
    bad_rule = write(tmp_path / "bad.toml", '[[rule]]\nname = "x"\nthen = { priorty = "high" }\n')
    bad_faq = write(tmp_path / "badfaq.toml", '[[faq]]\nid = "a"\nquestions = ["q"]\nanswr = "x"\n')
    errors = check_files([bad_rule, bad_faq])
    assert len(errors) == 2
    assert any(
        e.startswith(f"{bad_rule}:3: rule[0].then.priorty") and "did you mean 'priority'?" in e
        for e in errors
    )
    assert any(e.startswith(f"{bad_faq}:4: faq[0].answr") for e in errors)
    assert check_files([tmp_path / "missing.toml"])[0].startswith(str(tmp_path / "missing.toml"))


CONFIG = """
[autoreply]
rules = ["rules/demo.toml"]
faq = ["rules/faq.toml"]
brand = "Example Shop"
instance_id = "eu-1"
own_domains = ["mail.example.com"]
per_contact_max = 2

[autoreply.business_hours]
timezone = "Europe/Paris"
mon = ["09:00-18:00"]
tue = ["09:00-18:00"]
wed = ["09:00-18:00"]
thu = ["09:00-18:00"]
fri = ["09:00-18:00"]
holidays = ["2026-12-25", 2027-01-01]
"""


def section(text: str) -> ConfigSection:
    return ConfigSection(tomllib.loads(text), (), TomlSource("config.toml", text)).section(
        "autoreply"
    )


def test_settings_and_explain_with_the_demo_rules():
    settings = read_settings(section(CONFIG), base_dir=ROOT)
    assert settings.instance_id == "eu-1" and settings.per_contact_max == 2
    assert settings.business_hours is not None and len(settings.business_hours.holidays) == 2
    engine = Engine.from_settings(settings)
    out = explain(engine, subject="Where is my order?", body="it has not arrived", now=NOON)
    text = str(out)
    assert "FIRES order-status" in text and "reply (not sent):" in text
    assert out.decision.rule == "order-status"
    night = explain(
        engine,
        subject="Hello",
        body="Can I change the colour of my sofa?",
        now=NOON.replace(hour=22),
    )
    assert night.decision.rule == "out-of-hours" and "outside business hours" in str(night)
    assert "we will answer from Thursday 09:00" in night.decision.reply.text


@pytest.mark.parametrize(
    ("extra", "key", "expect"),
    [
        ("faq_treshold = 80\n", "faq_treshold", "did you mean 'faq_threshold'?"),
        ('per_contact_max = "3"\n', "per_contact_max", "expected a whole number"),
        ('handoff_priority = "asap"\n', "handoff_priority", "unknown value"),
        ('rules = ["nope/*.toml"]\n', "rules", "matches no file"),
    ],
)
def test_settings_errors_name_the_line(extra: str, key: str, expect: str):
    text = "[autoreply]\n" + extra
    with pytest.raises(ConfigError) as info:
        read_settings(section(text), base_dir=ROOT)
    err = info.value
    assert err.file == "config.toml" and err.line == 2 and err.key == f"autoreply.{key}"
    assert expect in str(err)


def test_business_hours_errors():
    text = '[autoreply]\n[autoreply.business_hours]\ntimezone = "Mars/Olympus"\n'
    with pytest.raises(ConfigError, match="unknown time zone") as info:
        read_settings(section(text), base_dir=ROOT)
    assert info.value.line == 3
    text = '[autoreply]\n[autoreply.business_hours]\ntimezone = "UTC"\nmon = ["18:00-09:00"]\n'
    with pytest.raises(ConfigError, match="must go forward") as info:
        read_settings(section(text), base_dir=ROOT)
    assert info.value.line == 4 and "overnight" in (info.value.fix or "")
