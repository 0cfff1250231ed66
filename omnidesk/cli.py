"""The `omnidesk` command."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from inbox import config as config_mod
from inbox.errors import ConfigError, OmnideskError
from inbox.types import Role

T = TypeVar("T")


def _load(args: argparse.Namespace) -> config_mod.Config:
    return config_mod.load(args.config, overrides=args.set or ())


def _with_store(config: config_mod.Config, fn: Callable[[Any], T], *, write: bool = True) -> T:
    from inbox.store.backends import open_store

    async def run() -> T:
        store = open_store(config.database_url)
        try:
            return await (store.write(fn) if write else store.read(fn))
        finally:
            await store.close()

    return asyncio.run(run())


def cmd_serve(args: argparse.Namespace) -> int:
    from omnidesk import logs
    from omnidesk.app import run_roles

    config = _load(args)
    logs.setup(args.log_format or config.server.log_format, config.server.log_level)
    if args.migrate:
        from inbox.store.migrate import upgrade

        upgrade(config.database_url)
    on_ready = None
    if args.ready_file:
        ready = Path(args.ready_file)
        ready.unlink(missing_ok=True)
        on_ready = ready.touch  # for supervisors and scripts/cluster, whatever the log level
    asyncio.run(run_roles(config, args.role, on_ready))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from inbox.store.backends import safe_url
    from inbox.store.migrate import upgrade

    config = _load(args)
    upgrade(config.database_url)
    print(f"database at head: {safe_url(config.database_url)}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    config = config_mod.load(args.file or args.config, overrides=args.set or ())
    from omnidesk.wiring import check_sections

    check_sections(config)
    print(f"{config.path}: OK")
    return 0


def cmd_agent_add(args: argparse.Namespace) -> int:
    from agent_ui.passwords import hash_password
    from inbox.accounts.agents import parse_levels
    from inbox.store import agents

    config = _load(args)
    password = args.password or secrets.token_urlsafe(12)
    agent = _with_store(
        config,
        lambda conn: agents.add(
            conn,
            name=args.name,
            email=args.email,
            role=Role(args.role),
            skills=parse_levels(args.skills or "", "skills"),
            capacity=parse_levels(
                args.capacity or "chat:3,email:10,sms:5,form:10,api:10", "capacity"
            ),
            # without --teams an agent works every configured inbox
            teams=[t for t in (args.teams or "").split(",") if t] or list(config.inboxes),
            password_hash=hash_password(password),
        ),
    )
    print(f"agent {agent.id} {agent.email} ({agent.role.value}) added")
    if not args.password:
        print(f"password (shown once): {password}")
    return 0


def cmd_agent_list(args: argparse.Namespace) -> int:
    from inbox.store import agents

    config = _load(args)
    for a in _with_store(config, agents.list_all, write=False):
        skills = ",".join(f"{k}:{v}" for k, v in sorted(a.skills.items())) or "-"
        state = "active" if a.active else "disabled"
        print(f"{a.id:>4}  {a.email:<32} {a.role.value:<10} {state:<8} {skills}")
    return 0


def cmd_agent_disable(args: argparse.Namespace) -> int:
    from inbox.store import agents

    config = _load(args)
    _with_store(config, lambda conn: agents.disable(conn, args.email))
    print(f"agent {args.email} disabled")
    return 0


def _read_new_password(from_stdin: bool) -> str:
    """One line from stdin, or typed twice at a prompt that does not echo."""
    from agent_ui.auth import MIN_PASSWORD

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise OmnideskError("the two passwords differ; nothing changed")
    if len(password) < MIN_PASSWORD:
        raise OmnideskError(f"a password needs at least {MIN_PASSWORD} characters; nothing changed")
    return password


def cmd_agent_password(args: argparse.Namespace) -> int:
    from agent_ui.passwords import hash_password
    from inbox.identity import normalize_email
    from inbox.store import agents

    config = _load(args)
    hashed = hash_password(_read_new_password(args.stdin))
    email = normalize_email(args.email)
    ended = _with_store(config, lambda conn: agents.change_password(conn, args.email, hashed))
    print(f"password of {email} changed; {ended} session(s) ended")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from inbox.store import tokens

    config = _load(args)
    inboxes = args.inbox or None
    unknown = sorted(set(inboxes or ()) - set(config.inboxes))
    if unknown:
        print(
            f"omnidesk: no inbox {', '.join(map(repr, unknown))} in the config; "
            f"configured: {', '.join(config.inboxes)}",
            file=sys.stderr,
        )
        return 1
    token = _with_store(
        config,
        lambda conn: tokens.create(conn, args.name, inboxes=inboxes, read_only=args.read_only),
    )
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from inbox.store import tokens

    config = _load(args)
    listed = _with_store(config, lambda conn: tokens.list_all(conn, revoked=args.all), write=False)
    print(f"{'id':>4}  {'name':<24} {'created':<20} {'last used':<20} scopes")
    for info in listed:
        scope = info.scope
        used = info.last_used_at.strftime("%Y-%m-%d %H:%M") if info.last_used_at else "never"
        state = f" (revoked {info.revoked_at:%Y-%m-%d %H:%M})" if info.revoked_at else ""
        print(
            f"{scope.token_id:>4}  {scope.name:<24} {info.created_at:%Y-%m-%d %H:%M}"
            f"     {used:<20} {scope.describe()}{state}"
        )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from inbox.accounts.token_cache import announce_revoked, stamp_path
    from inbox.bus.backends import open_bus
    from inbox.store import tokens
    from inbox.store.backends import open_store

    config = _load(args)

    async def run() -> str:
        store = open_store(config.database_url)
        try:
            scope = await store.call(tokens.revoke, args.token)
        finally:
            await store.close()
        # committed: now every process that may remember the token forgets it (the stamp
        # reaches processes on this host, the Redis bus those of a scaled-out deployment)
        bus = open_bus(config.redis_url) if config.redis_url else None
        try:
            await announce_revoked(bus, stamp_path(config.data_dir), scope)
        finally:
            if bus is not None:
                await bus.close()
        return f"token {scope.token_id} {scope.name!r} revoked"

    print(asyncio.run(run()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from omnidesk.demo import seed

    config = _load(args)
    from inbox.store.migrate import upgrade

    upgrade(config.database_url)
    for line in seed(config):
        print(line)
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    from autoreply import check_files, read_settings

    settings = None
    try:
        config = _load(args)
        if "autoreply" in config.root:
            from pathlib import Path

            settings = read_settings(
                config.section("autoreply"),
                priorities=config.priorities,
                base_dir=Path(config.path).resolve().parent,
            )
    except ConfigError:
        settings = None  # check the files on their own
    errors = check_files(args.files, settings)
    for line in errors:
        print(line, file=sys.stderr)
    if not errors:
        print(f"{len(args.files)} file(s) OK")
    return 1 if errors else 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from autoreply import explain
    from omnidesk.wiring import autoreply_engine

    config = _load(args)
    engine, _reloader = autoreply_engine(config)
    if engine is None:
        print("auto-answers are off in this config ([autoreply] missing or enabled = false)")
        return 1
    result = explain(
        engine,
        channel=args.channel,
        subject=args.subject or "",
        body=args.body or "",
        sender=args.sender,
        inbox=args.inbox,
    )
    print(result)
    return 0


def cmd_form_snippet(args: argparse.Namespace) -> int:
    from channels.webform import read_forms_settings, snippet

    config = _load(args)
    forms = read_forms_settings(
        config.section("forms"), priorities=config.priorities, inboxes=config.inboxes
    )
    if args.name not in forms.forms:
        print(
            f"omnidesk: no form {args.name!r}; configured: {sorted(forms.forms)}", file=sys.stderr
        )
        return 1
    print(snippet(args.name, forms, config.server.public_url), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnidesk", description="omnichannel inbox and contact center"
    )
    parser.add_argument(
        "--config",
        "-c",
        default=None,
        help="config file (default: $OMNIDESK_CONFIG or config.toml)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override one config key for this command, e.g. --set server.port=8082"
        " (VALUE in TOML syntax; KEY= removes the key); repeatable",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (every role in one process by default)")
    serve.add_argument("--role", choices=["all", "web", "router", "worker", "smtp"], default="all")
    serve.add_argument("--log-format", choices=["text", "json"], default=None)
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    serve.add_argument("--ready-file", help="create this file once the role is serving")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    agent = sub.add_parser("agent", help="manage agents").add_subparsers(
        dest="agent_cmd", required=True
    )
    add = agent.add_parser("add", help="add an agent (prints a generated password once)")
    add.add_argument("--name", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--role", choices=[r.value for r in Role], default="agent")
    add.add_argument("--skills", help="e.g. billing:7,english:9")
    add.add_argument("--capacity", help="per channel, e.g. chat:3,email:10")
    add.add_argument("--teams", help="inboxes/teams, comma separated (default: all)")
    add.add_argument("--password", help="default: generate one and print it once")
    add.set_defaults(func=cmd_agent_add)
    agent.add_parser("list", help="list agents").set_defaults(func=cmd_agent_list)
    password = agent.add_parser(
        "password", help="set an agent's password (asked twice, never echoed); ends its sessions"
    )
    password.add_argument("email")
    password.add_argument(
        "--stdin", action="store_true", help="read the password from one line of stdin"
    )
    password.set_defaults(func=cmd_agent_password)
    disable = agent.add_parser("disable", help="disable an agent")
    disable.add_argument("email")
    disable.set_defaults(func=cmd_agent_disable)

    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="token_cmd", required=True
    )
    create = token.add_parser("create", help="create an API token (printed once, stored hashed)")
    create.add_argument("name")
    create.add_argument(
        "--inbox",
        action="append",
        metavar="INBOX",
        help="limit the token to this inbox (repeatable; default: every inbox)",
    )
    create.add_argument(
        "--read-only", action="store_true", help="the token may read but change nothing"
    )
    create.set_defaults(func=cmd_token_create)
    tlist = token.add_parser("list", help="list API tokens and their scopes (never the secret)")
    tlist.add_argument("--all", action="store_true", help="revoked tokens too")
    tlist.set_defaults(func=cmd_token_list)
    revoke = token.add_parser("revoke", help="revoke an API token at once, in every process")
    revoke.add_argument("token", metavar="ID|NAME")
    revoke.set_defaults(func=cmd_token_revoke)

    cfg = sub.add_parser("config", help="configuration").add_subparsers(
        dest="config_cmd", required=True
    )
    check = cfg.add_parser("check", help="validate a config file")
    check.add_argument("file", nargs="?")
    check.set_defaults(func=cmd_config_check)

    sub.add_parser("demo", help="seed demo agents and an API token").set_defaults(func=cmd_demo)

    rules = sub.add_parser("rules", help="auto-answer rules").add_subparsers(
        dest="rules_cmd", required=True
    )
    rcheck = rules.add_parser("check", help="validate rule and FAQ files")
    rcheck.add_argument("files", nargs="+")
    rcheck.set_defaults(func=cmd_rules_check)
    rtest = rules.add_parser(
        "test", help="show which rule fires for a message, and why (sends nothing)"
    )
    rtest.add_argument(
        "--channel", default="email", choices=["email", "chat", "sms", "form", "api"]
    )
    rtest.add_argument("--subject", default="")
    rtest.add_argument("--body", default="")
    rtest.add_argument("--sender", default="customer@example.com")
    rtest.add_argument("--inbox", default="default")
    rtest.set_defaults(func=cmd_rules_test)

    form = sub.add_parser("form", help="web forms").add_subparsers(dest="form_cmd", required=True)
    fsnip = form.add_parser("snippet", help="print embeddable HTML for a configured form")
    fsnip.add_argument("name")
    fsnip.set_defaults(func=cmd_form_snippet)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"omnidesk: {exc}", file=sys.stderr)
        return 2
    except OmnideskError as exc:
        print(f"omnidesk: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
