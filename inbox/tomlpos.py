"""Where keys sit in a TOML file, because `tomllib` gives values but no positions: the one
line locator behind every config, rule-file and FAQ error.

`TomlSource(name, text).line_of(("rule", 2, "when", "body_any"))` returns the line of that
key (or of the nearest enclosing table when the key itself is not written out). It
understands `[table]`, `[[array]]`, dotted keys, one-line inline tables and skips
multi-line strings. Keys named in `overridden` (dotted, set on the command line) have no
line: the error then names the key alone.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from typing import Any

from inbox.errors import ConfigError

__all__ = ["TomlSource", "format_path"]

Path = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_BARE = r"[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'"
_KEY = re.compile(rf"^\s*((?:{_BARE})(?:\s*\.\s*(?:{_BARE}))*)\s*=\s*(.*)$")
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_-]+)\s*=")
_TOML_LINE = re.compile(r"line (\d+)")


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(rf"{_BARE}", text)
    return [p.strip("\"'") for p in parts]


def format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


class TomlSource:
    """The text of one TOML file, parsed, with a map from key paths to line numbers."""

    def __init__(self, name: str, text: str, overridden: Iterable[str] = ()) -> None:
        self.name = name
        self.text = text
        self.overridden = frozenset(overridden)
        self._lines: dict[Path, int] = {}
        self._index()

    def parse(self) -> dict[str, Any]:
        """`tomllib.loads`, with a syntax error turned into a ConfigError on its line."""
        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            match = _TOML_LINE.search(str(exc))
            raise ConfigError(
                f"not valid TOML: {exc}",
                file=self.name,
                line=int(match.group(1)) if match else None,
                fix="check quotes, brackets and `key = value` syntax on that line",
            ) from None

    def _index(self) -> None:
        table: Path = ()
        arrays: dict[Path, int] = {}
        closing: str | None = None
        for number, line in enumerate(self.text.splitlines(), start=1):
            if closing is not None:
                if closing in line:
                    closing = None
                continue
            header = _HEADER.match(line)
            if header and not line.lstrip().startswith(('["', "['")):
                names = _split_dotted(header.group(2))
                concrete: list[str | int] = []
                for i, name in enumerate(names):
                    concrete.append(name)
                    last = i == len(names) - 1
                    if last and header.group(1) == "[[":
                        key = tuple(concrete)
                        arrays[key] = arrays.get(key, -1) + 1
                        self._lines.setdefault(key, number)
                        concrete.append(arrays[key])
                    elif tuple(concrete) in arrays:
                        concrete.append(arrays[tuple(concrete)])
                table = tuple(concrete)
                self._lines.setdefault(table, number)
                continue
            match = _KEY.match(line)
            if not match:
                continue
            path = (*table, *_split_dotted(match.group(1)))
            self._lines.setdefault(path, number)
            value = match.group(2)
            if value.startswith("{"):
                for sub in _INLINE_KEY.findall(value):
                    self._lines.setdefault((*path, sub), number)
            for quote in ('"""', "'''"):
                if value.count(quote) % 2 == 1:
                    closing = quote
                    break

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """Line of `path`, else of its nearest written ancestor."""
        probe = tuple(path)
        if ".".join(str(p) for p in probe) in self.overridden:
            return None
        while probe:
            line = self._lines.get(probe)
            if line is not None:
                return line
            probe = probe[:-1]
        return None

    def error(
        self,
        path: Sequence[str | int],
        message: str,
        fix: str | None = None,
        *,
        key: str | None = None,
    ) -> ConfigError:
        return ConfigError(
            message,
            file=self.name,
            line=self.line_of(path),
            key=key if key is not None else (format_path(path) or None),
            fix=fix,
        )
