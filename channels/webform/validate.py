"""Checking one submission against its form (pure): per-field errors, cleaned values,
the text stored as the message, and the idempotency key."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.webform.settings import FieldSpec, FormSettings
from inbox.errors import ValidationError
from inbox.identity import normalize_email, normalize_phone

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SUBMISSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
TRUE_VALUES = {"on", "true", "1", "yes"}
FALSE_VALUES = {"", "off", "false", "0", "no"}


@dataclass(frozen=True, slots=True)
class Upload:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Cleaned:
    values: dict[str, Any] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def clean_text(value: str, *, multiline: bool) -> str:
    value = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    if not multiline:
        value = " ".join(value.split("\n"))
    return value.strip()


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, int | float | str):
        return str(value)
    return None


def validate(
    form: FormSettings,
    values: Mapping[str, Sequence[Any]],
    uploads: Sequence[Upload] = (),
    *,
    default_country: str = "US",
    files_possible: bool = True,
) -> Cleaned:
    """Check every field; `values` maps a name to what was posted under it."""
    out = Cleaned()
    for spec in form.fields:
        if spec.type == "file":
            mine = [u for u in uploads if u.field == spec.name]
            if spec.required and not mine:
                out.fail(
                    spec.name,
                    "attach a file"
                    if files_possible
                    else "files need a multipart/form-data upload",
                )
            out.uploads.extend(mine)
            continue
        posted = values.get(spec.name) or []
        if len(posted) > 1:
            out.fail(spec.name, "sent more than once")
            continue
        raw = _as_str(posted[0]) if posted else None
        if posted and raw is None:
            out.fail(spec.name, "must be text")
            continue
        _check(spec, raw or "", out, default_country)
    for upload in uploads:
        file_spec = form.field(upload.field)
        if file_spec is None or file_spec.type != "file":
            out.fail(upload.field, "this field takes no file")
    return out


def _check(spec: FieldSpec, raw: str, out: Cleaned, country: str) -> None:
    """Check one posted value; record its cleaned value in `out`, or its error."""
    if spec.type == "checkbox":
        _check_checkbox(spec, raw, out)
        return
    name = spec.name
    text = clean_text(raw, multiline=spec.type == "textarea")
    if not text:
        if spec.required:
            out.fail(name, "is required")
        out.values[name] = None
        return
    if len(text) > spec.max_length:
        out.fail(name, f"is longer than {spec.max_length} characters")
        return
    normal = _normalized(spec, text, out, country)
    if normal is None:
        return
    if spec.type == "select" and normal not in spec.options:
        out.fail(name, "is not one of the choices")
        return
    if spec.type == "number":
        _check_number(spec, normal, out)
        return
    out.values[name] = normal


def _check_checkbox(spec: FieldSpec, raw: str, out: Cleaned) -> None:
    """A checkbox posts one of TRUE_VALUES or FALSE_VALUES; a required one must be checked."""
    low = raw.strip().lower()
    if low not in TRUE_VALUES | FALSE_VALUES:
        out.fail(spec.name, "must be checked or not")
        return
    checked = low in TRUE_VALUES
    if spec.required and not checked:
        out.fail(spec.name, "must be checked")
    out.values[spec.name] = checked


def _normalized(spec: FieldSpec, text: str, out: Cleaned, country: str) -> str | None:
    """An email address or phone number in its normal form (other types as they are);
    None, with the error recorded in `out`, when it is not valid."""
    try:
        if spec.type == "email":
            return normalize_email(text)
        if spec.type == "phone":
            return normalize_phone(text, country)
    except ValidationError:
        out.fail(
            spec.name,
            "is not a valid email address"
            if spec.type == "email"
            else "is not a valid phone number",
        )
        return None
    return text


def _check_number(spec: FieldSpec, text: str, out: Cleaned) -> None:
    """A finite number within the field's min and max, kept as an int when whole."""
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        out.fail(spec.name, "is not a number")
        return
    if spec.min is not None and number < spec.min:
        out.fail(spec.name, f"must be at least {spec.min:g}")
        return
    if spec.max is not None and number > spec.max:
        out.fail(spec.name, f"must be at most {spec.max:g}")
        return
    out.values[spec.name] = int(number) if number.is_integer() else number


def message_text(form: FormSettings, cleaned: Cleaned) -> str:
    """What the agent reads: every field as `Label: value`, long text on its own lines."""
    lines: list[str] = []
    for spec in form.fields:
        if spec.type == "file":
            for upload in cleaned.uploads:
                if upload.field == spec.name:
                    lines.append(f"{spec.label}: {upload.filename} ({len(upload.data)} bytes)")
            continue
        value = cleaned.values.get(spec.name)
        if spec.type == "checkbox":
            lines.append(f"{spec.label}: {'yes' if value else 'no'}")
        elif value is None:
            continue
        elif spec.type == "textarea":
            lines.append(f"{spec.label}:\n{value}\n")
        else:
            lines.append(f"{spec.label}: {value}")
    return "\n".join(lines).strip()


def idempotency_key(form: FormSettings, submission_id: Any, cleaned: Cleaned) -> str:
    """`form:NAME:ID` from the snippet's submission_id, else a hash of the content."""
    if isinstance(submission_id, str) and _SUBMISSION_ID.match(submission_id):
        return f"form:{form.name}:{submission_id}"
    digest = hashlib.sha256()
    digest.update(json.dumps(cleaned.values, sort_keys=True, default=str).encode())
    for upload in cleaned.uploads:
        digest.update(f"\0{upload.field}\0{upload.filename}\0".encode())
        digest.update(hashlib.sha256(upload.data).digest())
    return f"form:{form.name}:sha256:{digest.hexdigest()[:40]}"
