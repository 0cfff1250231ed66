"""`omnidesk serve`, `omnidesk migrate`, `omnidesk demo`: run the service and prepare
its database."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from omnidesk.commands.common import load

if TYPE_CHECKING:
    from omnidesk.commands.common import Commands


def add_serve(sub: Commands) -> None:
    serve = sub.add_parser("serve", help="run the service (every role in one process by default)")
    serve.add_argument("--role", choices=["all", "web", "router", "worker", "smtp"], default="all")
    serve.add_argument("--log-format", choices=["text", "json"], default=None)
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    serve.add_argument("--ready-file", help="create this file once the role is serving")
    serve.set_defaults(func=cmd_serve)


def add_migrate(sub: Commands) -> None:
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)


def add_demo(sub: Commands) -> None:
    sub.add_parser("demo", help="seed demo agents and an API token").set_defaults(func=cmd_demo)


def cmd_serve(args: argparse.Namespace) -> int:
    from omnidesk import logs
    from omnidesk.app import run_roles

    config = load(args)
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

    config = load(args)
    upgrade(config.database_url)
    print(f"database at head: {safe_url(config.database_url)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from omnidesk.demo import seed

    config = load(args)
    from inbox.store.migrate import upgrade

    upgrade(config.database_url)
    for line in seed(config):
        print(line)
    return 0
