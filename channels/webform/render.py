"""HTML for web forms: the embeddable snippet, the hosted page, the error page and the
built-in thank-you page. Every value that came from a customer or the config is escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from channels.webform.settings import FieldSpec, FormSettings

_INPUT_TYPES = {"text": "text", "email": "email", "phone": "tel", "number": "number"}

# Fills the hidden submission_id once per page view (a double submit reuses it) and
# disables the button while the browser posts.
_SCRIPT = """<script>(function(){var f=document.currentScript.previousElementSibling;
var s=f.querySelector('input[name="submission_id"]');if(s&&!s.value){s.value=
(window.crypto&&crypto.randomUUID)?crypto.randomUUID():(Date.now().toString(36)+
Math.random().toString(36).slice(2));}f.addEventListener("submit",function(){
var b=f.querySelector('[type="submit"]');if(b){setTimeout(function(){b.disabled=true;},0);}});
})();</script>"""


@dataclass(frozen=True, slots=True)
class Filled:
    """A form shown again after a refused submission: what was posted under each field
    name, the errors per field, and the submission id the browser posts again."""

    values: Mapping[str, Any] = field(default_factory=dict)
    errors: Mapping[str, Sequence[str]] = field(default_factory=dict)
    submission_id: str = ""


EMPTY = Filled()  # a form shown for the first time


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _field_html(form: FormSettings, spec: FieldSpec, value: Any, errors: Sequence[str]) -> str:
    ident = f"od-{form.name}-{spec.name}"
    req = " required" if spec.required else ""
    star = " *" if spec.required else ""
    label = f'<label for="{_e(ident)}">{_e(spec.label)}{star}</label>'
    common = f'id="{_e(ident)}" name="{_e(spec.name)}"{req}'
    if spec.type == "textarea":
        control = (
            f'<textarea {common} maxlength="{spec.max_length}" rows="6">'
            f"{_e(value or '')}</textarea>"
        )
    elif spec.type == "select":
        opts = ['<option value="">—</option>'] + [
            f'<option value="{_e(o)}"{" selected" if o == value else ""}>{_e(o)}</option>'
            for o in spec.options
        ]
        control = f"<select {common}>{''.join(opts)}</select>"
    elif spec.type == "checkbox":
        checked = " checked" if value else ""
        control = f'<input type="checkbox" {common} value="on"{checked}>'
        return f'<p class="od-field od-checkbox">{control} {label}{_errors_html(errors)}</p>'
    elif spec.type == "file":
        control = f'<input type="file" {common}{" multiple" if form.max_files > 1 else ""}>'
    else:
        extra = f' maxlength="{spec.max_length}"'
        if spec.type == "number":
            extra = (
                "".join(
                    f' {k}="{v:g}"'
                    for k, v in (("min", spec.min), ("max", spec.max))
                    if v is not None
                )
                + ' step="any"'
            )
        shown = "" if value is None else value
        control = f'<input type="{_INPUT_TYPES[spec.type]}" {common}{extra} value="{_e(shown)}">'
    return f'<p class="od-field">{label}<br>{control}{_errors_html(errors)}</p>'


def _errors_html(errors: Sequence[str]) -> str:
    if not errors:
        return ""
    return "".join(f'<br><span class="od-error" role="alert">{_e(e)}</span>' for e in errors)


def form_html(form: FormSettings, action: str, filled: Filled = EMPTY) -> str:
    values, errors = filled.values, filled.errors
    enctype = "multipart/form-data" if form.has_files else "application/x-www-form-urlencoded"
    parts = [
        f'<form class="omnidesk-form" action="{_e(action)}" method="post" '
        f'enctype="{enctype}" accept-charset="utf-8">',
        f'<input type="hidden" name="submission_id" value="{_e(filled.submission_id)}">',
        # the honeypot: invisible to people, irresistible to form-filling bots
        '<div style="position:absolute;left:-10000px;top:auto;width:1px;height:1px;'
        'overflow:hidden" aria-hidden="true">'
        f'<label>Leave this empty <input type="text" name="{_e(form.honeypot_field)}" '
        'value="" tabindex="-1" autocomplete="off"></label></div>',
    ]
    for spec in form.fields:
        parts.append(_field_html(form, spec, values.get(spec.name), errors.get(spec.name, ())))
    parts.append(f'<p><button type="submit">{_e(form.submit_label)}</button></p></form>')
    return "\n".join(parts) + "\n" + _SCRIPT


def snippet(name: str, settings: Any, public_url: str) -> str:
    """Embeddable HTML for `omnidesk form snippet NAME` (settings: FormsSettings)."""
    form: FormSettings = settings.forms[name]
    return form_html(form, f"{public_url.rstrip('/')}/forms/{name}") + "\n"


def page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;"
        "padding:0 1rem}.od-error{color:#b00020}input,select,textarea{width:100%;"
        "max-width:30rem}.od-checkbox input{width:auto}</style></head><body>\n"
        f"{body}\n</body></html>\n"
    )


def form_page(form: FormSettings, action: str, filled: Filled = EMPTY) -> str:
    intro = ""
    if filled.errors:
        items = "".join(
            f"<li>{_e(_label(form, name))}: {_e(message)}</li>"
            for name, messages in filled.errors.items()
            for message in messages
        )
        intro = (
            f'<div class="od-errors" role="alert"><p>Please correct the following:</p>'
            f"<ul>{items}</ul></div>"
        )
    body = f"<h1>{_e(form.title)}</h1>\n{intro}\n" + form_html(form, action, filled)
    return page(form.title, body)


def message_page(title: str, text: str) -> str:
    return page(title, f"<h1>{_e(title)}</h1>\n<p>{_e(text)}</p>")


def _label(form: FormSettings, name: str) -> str:
    spec = form.field(name)
    return spec.label if spec else name
