"""`omnidesk config check`, `omnidesk rules check|test`, `omnidesk form snippet`: what
an admin runs on the files they edit, before the service reads them."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from inbox import config as config_mod
from inbox.errors import ConfigError
from omnidesk.commands.common import load

if TYPE_CHECKING:
    from omnidesk.commands.common import Commands


def add_config(sub: Commands) -> None:
    cfg = sub.add_parser("config", help="configuration").add_subparsers(
        dest="config_cmd", required=True
    )
    check = cfg.add_parser("check", help="validate a config file")
    check.add_argument("file", nargs="?")
    check.set_defaults(func=cmd_config_check)


def add_rules(sub: Commands) -> None:
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


def add_form(sub: Commands) -> None:
    form = sub.add_parser("form", help="web forms").add_subparsers(dest="form_cmd", required=True)
    fsnip = form.add_parser("snippet", help="print embeddable HTML for a configured form")
    fsnip.add_argument("name")
    fsnip.set_defaults(func=cmd_form_snippet)


def cmd_config_check(args: argparse.Namespace) -> int:
    config = config_mod.load(args.file or args.config, overrides=args.set or ())
    from omnidesk.wiring import check_sections

    check_sections(config)
    print(f"{config.path}: OK")
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    from autoreply import check_files, read_settings

    settings = None
    try:
        config = load(args)
        if "autoreply" in config.root:
            from pathlib import Path

            settings = read_settings(
                config.section("autoreply"),
                priorities=config.priorities,
                base_dir=Path(config.path).resolve().parent,
                inboxes=config.inboxes,
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

    config = load(args)
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

    config = load(args)
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
