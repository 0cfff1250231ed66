"""Templates: sandbox, strict variables, autoescape of hostile input."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from autoreply.templates import _HTML_ENV, TemplateCheckError, compile_template
from tests.autoreply.factories import incoming, make_engine

HTML_RULES = """
[templates.ack]
subject = "Re: {{ message.subject }}"
text = "You wrote: {{ message.subject }}"
html = "<p>You wrote: {{ message.subject }} / {{ message.text }}</p>"

[[rule]]
name = "all"
then = { reply = "ack" }
"""


def test_xss_in_subject_and_body_is_escaped_in_html_only():
    xss = '<script>alert("x")</script>'
    d = incoming("<img src=x onerror=alert(1)>", subject=xss).decide(make_engine(HTML_RULES))
    assert d.reply is not None and d.reply.html is not None
    assert "<script>" not in d.reply.html and "&lt;script&gt;" in d.reply.html
    assert "<img" not in d.reply.html and "&lt;img src=x onerror=alert(1)&gt;" in d.reply.html
    assert d.reply.text == f"You wrote: {xss}"  # plain text is not HTML: kept as written
    assert d.reply.subject == f"Re: {xss}"


def test_header_injection_in_subject_is_flattened():
    d = incoming("x", subject="hello\r\nBcc: victim@example.com").decide(make_engine(HTML_RULES))
    assert (
        d.reply is not None
        and "\n" not in (d.reply.subject or "")
        and "\r" not in (d.reply.subject or "")
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ contact.__class__.__mro__ }}",
        "{{ message['__class__'] }}",
        "{{ (1).__class__.__base__.__subclasses__() }}",
    ],
)
def test_attribute_escapes_rejected_at_load(source: str):
    with pytest.raises(TemplateCheckError, match="not allowed"):
        compile_template("t", source)


def test_sandbox_blocks_escapes_at_render_time_too():
    # even a template that bypasses our load-time checks cannot reach internals
    template = _HTML_ENV.from_string("{{ x.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(SecurityError):
        template.render(x="")
    gadget = _HTML_ENV.from_string("{{ f.__globals__ }}")
    with pytest.raises(SecurityError):
        gadget.render(f=test_sandbox_blocks_escapes_at_render_time_too)


def test_all_documented_variables_render():
    source = (
        "{{ contact.id }} {{ contact.name }} {{ contact.email }} {{ contact.phone }} {{ contact.tags|join(',') }} "
        "{{ contact.attributes.get('plan', '-') }} {{ conversation.id }} {{ conversation.subject }} "
        "{{ conversation.channel }} {{ conversation.inbox }} {{ conversation.priority }} {{ conversation.status }} "
        "{{ conversation.tags }} {{ conversation.token }} {{ message.text }} {{ message.subject }} {{ message.channel }} "
        "{{ message.sender }} {{ business_hours.open }} {{ business_hours.next_open }} {{ business_hours.timezone }} "
        "{{ business_hours.today }} {{ agents_available }} {{ rule.name }} {{ brand }} {{ handoff_hint }}"
        "{% if faq %}{{ faq.answer }}{% endif %}"
    )
    compile_template("t", source)


def test_scalar_attribute_and_unknown_nested_attribute_rejected():
    with pytest.raises(TemplateCheckError, match="'brand' has no attributes"):
        compile_template("t", "{{ brand.upper() }}")
    with pytest.raises(TemplateCheckError, match=r"'contact\.name' has no attribute 'first'"):
        compile_template("t", "{{ contact.name.first }}")
    compile_template("t", "{{ contact.attributes.plan }}")  # free-form mapping


def test_render_failure_suppresses_the_reply_with_a_reason():
    rules = '[templates.t]\ntext = "Plan: {{ contact.attributes.plan }}"\n[[rule]]\nname = "r"\nthen = { reply = "t", resolve = true }\n'
    d = incoming("hello", attributes={}).decide(make_engine(rules))
    assert d.reply is None and d.suppressed is not None and "template 't' failed" in d.suppressed
    assert not d.resolve  # the customer got no answer
    d = incoming("hello", attributes={"plan": "gold"}).decide(make_engine(rules))
    assert d.reply is not None and d.reply.text == "Plan: gold"
