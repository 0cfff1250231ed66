"""Typed reading of one TOML table of a rule or FAQ file; every error names file, line, key.

Like `inbox.config.ConfigSection`, but over a `TomlSource` so the line is found in the
rule file itself, and with `reject_unknown` offering a did-you-mean.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from inbox.errors import ConfigError
from inbox.tomlpos import TomlSource, format_path

_MISSING: Any = object()


class Table:
    def __init__(
        self,
        data: Mapping[str, Any],
        path: tuple[str | int, ...],
        source: TomlSource,
        label: str = "",
    ) -> None:
        self.data = data
        self.path = path
        self.source = source
        self.label = label  # e.g. "rule 'refund': " prefixed to messages

    def error(self, key: str | None, message: str, fix: str | None = None) -> ConfigError:
        path = (*self.path, key) if key is not None else self.path
        return ConfigError(
            self.label + message,
            file=self.source.name,
            line=self.source.line_of(path),
            key=format_path(path) or None,
            fix=fix,
        )

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise self.error(key, "is required", fix=f"add `{key} = ...`")
        return default

    def str(
        self, key: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None
    ) -> Any:
        if key not in self.data and default is not _MISSING:
            return default
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_show(value)}", fix=f'{key} = "..."')
        if choices is not None:
            allowed = list(choices)
            if value not in allowed:
                raise self.error(key, f"unknown value {value!r}", fix=did_you_mean(value, allowed))
        return value

    def bool(self, key: builtins.str, default: Any = _MISSING) -> Any:
        if key not in self.data and default is not _MISSING:
            return default
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.error(
                key, f"expected true or false, got {_show(value)}", fix=f"{key} = true"
            )
        return value

    def number(self, key: builtins.str, default: Any = _MISSING, *, low: float, high: float) -> Any:
        if key not in self.data and default is not _MISSING:
            return default
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {_show(value)}", fix=f"{key} = {high}")
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}, got {value}")
        return float(value)

    def str_list(self, key: builtins.str, default: Any = _MISSING) -> Any:
        """A string or a list of strings (a lone string is a list of one)."""
        if key not in self.data and default is not _MISSING:
            return default
        value = self._get(key, default)
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(
                key,
                f"expected a string or a list of strings, got {_show(value)}",
                fix=f'{key} = ["a", "b"]',
            )
        return list(value)

    def table(self, key: builtins.str, label: builtins.str | None = None) -> Table:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(
                key,
                f"expected a table, got {_show(value)}",
                fix=f"[{format_path((*self.path, key))}]",
            )
        return Table(value, (*self.path, key), self.source, self.label if label is None else label)

    def reject_unknown(self, allowed: Iterable[builtins.str]) -> None:
        known = sorted(set(allowed))
        for key in self.data:
            if key not in known:
                raise self.error(key, "unknown key", fix=did_you_mean(key, known))


def did_you_mean(value: str, allowed: Iterable[str]) -> str:
    options = sorted(set(allowed))
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}?"
    return "use one of: " + ", ".join(options) if len(options) <= 30 else "remove it"


def _show(value: Any) -> str:
    text = repr(value)
    kind = type(value).__name__
    kind = {"dict": "table", "list": "list", "int": "number", "float": "number"}.get(kind, kind)
    return f"{kind} {text[:60]}"
