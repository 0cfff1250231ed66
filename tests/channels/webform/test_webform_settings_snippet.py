from __future__ import annotations

from html.parser import HTMLParser

import pytest
from webform_support import CONFIG, forms_settings

from channels.webform.render import snippet
from inbox.errors import ConfigError


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_settings_read_every_field_type():
    settings = forms_settings()
    contact = settings.forms["contact"]
    assert [f.type for f in contact.fields] == [
        "text",
        "email",
        "phone",
        "select",
        "textarea",
        "checkbox",
        "number",
        "file",
    ]
    assert contact.sender_field == "email"
    assert contact.fields[3].options == ("Billing", "Shipping", "Other")
    assert (contact.fields[6].min, contact.fields[6].max) == (1.0, 10.0)
    assert settings.forms["simple"].redirect_url == "https://www.example.com/thanks"
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32"]


def test_snippet_is_an_embeddable_form():
    html = snippet("contact", forms_settings(), "https://desk.example.com/")
    parser = Collect()
    parser.feed(html)
    [form] = [a for t, a in parser.tags if t == "form"]
    assert form["action"] == "https://desk.example.com/forms/contact"
    assert form["method"] == "post" and form["enctype"] == "multipart/form-data"
    inputs = {a.get("name"): a for t, a in parser.tags if t in ("input", "textarea", "select")}
    assert inputs["submission_id"]["type"] == "hidden"
    assert inputs["website"]["tabindex"] == "-1"  # the honeypot
    assert inputs["email"]["type"] == "email" and "required" in inputs["email"]
    assert inputs["phone"]["type"] == "tel"
    assert inputs["quantity"]["type"] == "number" and inputs["quantity"]["max"] == "10"
    assert inputs["consent"]["type"] == "checkbox"
    assert inputs["attachment"]["type"] == "file" and "multiple" in inputs["attachment"]
    options = [a["value"] for t, a in parser.tags if t == "option"]
    assert options == ["", "Billing", "Shipping", "Other"]
    assert "crypto.randomUUID" in html  # the snippet fills submission_id
    simple = snippet("simple", forms_settings(), "https://desk.example.com")
    assert 'enctype="application/x-www-form-urlencoded"' in simple


def test_snippet_escapes_config_text():
    text = CONFIG.replace('label = "Your name"', 'label = "<b onmouseover=x>Name</b>"')
    html = snippet("contact", forms_settings(text), "https://desk.example.com")
    assert "<b onmouseover" not in html
    assert "&lt;b onmouseover=x&gt;Name&lt;/b&gt;" in html


BASE = 'secret_key = "0123456789abcdef0123"\n'


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            '[forms.f]\n[[forms.f.fields]]\nname = "msg"\ntype = "textarea"\n',
            "forms.f.fields",
            "needs an email field",
        ),
        (
            '[forms.f]\n[[forms.f.fields]]\nname = "email"\ntype = "emial"\n',
            "forms.f.fields[0].type",
            "did you mean 'email'",
        ),
        (
            '[forms.f]\n[[forms.f.fields]]\nname = "t"\ntype = "select"\n',
            "forms.f.fields[0].options",
            "is required",
        ),
        (
            '[forms.f]\ninbox = "nowhere"\n[[forms.f.fields]]\nname = "email"\ntype = "email"\n'
            "required = true\n",
            "forms.f.inbox",
            "unknown inbox",
        ),
        (
            '[forms.f]\npriority = "asap"\n[[forms.f.fields]]\nname = "email"\ntype = "email"\n'
            "required = true\n",
            "forms.f.priority",
            "unknown value",
        ),
        (
            '[forms.f]\nredirct_url = "x"\n[[forms.f.fields]]\nname = "email"\ntype = "email"\n'
            "required = true\n",
            "forms.f.redirct_url",
            "did you mean 'redirect_url'",
        ),
        (
            '[forms.f]\n[[forms.f.fields]]\nname = "email"\ntype = "email"\n',
            "forms.f.sender_field",
            "must be required",
        ),
        ("[forms]\nrate = 3\n", "forms.rate", "unknown key"),
        (
            '[forms."Bad Name"]\n[[forms."Bad Name".fields]]\nname = "email"\ntype = "email"\n'
            "required = true\n",
            "forms.Bad Name",
            "bad form name",
        ),
    ],
)
def test_config_errors_name_the_key(text, key, message):
    with pytest.raises(ConfigError) as info:
        forms_settings(BASE + text)
    assert info.value.key == key
    assert message in str(info.value)
