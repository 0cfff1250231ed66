"""Priority levels, most urgent first, and the one way to raise a priority (pure).

The levels are the config's (`[priorities].levels`, by default urgent, high, normal,
low). Raising goes one level towards the most urgent and stops there; a name that is not
a level counts as the least urgent, so raising it gives the level just above that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inbox.errors import ValidationError

__all__ = ["DEFAULT_LEVELS", "Priorities"]

DEFAULT_LEVELS = ("urgent", "high", "normal", "low")


@dataclass(frozen=True, slots=True)
class Priorities:
    levels: tuple[str, ...] = DEFAULT_LEVELS

    def __post_init__(self) -> None:
        if not self.levels or len(set(self.levels)) != len(self.levels):
            raise ValueError("priority levels must be a non-empty list of distinct names")

    @classmethod
    def of(cls, levels: Iterable[str]) -> Priorities:
        return cls(tuple(levels))

    def rank(self, priority: str) -> int:
        """0 for the most urgent; a name that is not a level ranks last."""
        try:
            return self.levels.index(priority)
        except ValueError:
            return len(self.levels) - 1

    def check(self, priority: object) -> str:
        """The priority if it is a level, else `ValidationError` naming the levels."""
        if isinstance(priority, str) and priority in self.levels:
            return priority
        raise ValidationError(
            f"'priority' must be one of {list(self.levels)}, got {priority!r}", field="priority"
        )

    def raised(self, priority: str) -> str:
        """One level more urgent (the most urgent stays where it is)."""
        return self.levels[max(self.rank(priority) - 1, 0)]

    def is_top(self, priority: str) -> bool:
        return self.rank(priority) == 0
