"""The `omnidesk` command: global options, then one subcommand of `omnidesk.commands`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from inbox.errors import ConfigError, OmnideskError
from omnidesk.commands import agents, checks, service, tokens

# the subcommands, in the order `omnidesk --help` lists them
COMMANDS = (
    service.add_serve,
    service.add_migrate,
    agents.add_commands,
    tokens.add_commands,
    checks.add_config,
    service.add_demo,
    checks.add_rules,
    checks.add_form,
)


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
    for add in COMMANDS:
        add(sub)
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
