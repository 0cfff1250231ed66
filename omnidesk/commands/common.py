"""What the subcommands share: the config named on the command line, and one function run
in a store transaction."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from inbox import config as config_mod

if TYPE_CHECKING:
    # what `add_subparsers()` returns; each group module adds its commands to it
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

T = TypeVar("T")


def load(args: argparse.Namespace) -> config_mod.Config:
    return config_mod.load(args.config, overrides=args.set or ())


def with_store(config: config_mod.Config, fn: Callable[[Any], T], *, write: bool = True) -> T:
    from inbox.store.backends import open_store

    async def run() -> T:
        store = open_store(config.database_url)
        try:
            return await (store.write(fn) if write else store.read(fn))
        finally:
            await store.close()

    return asyncio.run(run())
