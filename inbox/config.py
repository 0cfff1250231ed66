"""Configuration: the one module that reads the config file and the environment.

`load(path)` parses TOML, applies environment overrides (OMNIDESK_DATABASE_URL,
OMNIDESK_REDIS_URL, OMNIDESK_SECRET_KEY, and any `*_env` key that names a variable), reads
the secret from a file when told to (or from the data directory's `secret_key`), and
validates the core sections into `Config`. Other packages read their own section through
`ConfigSection`, whose typed getters raise `ConfigError` naming the file, the line, the
key and the fix, so every bad edit reads the same way:

    config.toml:14: routing.queues[1].relax_after: expected a number of seconds, got 'soon'
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inbox.config_section import ConfigSection
from inbox.errors import ConfigError
from inbox.tomlpos import TomlSource

__all__ = ["DEFAULT_PRIORITIES", "Config", "ConfigSection", "load"]

DEFAULT_PRIORITIES = ("urgent", "high", "normal", "low")

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
    "metrics",
    "cases",
}

_CORE_KEYS = {
    "data_dir",
    "secret_key",
    "secret_key_file",
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
    source = TomlSource(name, text)
    data = source.parse()
    changed = [_override(data, item, name) for item in overrides]
    source.overridden = frozenset(changed)
    root = ConfigSection(data, (), source, env)
    return _build(name, root, env, extra_sections)


SECRET_FILE = "secret_key"  # noqa: S105  (a file name under data_dir; `make setup` writes it)


def _secret_key(root: ConfigSection, env: Mapping[str, str], base: Path, data_dir: Path) -> str:
    """The secret, from the first of: OMNIDESK_SECRET_KEY, `secret_key`, the file named by
    `secret_key_file` (relative to the config file), `<data_dir>/secret_key`."""
    key, path = "secret_key", None
    secret = env.get("OMNIDESK_SECRET_KEY") or root.str("secret_key", "")
    named = root.str("secret_key_file", None)
    if not secret and named is not None:
        key, path = "secret_key_file", base / named  # an absolute `named` stays itself
    elif not secret and (data_dir / SECRET_FILE).is_file():
        key, path = "data_dir", data_dir / SECRET_FILE
    if path is not None:
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise root.error(
                key, f"cannot read the secret in {path}: {exc}", fix="make it a readable file"
            ) from None
    if not secret:
        raise root.error(
            "secret_key",
            "is required (signs reply tokens, widget sessions, cookies)",
            fix=f"set OMNIDESK_SECRET_KEY, secret_key or secret_key_file to a long random"
            f" string, or write one to {data_dir / SECRET_FILE} (`make setup` does)",
        )
    if len(secret) < 16:
        what = "is too short" if path is None else f"the secret in {path} is too short"
        raise root.error(key, what, fix="use at least 16 random characters")
    return secret


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

    secret_key = _secret_key(root, env, base, data_dir)

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
