"""`omnidesk token ...`: create, list and revoke API tokens."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from omnidesk.commands.common import load, with_store

if TYPE_CHECKING:
    from omnidesk.commands.common import Commands


def add_commands(sub: Commands) -> None:
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


def cmd_token_create(args: argparse.Namespace) -> int:
    from inbox.store import tokens

    config = load(args)
    inboxes = args.inbox or None
    unknown = sorted(set(inboxes or ()) - set(config.inboxes))
    if unknown:
        print(
            f"omnidesk: no inbox {', '.join(map(repr, unknown))} in the config; "
            f"configured: {', '.join(config.inboxes)}",
            file=sys.stderr,
        )
        return 1
    token = with_store(
        config,
        lambda conn: tokens.create(conn, args.name, inboxes=inboxes, read_only=args.read_only),
    )
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from inbox.store import tokens

    config = load(args)
    listed = with_store(config, lambda conn: tokens.list_all(conn, revoked=args.all), write=False)
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

    config = load(args)

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
