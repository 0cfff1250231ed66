"""Reply templates: sandboxed jinja2, strict undefined, checked against a documented schema.

A template is checked when the rule file loads, never first at send time:

* every variable must be one of `VARIABLES` (did-you-mean otherwise);
* every attribute must be one the schema documents (`contact.nmae` fails at load);
  `contact.attributes` is free-form (use `contact.attributes.get("plan")` for optional keys);
* no attribute may start with an underscore (sandbox escapes like `''.__class__`);
* a dry run renders it with sample data.

Variables documented for admins:

    contact.        id, name, email, phone, tags, attributes (mapping)
    conversation.   id, subject, channel, inbox, priority, status, tags, token
    message.        text, subject, channel, sender
    business_hours. open (bool), next_open ("Monday 09:00"), timezone, today ("09:00-17:00")
    agents_available  number of agents online, or None when unknown
    faq.            id, question, answer, score   (set when an FAQ entry matched)
    rule.           name
    brand           the brand name from [autoreply] brand
    handoff_hint    how to reach a person ("Reply \"agent\" to talk to a person.")

HTML parts are rendered with autoescape, so a subject like `<script>` arrives escaped.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from autoreply.fields import did_you_mean
from inbox.ports import Reply

OBJECTS: dict[str, frozenset[str]] = {
    "contact": frozenset({"id", "name", "email", "phone", "tags", "attributes"}),
    "conversation": frozenset(
        {"id", "subject", "channel", "inbox", "priority", "status", "tags", "token"}
    ),
    "message": frozenset({"text", "subject", "channel", "sender"}),
    "business_hours": frozenset({"open", "next_open", "timezone", "today"}),
    "faq": frozenset({"id", "question", "answer", "score"}),
    "rule": frozenset({"name"}),
}
SCALARS = frozenset({"agents_available", "brand", "handoff_hint"})
VARIABLES = frozenset(OBJECTS) | SCALARS
FREE_FORM = frozenset({("contact", "attributes")})


class _AnyKey(dict[str, Any]):
    """Sample for free-form mappings in the dry run: every key exists."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


SAMPLE: dict[str, Any] = {
    "contact": {
        "id": 1,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+15550100",
        "tags": ["vip"],
        "attributes": _AnyKey(plan="gold"),
    },
    "conversation": {
        "id": 7,
        "subject": "Where is my order?",
        "channel": "email",
        "inbox": "support",
        "priority": "normal",
        "status": "open",
        "tags": [],
        "token": "tok",
    },
    "message": {
        "text": "Hello",
        "subject": "Where is my order?",
        "channel": "email",
        "sender": "ada@example.com",
    },
    "business_hours": {
        "open": False,
        "next_open": "Monday 09:00",
        "timezone": "UTC",
        "today": "closed",
    },
    "agents_available": 0,
    "faq": {"id": "sample", "question": "How?", "answer": "Like this.", "score": 99.0},
    "rule": {"name": "sample"},
    "brand": "Omnidesk",
    "handoff_hint": 'Reply "agent" to talk to a person.',
}


class TemplateCheckError(Exception):
    """A template problem found at load; `part` is "text", "html" or "subject"."""

    def __init__(self, part: str, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.part = part
        self.message = message
        self.fix = fix


_TEXT_ENV = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)
_HTML_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


@dataclass(frozen=True, slots=True)
class ReplyTemplate:
    name: str
    text: Any  # jinja2.Template
    html: Any | None = None
    subject: Any | None = None
    uses: frozenset[str] = VARIABLES  # variables the parts refer to (context built lazily)

    def render(self, context: Mapping[str, Any]) -> Reply:
        """Raises jinja2.TemplateError (the engine turns it into a suppression reason)."""
        return Reply(
            text=self.text.render(context).strip(),
            html=self.html.render(context) if self.html is not None else None,
            subject=" ".join(self.subject.render(context).split())
            if self.subject is not None
            else None,
        )


def compile_template(
    name: str, text: str, html: str | None = None, subject: str | None = None
) -> ReplyTemplate:
    """Compile and check all parts; raises TemplateCheckError naming the part."""
    parts = {"text": (text, _TEXT_ENV), "html": (html, _HTML_ENV), "subject": (subject, _TEXT_ENV)}
    compiled: dict[str, Any] = {}
    uses: set[str] = set()
    for part, (source, env) in parts.items():
        if source is None:
            continue
        compiled[part], found = _check(part, source, env)
        uses |= found
    return ReplyTemplate(
        name, compiled["text"], compiled.get("html"), compiled.get("subject"), frozenset(uses)
    )


def _check(part: str, source: str, env: SandboxedEnvironment) -> tuple[Any, set[str]]:
    try:
        tree = env.parse(source)
    except TemplateError as exc:
        raise TemplateCheckError(
            part, f"template syntax error: {exc}", "check {{ }} and {% %} pairs"
        ) from None
    variables = meta.find_undeclared_variables(tree)
    for variable in sorted(variables):
        if variable not in VARIABLES:
            raise TemplateCheckError(
                part, f"unknown template variable {variable!r}", _suggest(variable)
            )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        _check_access(part, node)  # type: ignore[arg-type]  # find_all is typed as Expr
    template = env.from_string(tree)
    # jinja keeps a template's globals as a ChainMap over the environment's; every render
    # copies it into the context (and Context iterates it again): a plain dict is the same
    # names at a fraction of the cost. Our environments' globals never change after import.
    template.globals = dict(template.globals)
    try:
        template.render(SAMPLE)
    except Exception as exc:  # any failure of the dry run is a load error
        raise TemplateCheckError(
            part, f"template fails on sample data: {exc}", "see the documented variables"
        ) from None
    return template, set(variables)


ALIASES = {
    "customer": "contact",
    "client": "contact",
    "user": "contact",
    "sender": "message",
    "ticket": "conversation",
    "thread": "conversation",
    "msg": "message",
    "email": "message",
    "hours": "business_hours",
    "agents": "agents_available",
    "company": "brand",
}


def _suggest(variable: str) -> str:
    close = difflib.get_close_matches(variable, list(ALIASES), n=1, cutoff=0.7)
    if close and difflib.SequenceMatcher(None, variable, close[0]).ratio() > max(
        (difflib.SequenceMatcher(None, variable, v).ratio() for v in VARIABLES), default=0
    ):
        return f"did you mean {ALIASES[close[0]]!r}?"
    return did_you_mean(variable, VARIABLES)


def _chain(node: nodes.Node) -> list[str] | None:
    """`contact.attributes.plan` -> ["contact", "attributes", "plan"]; None if not from a name."""
    names: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            names.append(node.attr)
            node = node.node
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            names.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            names.append(node.name)
            return names[::-1]
        else:
            return None


def _check_access(part: str, node: nodes.Getattr | nodes.Getitem) -> None:
    attr = (
        node.attr
        if isinstance(node, nodes.Getattr)
        else (node.arg.value if isinstance(node.arg, nodes.Const) else None)
    )
    if isinstance(attr, str) and attr.startswith("_"):
        raise TemplateCheckError(
            part, f"attribute {attr!r} is not allowed in templates", "remove it"
        )
    chain = _chain(node)
    if not chain or chain[0] not in VARIABLES:
        return  # a loop variable or an expression: the sandbox guards it at render time
    root = chain[0]
    if root in SCALARS:
        raise TemplateCheckError(
            part, f"{root!r} has no attributes", f"use a filter: {{{{ {root}|upper }}}}"
        )
    if len(chain) >= 2 and chain[1] not in OBJECTS[root]:
        raise TemplateCheckError(
            part,
            f"unknown template variable '{root}.{chain[1]}'",
            did_you_mean(chain[1], OBJECTS[root]),
        )
    if (
        len(chain) >= 3
        and (root, chain[1]) not in FREE_FORM
        and not isinstance(node, nodes.Getitem)
    ):
        # e.g. contact.name.upper is fine for the sandbox but not part of the schema
        raise TemplateCheckError(
            part,
            f"'{'.'.join(chain[:2])}' has no attribute {chain[2]!r}",
            f"use a filter: {{{{ {'.'.join(chain[:2])}|upper }}}}",
        )
