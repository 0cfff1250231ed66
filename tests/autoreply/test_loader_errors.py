"""Every class of bad rule/FAQ file: the error names the file, the line, the key and a fix."""

from __future__ import annotations

import pytest

from autoreply.faq import load_faq_text
from autoreply.loader import LoadOptions, load_rules, load_rules_texts
from inbox.errors import ConfigError


def error_of(text: str, options: LoadOptions | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_rules_texts([("rules/bad.toml", text)], options)
    return info.value


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


GOOD_HEAD = """
[templates.ack]
text = "Thanks {{ contact.name }}"

[[rule]]
name = "first"
when = { text_any = ["hello"] }
then = { tags = ["x"] }
"""


def test_toml_syntax_error_carries_tomllib_line():
    text = GOOD_HEAD + '\n[[rule]]\nname = "broken\nthen = { tags = [] }\n'
    err = error_of(text)
    assert err.file == "rules/bad.toml"
    assert err.line == line_of(text, 'name = "broken')
    assert "not valid TOML" in err.message
    assert err.fix
    assert str(err).startswith(f"rules/bad.toml:{err.line}: ")


def test_unknown_key_with_did_you_mean_in_when():
    text = (
        GOOD_HEAD
        + '\n[[rule]]\nname = "second"\n[rule.when]\nchannel = "email"\nsubjct_any = ["x"]\n[rule.then]\ntags = ["y"]\n'
    )
    err = error_of(text)
    assert err.line == line_of(text, "subjct_any")
    assert err.key == "rule[1].when.subjct_any"
    assert "rule 'second'" in err.message and "unknown key" in err.message
    assert err.fix == "did you mean 'subject_any'?"


def test_unknown_key_in_inline_then_and_in_rule_and_top_level():
    text = GOOD_HEAD + '\n[[rule]]\nname = "second"\nthen = { tags = ["y"], priorty = "high" }\n'
    err = error_of(text)
    assert err.line == line_of(text, "priorty")
    assert err.fix == "did you mean 'priority'?"

    text = (
        GOOD_HEAD
        + '\n[[rule]]\nname = "second"\nwehn = { channel = "email" }\nthen = { tags = ["y"] }\n'
    )
    err = error_of(text)
    assert (err.line, err.fix) == (line_of(text, "wehn"), "did you mean 'when'?")

    text = GOOD_HEAD + '\n[[rules]]\nname = "x"\n'
    err = error_of(text)
    assert (err.line, err.key, err.fix) == (
        line_of(text, "[[rules]]"),
        "rules",
        "did you mean 'rule'?",
    )


def test_bad_regex_names_the_rule_and_line():
    text = (
        GOOD_HEAD
        + '\n[[rule]]\nname = "lookaround"\n[rule.when]\nbody_regex = "foo(?=bar)"\n[rule.then]\ntags = ["y"]\n'
    )
    err = error_of(text)
    assert err.line == line_of(text, "body_regex")
    assert "rule 'lookaround'" in err.message and "RE2 cannot compile" in err.message
    assert "lookaround" in (err.fix or "")


def test_unknown_template_variable_and_attribute():
    text = '[templates.ack]\ntext = "Hi {{ costumer.name }}"\n'
    err = error_of(text)
    assert err.line == 2 and err.key == "templates.ack.text"
    assert "unknown template variable 'costumer'" in err.message
    assert err.fix == "did you mean 'contact'?"

    text = '[templates.ack]\ntext = "ok"\nhtml = """\n<p>Hi {{ contact.nmae }}</p>\n"""\n'
    err = error_of(text)
    assert err.line == 3 and err.key == "templates.ack.html"
    assert "contact.nmae" in err.message and err.fix == "did you mean 'name'?"


def test_template_syntax_error_and_sandbox_escape_rejected_at_load():
    err = error_of('[templates.ack]\ntext = "Hi {{ contact.name "\n')
    assert err.line == 2 and "template syntax error" in err.message
    err = error_of("[templates.ack]\ntext = \"{{ ''.__class__.__mro__ }}\"\n")
    assert err.line == 2 and "is not allowed in templates" in err.message


def test_unknown_template_name_in_reply():
    text = GOOD_HEAD + '\n[[rule]]\nname = "second"\nthen = { reply = "akc" }\n'
    err = error_of(text)
    assert err.line == line_of(text, 'reply = "akc"')
    assert err.fix == "did you mean 'ack'?"


@pytest.mark.parametrize(
    ("snippet", "needle", "expect"),
    [
        (
            "when = { channel = 3 }",
            "channel",
            "expected a string or a list of strings, got number 3",
        ),
        ('when = { first_message = "yes" }', "first_message", "expected true or false"),
        (
            'when = { text_any = "refund" }\nthen = { resolve = 1 }',
            "resolve",
            "expected true or false",
        ),
        ('when = { channel = "emial" }', "channel", "unknown channel 'emial'"),
        ("when = { text_any = [] }", "text_any", "is an empty list"),
        ('when = { language = "klingon" }', "language", "cannot detect language"),
        ('when = "email"', "when", "expected a table"),
    ],
)
def test_wrong_types(snippet: str, needle: str, expect: str):
    text = GOOD_HEAD + f'\n[[rule]]\nname = "second"\n{snippet}\n'
    if "then" not in snippet:
        text += 'then = { tags = ["y"] }\n'
    err = error_of(text)
    assert expect in err.message
    assert (
        err.line
        == line_of(text.split('name = "second"')[1], needle) + line_of(text, 'name = "second"') - 1
    )
    assert err.file == "rules/bad.toml"
    assert "rule 'second'" in err.message


def test_priority_must_be_a_configured_level():
    text = GOOD_HEAD + '\n[[rule]]\nname = "second"\nthen = { priority = "critical" }\n'
    err = error_of(text)
    assert err.line == line_of(text, "critical") and "unknown value 'critical'" in err.message


def test_missing_and_duplicate_names():
    err = error_of('[[rule]]\nthen = { tags = ["x"] }\n')
    assert err.line == 1 and err.key == "rule[0].name" and "is required" in err.message
    text = GOOD_HEAD + '\n[[rule]]\nname = "first"\nthen = { tags = ["x"] }\n'
    err = error_of(text)
    assert err.line == line_of(text.split("[[rule]]", 2)[2], 'name = "first"') + text.count(
        "\n", 0, text.rindex("[[rule]]")
    )
    assert "duplicate rule name" in err.message


def test_conditions_needing_config():
    text = (
        '[[rule]]\nname = "ooh"\nwhen = { business_hours = "outside" }\nthen = { tags = ["x"] }\n'
    )
    err = error_of(text)
    assert err.line == 3 and "no business hours are configured" in err.message
    assert "[autoreply.business_hours]" in (err.fix or "")
    text = '[[rule]]\nname = "f"\nwhen = { faq = true }\nthen = { reply = "faq" }\n'
    err = error_of(text)
    assert err.line == 3 and "no FAQ file" in err.message
    err = error_of('[[rule]]\nname = "f"\nthen = { reply = "faq" }\n', LoadOptions(has_faq=True))
    assert err.line == 3 and err.fix == "add faq = true to when"


def test_key_inside_multiline_template_text_is_not_mistaken_for_a_key():
    text = '[templates.ack]\ntext = """\nchannel = "not a key"\n"""\n\n[[rule]]\nname = "r"\nwhen = { channel = "pigeon" }\nthen = { tags = ["x"] }\n'
    err = error_of(text)
    assert err.line == line_of(text, "pigeon")


def test_faq_file_in_rules_list_is_explained():
    err = error_of('[[faq]]\nid = "x"\nquestions = ["a"]\nanswer = "b"\n')
    assert err.line == 1 and "FAQ entries do not belong in a rule file" in err.message


def test_missing_rule_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_rules([tmp_path / "nope.toml"])
    assert info.value.file.endswith("nope.toml") and "not found" in info.value.message


@pytest.mark.parametrize(
    ("text", "needle", "expect"),
    [
        ('[[faq]]\nid = "a"\nquestions = ["q"]\nanswr = "x"\n', "answr", "unknown key"),
        ('[[faq]]\nid = "a"\nquestions = ["q"]\n', "id", "is required"),
        (
            '[[faq]]\nid = "a"\nquestions = ["?!"]\nanswer = "x"\n',
            "questions",
            "at least one question",
        ),
        (
            '[[faq]]\nid = "a"\nquestions = ["q"]\nanswer = "x"\n[[faq]]\nid = "a"\nquestions = ["r"]\nanswer = "y"\n',
            'id = "a"\nquestions = ["r"]',
            "duplicate id",
        ),
        (
            '[[faq]]\nid = "a"\nquestions = 5\nanswer = "x"\n',
            "questions",
            "expected a string or a list",
        ),
        ('[[faq]\nid = "a"\n', "[[faq]", "not valid TOML"),
    ],
)
def test_faq_file_errors(text: str, needle: str, expect: str):
    with pytest.raises(ConfigError) as info:
        load_faq_text("faq.toml", text)
    err = info.value
    first_line = needle.splitlines()[0]
    expected_line = [i for i, line in enumerate(text.splitlines(), 1) if first_line in line][
        -1 if "duplicate" in expect else 0
    ]
    assert err.file == "faq.toml" and expect in err.message
    assert err.line == (expected_line if expect != "is required" else 1)


QUEUES = LoadOptions(
    inboxes=frozenset({"default", "billing"}),
    teams=frozenset({"default", "billing"}),
    agents=frozenset({"ann@example.com"}),
)


@pytest.mark.parametrize(
    ("then", "message", "fix"),
    [
        ('{ queue = "biling" }', "unknown inbox or team 'biling'", "did you mean 'billing'?"),
        ('{ assign_to = "bob@example.com" }', "no agent has the email", "omnidesk agents add"),
        ('{ assign_to = "sales" }', "unknown team 'sales'", "use one of: billing, default"),
        ('{ queue = "billing", resolve = true }', "waits in no queue", "drop resolve = true"),
    ],
)
def test_queue_and_assign_to_must_name_what_exists(then, message, fix):
    text = GOOD_HEAD + f'\n[[rule]]\nname = "move"\nthen = {then}\n'
    err = error_of(text, QUEUES)
    assert err.file == "rules/bad.toml"
    assert err.line == line_of(text, "then = " + then)
    assert message in err.message and fix in (err.fix or "")


def test_queue_and_assign_to_naming_what_exists_load():
    text = GOOD_HEAD + (
        '\n[[rule]]\nname = "a"\nthen = { queue = "billing", assign_to = "Ann@Example.com" }\n'
        '\n[[rule]]\nname = "b"\nthen = { assign_to = "default" }\n'
    )
    rules = load_rules_texts([("rules/ok.toml", text)], QUEUES).rules
    assert [(r.actions.queue, r.actions.assign_to) for r in rules[1:]] == [
        ("billing", "ann@example.com"),
        (None, "default"),
    ]


def test_queue_is_not_checked_when_the_inboxes_are_not_known():
    text = GOOD_HEAD + '\n[[rule]]\nname = "m"\nthen = { queue = "anywhere" }\n'
    assert load_rules_texts([("rules/ok.toml", text)]).rules[-1].actions.queue == "anywhere"
