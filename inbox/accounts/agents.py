"""Agents' settings as an admin types them. The agents themselves are stored by the agents
repository (`inbox.store.agents`: add, get, list, disable)."""

from __future__ import annotations

from inbox.errors import ValidationError

__all__ = ["parse_levels"]


def parse_levels(text: str, what: str) -> dict[str, int]:
    """ "billing:7,english:9,returns" -> {"billing": 7, "english": 9, "returns": 5}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, level = part.partition(":")
        if not name or len(name) > 64:
            raise ValidationError(f"bad {what} entry {part!r}", field=what)
        try:
            out[name] = int(level) if level else 5
        except ValueError:
            raise ValidationError(
                f"bad {what} level in {part!r}: expected a number", field=what
            ) from None
    return out
