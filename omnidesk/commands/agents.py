"""`omnidesk agent ...`: add, list, disable agents and set their passwords."""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import TYPE_CHECKING

from inbox.errors import OmnideskError
from inbox.types import Role
from omnidesk.commands.common import load, with_store

if TYPE_CHECKING:
    from omnidesk.commands.common import Commands


def add_commands(sub: Commands) -> None:
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


def cmd_agent_add(args: argparse.Namespace) -> int:
    from agent_ui.passwords import hash_password
    from inbox.accounts.agents import parse_levels
    from inbox.store import agents

    config = load(args)
    password = args.password or secrets.token_urlsafe(12)
    agent = with_store(
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

    config = load(args)
    for a in with_store(config, agents.list_all, write=False):
        skills = ",".join(f"{k}:{v}" for k, v in sorted(a.skills.items())) or "-"
        state = "active" if a.active else "disabled"
        print(f"{a.id:>4}  {a.email:<32} {a.role.value:<10} {state:<8} {skills}")
    return 0


def cmd_agent_disable(args: argparse.Namespace) -> int:
    from inbox.store import agents

    config = load(args)
    with_store(config, lambda conn: agents.disable(conn, args.email))
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

    config = load(args)
    hashed = hash_password(_read_new_password(args.stdin))
    email = normalize_email(args.email)
    ended = with_store(config, lambda conn: agents.change_password(conn, args.email, hashed))
    print(f"password of {email} changed; {ended} session(s) ended")
    return 0
