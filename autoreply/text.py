"""Text normalization shared by keyword rules, the FAQ index and language detection.

Everything compares *normalized* text: accents stripped (NFKD, combining marks dropped),
case folded, and split into word tokens. Phrases are matched as whole token sequences,
so "order" matches "Order #123" but not "reorder".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"\w+")
_NON_WORD = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Lower-case, accent-free form of `text` (``"Rémboursement"`` -> ``"remboursement"``)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


def tokens(text: str) -> list[str]:
    """Word tokens of the folded text."""
    return _WORD.findall(fold(text))


def normalize(text: str) -> str:
    """Folded text with punctuation collapsed to single spaces (FAQ questions and queries)."""
    return _NON_WORD.sub(" ", fold(text)).strip()


def phrase_key(phrase: str) -> tuple[str, ...]:
    """The token sequence a rule phrase matches."""
    return tuple(tokens(phrase))


class PhraseIndex:
    """One lookup for every keyword/phrase of every rule (compiled once per ruleset).

    `add` returns a small integer id per distinct phrase; `find` returns the ids of all
    phrases occurring in a token list, scanning the text once whatever the number of rules.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[str, ...], int] = {}
        self._by_first: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        self.phrases: list[str] = []

    def add(self, phrase: str) -> int:
        key = phrase_key(phrase)
        if not key:
            raise ValueError("a phrase needs at least one letter or digit")
        found = self._ids.get(key)
        if found is not None:
            return found
        pid = len(self.phrases)
        self._ids[key] = pid
        self.phrases.append(" ".join(key))
        self._by_first.setdefault(key[0], []).append((key, pid))
        return pid

    def find(self, words: Sequence[str]) -> set[int]:
        hits: set[int] = set()
        by_first = self._by_first
        count = len(words)
        for i, word in enumerate(words):
            entries = by_first.get(word)
            if entries is None:
                continue
            for key, pid in entries:
                size = len(key)
                if size == 1 or (i + size <= count and tuple(words[i : i + size]) == key):
                    hits.add(pid)
        return hits

    def names(self, ids: Iterable[int]) -> list[str]:
        return [self.phrases[i] for i in sorted(ids)]
