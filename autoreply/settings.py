"""The `[autoreply]` config section, read once through `inbox.config.ConfigSection`."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from autoreply.hours import BusinessHours, read_business_hours
from inbox.config import DEFAULT_PRIORITIES, ConfigSection
from inbox.errors import ConfigError

HANDOFF_KEYWORDS = ("agent", "human", "person", "representative", "operator", "real person")


@dataclass(frozen=True, slots=True)
class AutoreplySettings:
    enabled: bool = True
    rules: tuple[str, ...] = ()  # globs, relative to base_dir
    faq: tuple[str, ...] = ()
    base_dir: Path = field(default_factory=Path.cwd)
    faq_threshold: float = 85.0
    faq_shortlist: int = 16  # entries the FAQ index nominates before rapidfuzz scores the best 3
    faq_fallback: bool = True
    handoff_keywords: tuple[str, ...] = HANDOFF_KEYWORDS
    handoff_max_words: int = 8
    handoff_priority: str | None = None
    handoff_hint: str = 'Reply "agent" at any time to reach a person.'
    brand: str = ""
    instance_id: str = "omnidesk"
    own_domains: tuple[str, ...] = ()
    per_contact_max: int = 3
    per_contact_window_seconds: int = 3600
    global_max_per_minute: int = 120
    breaker_cooldown_seconds: int = 300
    watch: bool = True
    business_hours: BusinessHours | None = None
    priorities: tuple[str, ...] = DEFAULT_PRIORITIES
    # the config's inboxes (they are also its teams), which `queue` and `assign_to` may
    # name; None: not known (a rule file checked on its own)
    inboxes: tuple[str, ...] | None = None

    def rule_files(self) -> list[str]:
        return expand(self.rules, self.base_dir, "rules")

    def faq_files(self) -> list[str]:
        return expand(self.faq, self.base_dir, "faq")


def expand(patterns: tuple[str, ...], base: Path, key: str) -> list[str]:
    """Files for globs in order (sorted within each glob, no duplicates)."""
    out: list[str] = []
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        found = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
        if not found or (not glob.has_magic(full) and not os.path.exists(full)):
            raise ConfigError(
                f"{pattern!r} matches no file",
                key=f"autoreply.{key}",
                fix=f"check the path (relative to {base})",
            )
        out.extend(f for f in found if f not in out)
    return out


def read_settings(
    section: ConfigSection,
    *,
    priorities: tuple[str, ...] = DEFAULT_PRIORITIES,
    base_dir: str | Path | None = None,
    inboxes: tuple[str, ...] | None = None,
) -> AutoreplySettings:
    """Validate `[autoreply]`; unknown keys are errors with a did-you-mean."""
    if base_dir is None:
        base_dir = (
            Path(section.file).resolve().parent if os.path.exists(section.file) else Path.cwd()
        )
    d = AutoreplySettings()
    handoff_priority = section.str("handoff_priority", None, choices=priorities)
    settings = AutoreplySettings(
        enabled=section.bool("enabled", d.enabled),
        rules=tuple(section.str_list("rules", [])),
        faq=tuple(section.str_list("faq", [])),
        base_dir=Path(base_dir),
        faq_threshold=section.float("faq_threshold", d.faq_threshold, min=0, max=100),
        faq_shortlist=section.int("faq_shortlist", d.faq_shortlist, min=1, max=500),
        faq_fallback=section.bool("faq_fallback", d.faq_fallback),
        handoff_keywords=tuple(section.str_list("handoff_keywords", list(d.handoff_keywords))),
        handoff_max_words=section.int("handoff_max_words", d.handoff_max_words, min=1, max=100),
        handoff_priority=handoff_priority,
        handoff_hint=section.str("handoff_hint", d.handoff_hint),
        brand=section.str("brand", d.brand),
        instance_id=section.str("instance_id", d.instance_id),
        own_domains=tuple(section.str_list("own_domains", [])),
        per_contact_max=section.int("per_contact_max", d.per_contact_max, min=0),
        per_contact_window_seconds=section.int(
            "per_contact_window_seconds", d.per_contact_window_seconds, min=1
        ),
        global_max_per_minute=section.int("global_max_per_minute", d.global_max_per_minute, min=0),
        breaker_cooldown_seconds=section.int(
            "breaker_cooldown_seconds", d.breaker_cooldown_seconds, min=0
        ),
        watch=section.bool("watch", d.watch),
        business_hours=read_business_hours(section.section("business_hours")),
        priorities=tuple(priorities),
        inboxes=inboxes,
    )
    if not settings.instance_id.strip():
        raise section.error("instance_id", "is empty", fix='instance_id = "support-eu-1"')
    section.reject_unknown()
    for key, patterns in (("rules", settings.rules), ("faq", settings.faq)):
        try:
            expand(patterns, settings.base_dir, key)
        except ConfigError as exc:
            raise section.error(key, exc.message, exc.fix) from None
    return settings
