"""The `[forms]` section: one `[forms.NAME]` table per form, its fields as
`[[forms.NAME.fields]]`. Read once into frozen dataclasses, errors naming the key."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from inbox.config import ConfigSection
from inbox.web.client_address import read_trusted_proxies

FIELD_TYPES = ("text", "email", "phone", "textarea", "select", "checkbox", "number", "file")
RESERVED_NAMES = frozenset({"submission_id"})
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_FORM_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
DEFAULT_MAX_LENGTH = {"text": 200, "email": 254, "phone": 40, "textarea": 5000, "number": 40}
DEFAULT_FILE_TYPES = ("image/*", "application/pdf", "text/plain")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str
    label: str
    required: bool = False
    max_length: int = 200
    options: tuple[str, ...] = ()  # select
    min: float | None = None  # number
    max: float | None = None  # number


@dataclass(frozen=True, slots=True)
class FormSettings:
    name: str
    title: str
    fields: tuple[FieldSpec, ...]
    sender_field: str  # the email field whose value becomes the sender
    name_field: str | None = None
    subject_field: str | None = None
    subject: str | None = None
    inbox: str = "default"
    priority: str | None = None
    skills: tuple[str, ...] = ()
    redirect_url: str | None = None  # thank-you page; None: the built-in one
    confirmation_email: bool = False
    submit_label: str = "Send"
    honeypot_field: str = "website"
    rate_limit: int = 5  # submissions per client address per window
    rate_window_seconds: int = 600
    max_files: int = 3
    max_file_bytes: int = 5 * 1024 * 1024
    allowed_file_types: tuple[str, ...] = DEFAULT_FILE_TYPES
    max_body_bytes: int = 16 * 1024 * 1024
    allowed_origins: tuple[str, ...] = ()  # for cross-origin JSON/XHR posts (CORS)

    def field(self, name: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    @property
    def has_files(self) -> bool:
        return any(spec.type == "file" for spec in self.fields)


@dataclass(frozen=True, slots=True)
class FormsSettings:
    forms: dict[str, FormSettings] = field(default_factory=dict)
    # proxies whose X-Forwarded-For names the client (for the per-address rate limit)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


def _read_field(section: ConfigSection, taken: set[str]) -> FieldSpec:
    name = section.str("name")
    if not _NAME_RE.match(name) or name in RESERVED_NAMES:
        raise section.error(
            "name",
            f"bad field name {name!r}",
            fix="lower-case letters, digits and _, not 'submission_id'",
        )
    if name in taken:
        raise section.error("name", f"field {name!r} defined twice")
    taken.add(name)
    kind = section.str("type", "text", choices=FIELD_TYPES)
    options: tuple[str, ...] = ()
    if kind == "select":
        options = tuple(section.str_list("options"))
        if not options or len(set(options)) != len(options):
            raise section.error("options", "a select needs distinct options", fix='["A", "B"]')
    elif "options" in section:
        raise section.error("options", f"only a select has options, this is a {kind}")
    low = high = None
    if kind == "number":
        low = section.float("min", None)
        high = section.float("max", None)
        if low is not None and high is not None and low > high:
            raise section.error("max", f"max {high} is below min {low}")
    spec = FieldSpec(
        name=name,
        type=kind,
        label=section.str("label", name.replace("_", " ").capitalize()),
        required=section.bool("required", False),
        max_length=section.int("max_length", DEFAULT_MAX_LENGTH.get(kind, 200), min=1, max=100_000),
        options=options,
        min=low,
        max=high,
    )
    section.reject_unknown()
    return spec


def _one_of(
    section: ConfigSection,
    key: str,
    fields: Iterable[FieldSpec],
    kinds: tuple[str, ...],
    default: str | None,
) -> str | None:
    value = section.str(key, default)
    if value is None:
        return None
    names = {f.name: f.type for f in fields}
    if names.get(value) not in kinds:
        raise section.error(
            key,
            f"no {' or '.join(kinds)} field named {value!r}",
            fix=f"one of {[n for n, t in names.items() if t in kinds]}",
        )
    return str(value)


def _read_form(
    section: ConfigSection,
    name: str,
    priorities: Iterable[str] | None,
    inboxes: Iterable[str] | None,
) -> FormSettings:
    if not _FORM_RE.match(name):
        raise section.error(
            None,
            f"bad form name {name!r}",
            fix="lower-case letters, digits, - and _ (it is part of the URL)",
        )
    taken: set[str] = set()
    fields = tuple(_read_field(sub, taken) for sub in section.sections("fields"))
    if not fields:
        raise section.error("fields", "a form needs fields", fix=f"add [[forms.{name}.fields]]")
    sender = _sender_field(section, fields)
    honeypot = _honeypot_field(section, taken)
    priority = section.str("priority", None)
    if priority is not None and priorities is not None:
        priority = section.str("priority", choices=list(priorities))
    inbox = section.str("inbox", "default")
    if inboxes is not None and inbox not in set(inboxes):
        raise section.error("inbox", f"unknown inbox {inbox!r}", fix=f"one of {list(inboxes)}")
    redirect = _redirect_url(section)
    origins = _allowed_origins(section)
    form = FormSettings(
        name=name,
        title=section.str("title", name.replace("-", " ").replace("_", " ").capitalize()),
        fields=fields,
        sender_field=sender,
        name_field=_one_of(section, "name_field", fields, ("text",), None),
        subject_field=_one_of(section, "subject_field", fields, ("text", "select"), None),
        subject=section.str("subject", None),
        inbox=inbox,
        priority=priority,
        skills=tuple(section.str_list("skills", [])),
        redirect_url=redirect,
        confirmation_email=section.bool("confirmation_email", False),
        submit_label=section.str("submit_label", "Send"),
        honeypot_field=honeypot,
        rate_limit=section.int("rate_limit", 5, min=1, max=100_000),
        rate_window_seconds=section.int("rate_window_seconds", 600, min=1, max=86_400),
        max_files=section.int("max_files", 3, min=0, max=20),
        max_file_bytes=section.int("max_file_bytes", 5 * 1024 * 1024, min=1, max=100 * 1024**2),
        allowed_file_types=tuple(section.str_list("allowed_file_types", list(DEFAULT_FILE_TYPES))),
        max_body_bytes=section.int("max_body_bytes", 16 * 1024 * 1024, min=1024, max=512 * 1024**2),
        allowed_origins=origins,
    )
    section.reject_unknown()
    return form


def _sender_field(section: ConfigSection, fields: tuple[FieldSpec, ...]) -> str:
    """`sender_field`, by default the first email field: a required email field, since
    replies go to it."""
    emails = [f.name for f in fields if f.type == "email"]
    sender = _one_of(section, "sender_field", fields, ("email",), emails[0] if emails else None)
    if sender is None:
        raise section.error(
            "fields",
            "a form needs an email field: replies go to it",
            fix='name = "email", type = "email", required = true',
        )
    if not fields[[f.name for f in fields].index(sender)].required:
        raise section.error(
            "sender_field", f"the email field {sender!r} must be required", fix="required = true"
        )
    return sender


def _honeypot_field(section: ConfigSection, taken: set[str]) -> str:
    """`honeypot_field`: a field name no real field of the form uses."""
    honeypot: str = section.str("honeypot_field", "website")
    if honeypot in taken or not _NAME_RE.match(honeypot):
        raise section.error(
            "honeypot_field",
            f"{honeypot!r} clashes with a field or is not a field name",
            fix='honeypot_field = "website"',
        )
    return honeypot


def _redirect_url(section: ConfigSection) -> str | None:
    """`redirect_url`, an absolute http(s) URL when given."""
    redirect: str | None = section.str("redirect_url", None)
    if redirect is not None:
        parts = urlsplit(redirect)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise section.error(
                "redirect_url",
                f"expected an absolute http(s) URL: {redirect!r}",
                fix='"https://example.com/thanks"',
            )
    return redirect


def _allowed_origins(section: ConfigSection) -> tuple[str, ...]:
    """`allowed_origins`: "*" or http(s) origins (no path), without a trailing slash."""
    origins = tuple(o.rstrip("/") for o in section.str_list("allowed_origins", []))
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or parts.path):
            raise section.error(
                "allowed_origins", f"not an origin: {origin!r}", fix='["https://www.example.com"]'
            )
    return origins


def read_forms_settings(
    section: ConfigSection,
    *,
    priorities: Iterable[str] | None = None,
    inboxes: Iterable[str] | None = None,
) -> FormsSettings:
    """Validate `[forms]`: pass config.section("forms"), config.priorities, config.inboxes."""
    proxies = read_trusted_proxies(section)
    priorities = list(priorities) if priorities is not None else None
    inboxes = list(inboxes) if inboxes is not None else None
    forms: dict[str, FormSettings] = {}
    for key in section.keys():
        if key == "trusted_proxies":
            continue
        if not isinstance(section.raw(key), dict):
            raise section.error(
                key,
                "unknown key: forms are tables [forms.NAME]",
                fix="only trusted_proxies sits directly under [forms]",
            )
        forms[key] = _read_form(section.section(key), key, priorities, inboxes)
    return FormsSettings(forms=forms, trusted_proxies=proxies)
