"""Configuration: the one module that reads the config file and the environment.

`load(path)` parses TOML, applies environment overrides (OMNIDESK_DATABASE_URL,
OMNIDESK_REDIS_URL, OMNIDESK_SECRET_KEY, and any `*_env` key that names a variable), and
validates the core sections into `Config`. Other packages read their own section through
`ConfigSection`, whose typed getters raise `ConfigError` naming the file, the line, the
key and the fix, so every bad edit reads the same way:

    config.toml:14: routing.queues[1].relax_after: expected a number of seconds, got 'soon'
"""

from __future__ import annotations

import builtins
import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from inbox.errors import ConfigError

T = TypeVar("T")
_MISSING: Any = object()

DEFAULT_PRIORITIES = ("urgent", "high", "normal", "low")


class _Source:
    """The text of one config file, to point errors at lines."""

    def __init__(self, name: str, text: str, overridden: Iterable[str] = ()) -> None:
        self.name = name
        self.lines = text.splitlines()
        self.overridden = frozenset(overridden)  # dotted keys set on the command line

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """Best-effort line number of a dotted key path such as ("routing", "queues", 1, "x")."""
        if not path or ".".join(str(p) for p in path) in self.overridden:
            return None
        *tables, last = path
        want = [p for p in tables if isinstance(p, str)]
        array_index = [p for p in tables if isinstance(p, int)]
        header_re = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
        key_re = re.compile(rf"^\s*[\"']?{re.escape(str(last))}[\"']?\s*=")
        current: list[str] = []
        seen_arrays: dict[str, int] = {}
        header_line: int | None = None
        for number, line in enumerate(self.lines, start=1):
            match = header_re.match(line)
            if match:
                current = [part.strip().strip("\"'") for part in match.group(2).split(".")]
                dotted = ".".join(current)
                if match.group(1) == "[[":
                    seen_arrays[dotted] = seen_arrays.get(dotted, -1) + 1
                index_ok = not array_index or seen_arrays.get(dotted, 0) == array_index[-1]
                if current == want and index_ok:
                    header_line = number
                    if isinstance(last, int):
                        return number
                continue
            if isinstance(last, str) and key_re.match(line):
                dotted = ".".join(current)
                index_ok = not array_index or seen_arrays.get(dotted, 0) == array_index[-1]
                if current == want and index_ok:
                    return number
        return header_line


def _format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class ConfigSection:
    """A table of the config with typed getters whose errors name file, line and key."""

    def __init__(
        self,
        data: Mapping[builtins.str, Any],
        path: tuple[str | builtins.int, ...] = (),
        source: _Source | None = None,
        environ: Mapping[builtins.str, builtins.str] | None = None,
    ) -> None:
        self._data = dict(data)
        self._path = path
        self._source = source or _Source("<config>", "")
        self._environ = environ if environ is not None else {}
        self._read: set[builtins.str] = set()

    # -- errors -------------------------------------------------------------------------
    @property
    def file(self) -> builtins.str:
        return self._source.name

    def where(self, key: builtins.str | builtins.int | None = None) -> builtins.str:
        path = (*self._path, key) if key is not None else self._path
        return _format_path(path)

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
            key=_format_path(path) or None,
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


# --------------------------------------------------------------------------------------
# Core config


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = 1024 * 1024
    log_format: str = "text"
    log_level: str = "INFO"


@dataclass(frozen=True, slots=True)
class IngestConfig:
    thread_window_seconds: int = 7 * 24 * 3600
    batch_max: int = 256
    # a closed conversation is never reopened; a resolved one reopens within this window
    reopen_window_seconds: int = 30 * 24 * 3600
    default_country: str = "US"  # for phone numbers written without +CC


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    data_dir: Path
    database_url: str
    redis_url: str | None
    secret_key: str
    server: ServerConfig
    ingest: IngestConfig
    priorities: tuple[str, ...]
    default_priority: str
    inboxes: tuple[str, ...]
    root: ConfigSection = field(repr=False)

    def section(self, name: str) -> ConfigSection:
        """The raw section for a package's own settings (routing, autoreply, channels...)."""
        return self.root.section(name)


# Top-level tables read by other packages through `Config.section(name)`.
PACKAGE_SECTIONS = {
    "routing",
    "autoreply",
    "email",
    "smtp",
    "imap",
    "webchat",
    "sms",
    "forms",
    "agent_ui",
    "outbox",
    "canned_responses",
}

_CORE_KEYS = {
    "data_dir",
    "secret_key",
    "database",
    "redis",
    "server",
    "ingest",
    "priorities",
    "inboxes",
}


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    text: str | None = None,
    extra_sections: Iterable[str] = (),
    overrides: Sequence[str] = (),
) -> Config:
    """Read and validate a config file. Errors are `ConfigError` with file and line.

    `overrides` are command-line edits applied before validation: `KEY=VALUE` sets a dotted
    key (VALUE in TOML syntax, or a bare string), `KEY=` removes it. A process of a cluster
    uses them for what differs between processes sharing one file (e.g. `server.port`).
    """
    env = dict(os.environ if environ is None else environ)
    if path is None:
        path = env.get("OMNIDESK_CONFIG", "config.toml")
    name = os.fspath(path)
    if text is None:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                "file not found", file=name, fix="copy config.example.toml to config.toml"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc}", file=name) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            f"not valid TOML: {exc}",
            file=name,
            line=int(match.group(1)) if match else None,
            fix="check quotes, brackets and `key = value` syntax on that line",
        ) from None
    changed = [_override(data, item, name) for item in overrides]
    root = ConfigSection(data, (), _Source(name, text, changed), env)
    return _build(name, root, env, extra_sections)


def _override(data: dict[str, Any], item: str, name: str) -> str:
    """Apply one `KEY=VALUE` (or `KEY=` to remove) to the parsed file; returns KEY."""
    key, sep, value = item.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ConfigError(f"bad override {item!r}", file=name, fix="write --set section.key=value")
    table = data
    for part in parts[:-1]:
        nested = table.setdefault(part, {})
        if not isinstance(nested, dict):
            raise ConfigError(f"cannot set {key!r}: {part!r} is not a table", file=name, key=key)
        table = nested
    if not value.strip():
        table.pop(parts[-1], None)
        return ".".join(parts)
    try:
        table[parts[-1]] = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        table[parts[-1]] = value  # a bare word: the string itself
    return ".".join(parts)


def _build(
    name: str, root: ConfigSection, env: Mapping[str, str], extra_sections: Iterable[str]
) -> Config:
    base = Path(name).resolve().parent if name != "<config>" else Path.cwd()
    data_dir = Path(root.str("data_dir", "var"))
    if not data_dir.is_absolute():
        data_dir = base / data_dir

    db = root.section("database")
    database_url = env.get("OMNIDESK_DATABASE_URL") or db.str(
        "url", f"sqlite:///{data_dir / 'omnidesk.db'}"
    )
    if not database_url.startswith(("sqlite:", "postgresql:", "postgresql+asyncpg:", "postgres:")):
        raise db.error(
            "url",
            f"unsupported database URL {database_url.split(':', 1)[0]!r}",
            fix='use "sqlite:///var/omnidesk.db" or "postgresql://user@host/db"',
        )
    db.reject_unknown({"url"})

    redis_section = root.section("redis")
    redis_url = env.get("OMNIDESK_REDIS_URL") or redis_section.str("url", None)
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise redis_section.error(
            "url", f"not a redis URL: {redis_url!r}", fix='"redis://127.0.0.1:6379/0"'
        )
    redis_section.reject_unknown({"url"})

    secret_key = env.get("OMNIDESK_SECRET_KEY") or root.str("secret_key", "")
    if not secret_key:
        raise root.error(
            "secret_key",
            "is required (signs reply tokens, widget sessions, cookies)",
            fix="set secret_key or OMNIDESK_SECRET_KEY to a long random string",
        )
    if len(secret_key) < 16:
        raise root.error("secret_key", "is too short", fix="use at least 16 random characters")

    srv = root.section("server")
    server = ServerConfig(
        host=srv.str("host", "127.0.0.1"),
        port=srv.int("port", 8080, min=0, max=65535),
        public_url=srv.str("public_url", "").rstrip("/") or "",
        max_body_bytes=srv.int("max_body_bytes", 1024 * 1024, min=1024, max=1024**3),
        log_format=srv.str("log_format", "text", choices=["text", "json"]),
        log_level=srv.str("log_level", "INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]),
    )
    if not server.public_url:
        server = ServerConfig(
            host=server.host,
            port=server.port,
            public_url=f"http://{server.host}:{server.port}",
            max_body_bytes=server.max_body_bytes,
            log_format=server.log_format,
            log_level=server.log_level,
        )
    srv.reject_unknown()

    ing = root.section("ingest")
    ingest = IngestConfig(
        thread_window_seconds=ing.int("thread_window_seconds", 7 * 24 * 3600, min=0),
        batch_max=ing.int("batch_max", 256, min=1, max=10_000),
        reopen_window_seconds=ing.int("reopen_window_seconds", 30 * 24 * 3600, min=0),
        default_country=ing.str("default_country", "US"),
    )
    if not re.fullmatch(r"[A-Z]{2}", ingest.default_country):
        raise ing.error("default_country", "expected a two-letter ISO country code", fix='"US"')
    ing.reject_unknown()

    pri = root.section("priorities")
    levels = tuple(pri.str_list("levels", list(DEFAULT_PRIORITIES)))
    if not levels or len(set(levels)) != len(levels):
        raise pri.error("levels", "must be a non-empty list of distinct names")
    default_priority = pri.str(
        "default", "normal" if "normal" in levels else levels[-1], choices=levels
    )
    pri.reject_unknown()

    inboxes = tuple(root.str_list("inboxes", ["default"]))

    # sections owned by other packages are validated by their own settings readers
    root.reject_unknown(_CORE_KEYS | PACKAGE_SECTIONS | set(extra_sections))

    return Config(
        path=name,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secret_key,
        server=server,
        ingest=ingest,
        priorities=levels,
        default_priority=default_priority,
        inboxes=inboxes,
        root=root,
    )
