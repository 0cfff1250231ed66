"""The typed reader of one config section: `ConfigSection`. Its getters raise
`ConfigError` naming the file, the line, the key and the fix, so every bad edit reads the
same way wherever a package reads its section. (Files and the environment are read by
`inbox.config` alone; this module reads only the data it is handed.)
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from inbox.errors import ConfigError
from inbox.tomlpos import TomlSource, format_path

T = TypeVar("T")
_MISSING: Any = object()


class ConfigSection:
    """A table of the config with typed getters whose errors name file, line and key."""

    def __init__(
        self,
        data: Mapping[builtins.str, Any],
        path: tuple[str | builtins.int, ...] = (),
        source: TomlSource | None = None,
        environ: Mapping[builtins.str, builtins.str] | None = None,
    ) -> None:
        self._data = dict(data)
        self._path = path
        self._source = source or TomlSource("<config>", "")
        self._environ = environ if environ is not None else {}
        self._read: set[builtins.str] = set()

    # -- errors -------------------------------------------------------------------------
    @property
    def file(self) -> builtins.str:
        return self._source.name

    def where(self, key: builtins.str | builtins.int | None = None) -> builtins.str:
        path = (*self._path, key) if key is not None else self._path
        return format_path(path)

    def error(
        self,
        key: builtins.str | builtins.int | None,
        message: builtins.str,
        fix: builtins.str | None = None,
    ) -> ConfigError:
        path = (*self._path, key) if key is not None else self._path
        return ConfigError(
            message,
            file=self._source.name,
            line=self._source.line_of(path),
            key=format_path(path) or None,
            fix=fix,
        )

    # -- access -------------------------------------------------------------------------
    def __contains__(self, key: builtins.str) -> builtins.bool:
        return key in self._data

    def keys(self) -> list[builtins.str]:
        return list(self._data)

    def raw(self, key: builtins.str, default: Any = None) -> Any:
        self._read.add(key)
        return self._data.get(key, default)

    def _get(self, key: builtins.str, default: Any) -> Any:
        self._read.add(key)
        if key in self._data:
            return self._data[key]
        if default is _MISSING:
            raise self.error(key, "is required", fix=f"add `{key} = ...` to [{self.where()}]")
        return default

    def str(
        self,
        key: builtins.str,
        default: Any = _MISSING,
        *,
        choices: Iterable[builtins.str] | None = None,
    ) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, builtins.str):
            raise self.error(key, f"expected a string, got {value!r}", fix=f'{key} = "..."')
        if choices is not None:
            allowed = list(choices)
            if value not in allowed:
                close = difflib.get_close_matches(value, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"one of {allowed}"
                raise self.error(key, f"unknown value {value!r}", fix=hint)
        return value

    def int(
        self,
        key: builtins.str,
        default: Any = _MISSING,
        *,
        min: builtins.int | None = None,
        max: builtins.int | None = None,
    ) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, builtins.bool) or not isinstance(value, builtins.int):
            raise self.error(key, f"expected a whole number, got {value!r}", fix=f"{key} = 10")
        self._check_range(key, value, min, max)
        return value

    def float(
        self,
        key: builtins.str,
        default: Any = _MISSING,
        *,
        min: builtins.float | None = None,
        max: builtins.float | None = None,
    ) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, builtins.bool) or not isinstance(value, builtins.int | builtins.float):
            raise self.error(key, f"expected a number, got {value!r}", fix=f"{key} = 1.5")
        self._check_range(key, value, min, max)
        return float(value)

    def _check_range(
        self,
        key: builtins.str,
        value: builtins.float,
        low: builtins.float | None,
        high: builtins.float | None,
    ) -> None:
        if low is not None and value < low:
            raise self.error(key, f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise self.error(key, f"must be at most {high}, got {value}")

    def bool(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, builtins.bool):
            raise self.error(key, f"expected true or false, got {value!r}", fix=f"{key} = true")
        return value

    def str_list(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, builtins.str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, builtins.str) for v in value):
            raise self.error(
                key, f"expected a list of strings, got {value!r}", fix=f'{key} = ["a", "b"]'
            )
        return list(value)

    def secret(self, key: builtins.str, default: Any = _MISSING) -> Any:
        """A secret given inline as `key` or by environment variable name as `key_env`."""
        env_key = f"{key}_env"
        if env_key in self._data:
            self._read.add(env_key)
            name = self._data[env_key]
            if not isinstance(name, builtins.str):
                raise self.error(env_key, "expected the name of an environment variable")
            if name not in self._environ:
                raise self.error(
                    env_key, f"environment variable {name} is not set", fix=f"export {name}=..."
                )
            self._read.add(key)
            return self._environ[name]
        return self.str(key, default)

    def section(self, key: builtins.str, *, required: builtins.bool = False) -> ConfigSection:
        self._read.add(key)
        value = self._data.get(key)
        if value is None:
            if required:
                raise self.error(key, "section is missing", fix=f"add a [{self.where(key)}] table")
            value = {}
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {value!r}", fix=f"[{self.where(key)}]")
        return ConfigSection(value, (*self._path, key), self._source, self._environ)

    def sections(self, key: builtins.str) -> list[ConfigSection]:
        """An array of tables ([[key]])."""
        self._read.add(key)
        value = self._data.get(key, [])
        if isinstance(value, dict):
            # a table of named tables: [forms.contact], [forms.sales] -> name injected
            return [
                ConfigSection(
                    {"name": name, **sub}, (*self._path, key, name), self._source, self._environ
                )
                for name, sub in value.items()
                if isinstance(sub, dict)
            ]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, "expected an array of tables", fix=f"[[{self.where(key)}]]")
        return [
            ConfigSection(item, (*self._path, key, index), self._source, self._environ)
            for index, item in enumerate(value)
        ]

    def reject_unknown(self, allowed: Iterable[builtins.str] | None = None) -> None:
        """Raise for a key nobody reads: a typo must not pass silently."""
        known = set(allowed) if allowed is not None else self._read
        for key in self._data:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                fix = f"did you mean {close[0]!r}?" if close else "remove it"
                raise self.error(key, "unknown key", fix=fix)
