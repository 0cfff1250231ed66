"""Validate every package's config section at once (for `omnidesk config check`)."""

from __future__ import annotations

from inbox.config import Config


def check_sections(config: Config) -> None:
    """Raise ConfigError for the first bad section. Packages add their readers here."""
    return None
