"""Hot reload of rule and FAQ files: on SIGHUP (`reload()`) or on change (`watch()`).

A bad edit keeps the last good rules and logs ONE error line naming file, line and fix
(wrapped here):

    autoreply: rules not reloaded, keeping version 3:
        rules/demo.toml:12: rule[1].when.body_regex: ...

The new ruleset and FAQ index are built completely off to the side, then swapped in with
one assignment (`Engine.swap`), so a message being decided sees the old or the new rules,
never a mix.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import signal
import threading
from pathlib import Path

from autoreply.engine import Engine
from autoreply.faq import FaqIndex, load_faq_files
from autoreply.loader import LoadOptions, load_rules, queue_options
from autoreply.rules import Ruleset
from autoreply.settings import AutoreplySettings
from inbox.errors import ConfigError

log = logging.getLogger("omnidesk.autoreply")


def load_state(settings: AutoreplySettings, *, version: int = 0) -> tuple[Ruleset, FaqIndex | None]:
    """Read every configured file. Raises ConfigError naming file, line, key and fix."""
    faq_files = settings.faq_files()
    faq = None
    if faq_files:
        faq = FaqIndex(
            load_faq_files(faq_files),
            threshold=settings.faq_threshold,
            shortlist=settings.faq_shortlist,
        )
    options = LoadOptions(
        priorities=settings.priorities,
        has_business_hours=settings.business_hours is not None,
        has_faq=faq is not None,
        **queue_options(settings),
    )
    return load_rules(settings.rule_files(), options, version=version), faq


class Reloader:
    def __init__(self, engine: Engine, settings: AutoreplySettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or engine.settings
        self.version = engine.ruleset.version
        self.last_error: ConfigError | None = None
        self._lock = threading.Lock()  # one reload at a time (SIGHUP during a watch reload)

    def reload(self) -> bool:
        """Load all files again; swap them in if valid. Returns True when swapped."""
        with self._lock:
            try:
                ruleset, faq = load_state(self.settings, version=self.version + 1)
            except ConfigError as exc:
                self.last_error = exc
                log.error(
                    "autoreply: rules not reloaded, keeping version %d: %s", self.version, exc
                )
                return False
            self.version += 1
            self.engine.swap(ruleset, faq)
            self.last_error = None
            log.info(
                "autoreply: loaded version %d (%d rules, %d FAQ entries)",
                self.version,
                len(ruleset.rules),
                len(faq) if faq else 0,
            )
            return True

    def install_sighup(self, loop: asyncio.AbstractEventLoop) -> None:
        """`kill -HUP <pid>` reloads the rules (Unix only)."""
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def _patterns(self) -> list[str]:
        base = self.settings.base_dir
        return [
            p if os.path.isabs(p) else str(base / p)
            for p in (*self.settings.rules, *self.settings.faq)
        ]

    def _relevant(self, path: str) -> bool:
        full = os.path.abspath(path)
        return any(fnmatch.fnmatch(full, os.path.abspath(p)) for p in self._patterns())

    async def watch(
        self, stop_event: asyncio.Event | None = None, *, debounce_ms: int = 200
    ) -> None:
        """Reload whenever a configured rule/FAQ file changes, until `stop_event` is set."""
        from watchfiles import awatch

        parents = sorted({Path(p).parent for p in self._patterns()})
        existing = await asyncio.to_thread(lambda: [f for f in parents if f.is_dir()])
        folders = [str(f) for f in existing]
        if not folders:
            return
        async for changes in awatch(*folders, stop_event=stop_event, debounce=debounce_ms):
            if any(self._relevant(path) for _, path in changes):
                await asyncio.to_thread(self.reload)
