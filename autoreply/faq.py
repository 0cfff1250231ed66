"""FAQ / knowledge base: entries with several phrasings and one answer, matched fuzzily.

The reference is a bare `rapidfuzz.process.extractOne(query, questions,
scorer=fuzz.token_set_ratio, score_cutoff=threshold)` over every phrasing; it costs
milliseconds at 2,000 entries. `FaqIndex` returns the same answer in microseconds by
narrowing first:

1. an inverted index from word pairs -> entries, with one-edit typo tolerance
   (SymSpell-style deletion keys), ranks entries by how many indexed pairs they share
   with the query and keeps the `shortlist` best;
2. the `scored` best of those go on; entries tied on shared pairs across that cut are
   ordered by an estimate of the score itself. For a phrasing B and the query A,
   `token_set_ratio` is at least ``2*s / (2*s + min(|A-B|, |B-A|) + 1)``, with s, |A-B|,
   |B-A| the lengths of the joined shared and unshared words. Per entry, s is taken over
   the words of all its phrasings (one AND + popcount of bitmasks in which each
   vocabulary word owns len(word)+1 bits) and its shortest phrasing stands for B;
3. rapidfuzz scores only the phrasings of those entries, with the same scorer and
   cut-off, in the same order as the full list, so ties break the same way.

Words in more than `common_df` of the entries ("how", "my", "the") do not nominate
candidates on their own; they still count in the estimate and in the rapidfuzz score.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, combinations
from operator import itemgetter
from pathlib import Path

from rapidfuzz import fuzz, process

from autoreply.fields import Table
from autoreply.text import normalize
from inbox.tomlpos import TomlSource


@dataclass(frozen=True, slots=True)
class FaqEntry:
    id: str
    questions: tuple[str, ...]
    answer: str
    tags: tuple[str, ...] = ()
    file: str = ""
    line: int | None = None


@dataclass(frozen=True, slots=True)
class FaqMatch:
    entry: FaqEntry
    question: str  # the phrasing that matched best
    score: float


def _deletes(word: str) -> list[str]:
    return [word[:i] + word[i + 1 :] for i in range(len(word))] if len(word) > 3 else []


_BY_COUNT = itemgetter(1)


@dataclass
class FaqIndex:
    """Fuzzy FAQ matcher; see the module docstring for how it narrows before scoring."""

    entries: Sequence[FaqEntry]
    threshold: float = 85.0
    shortlist: int = 16  # entries the word-pair index nominates for the score estimate
    scored: int = 3  # entries (best by the estimate) whose phrasings rapidfuzz scores
    common_df: float = 0.12  # words in more entries than this share never nominate
    pair_df: float = 0.03  # word pairs in more entries than this share are not indexed
    _questions: list[str] = field(default_factory=list, repr=False)
    _owner: list[int] = field(default_factory=list, repr=False)
    _by_entry: list[tuple[int, ...]] = field(default_factory=list, repr=False)
    _texts: list[tuple[str, ...]] = field(default_factory=list, repr=False)  # scored forms
    _masks: list[int] = field(default_factory=list, repr=False)  # words of each entry
    _sizes: list[int] = field(default_factory=list, repr=False)  # its shortest phrasing
    _bits: dict[str, int] = field(default_factory=dict, repr=False)
    _postings: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _pairs: dict[tuple[str, str], tuple[int, ...]] = field(default_factory=dict, repr=False)
    _near: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _common: frozenset[str] = field(default_factory=frozenset, repr=False)
    _rare: frozenset[str] = field(default_factory=frozenset, repr=False)

    def __post_init__(self) -> None:
        words_of: list[set[str]] = []
        for number, entry in enumerate(self.entries):
            own: list[int] = []
            words: set[str] = set()
            for question in entry.questions:
                norm = normalize(question)
                own.append(len(self._questions))
                self._questions.append(norm)
                self._owner.append(number)
                words.update(norm.split())
            self._by_entry.append(tuple(own))
            # token_set_ratio only sees the set of words: sorted unique words score the same
            # and save rapidfuzz some of its sorting
            self._texts.append(
                tuple(" ".join(sorted(set(self._questions[q].split()))) for q in own)
            )
            words_of.append(words)
        # each word owns len(word)+1 bits: popcount(query & phrasing) = joined shared length + 1
        offset = 0
        for word in sorted(set(chain.from_iterable(words_of))):
            self._bits[word] = ((1 << (len(word) + 1)) - 1) << offset
            offset += len(word) + 1
        for phrasings, words in zip(self._by_entry, words_of, strict=True):
            mask = 0
            for word in words:
                mask |= self._bits[word]
            self._masks.append(mask)
            self._sizes.append(min(_weight(set(self._questions[q].split())) for q in phrasings))
        postings: dict[str, list[int]] = {}
        for number, words in enumerate(words_of):
            for word in words:
                postings.setdefault(word, []).append(number)
        total = max(1, len(self.entries))
        self._common = frozenset(
            w for w, ids in postings.items() if len(ids) > max(2, self.common_df * total)
        )
        pairs: dict[tuple[str, str], list[int]] = {}
        for number, words in enumerate(words_of):
            for pair in combinations(sorted(words - self._common), 2):
                pairs.setdefault(pair, []).append(number)
        pair_limit = max(2, self.pair_df * total)
        self._pairs = {pair: tuple(ids) for pair, ids in pairs.items() if len(ids) <= pair_limit}
        self._rare = frozenset(postings) - self._common
        # a key -> the index words it stands for: itself if indexed, and every index word
        # one deletion turns into it (a query word's deletions are looked up here too)
        near: dict[str, set[str]] = {}
        for word, ids in postings.items():
            self._postings[word] = tuple(ids)
            near.setdefault(word, set()).add(word)
            for key in _deletes(word):
                near.setdefault(key, set()).add(word)
        self._near = {key: tuple(sorted(words)) for key, words in near.items()}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def questions(self) -> list[str]:
        """Normalized phrasings, in entry order (what the bare scan compares against)."""
        return self._questions

    def owner(self, question_index: int) -> FaqEntry:
        return self.entries[self._owner[question_index]]

    # -- candidates ---------------------------------------------------------------------
    def _known(self, word: str) -> set[str]:
        """Index words a query word stands for: itself, or its one-edit neighbours."""
        if word in self._postings:
            return {word}
        near = self._near
        found = set(near.get(word, ()))
        if len(word) > 3:
            for i in range(len(word)):
                hit = near.get(word[:i] + word[i + 1 :])
                if hit:
                    found.update(hit)
        return found

    def _nominated(self, words: set[str], count: int) -> list[tuple[int, int]]:
        """(entry number, shared pairs) of the `count` entries sharing most indexed pairs.

        Most shared first; ties keep the order the posting lists first name them in.
        """
        postings = self._postings
        rare = words & self._rare
        for word in words.difference(postings):
            rare |= self._known(word) & self._rare
        ordered = sorted(rare)
        lists = [ids for ids in map(self._pairs.get, combinations(ordered, 2)) if ids]
        if not lists:
            lists = [postings[w] for w in ordered]
        if not lists:
            near = {k for w in words for k in self._known(w) if k in self._common}
            if near:
                lists = [postings[min(sorted(near), key=lambda w: len(postings[w]))]]
        if len(lists) == 1:
            return [(n, 1) for n in lists[0][:count]]
        counts = Counter(chain.from_iterable(lists))
        if len(counts) > 64 * count:
            return heapq.nlargest(count, counts.items(), key=_BY_COUNT)
        return sorted(counts.items(), key=_BY_COUNT, reverse=True)[:count]

    def _best(self, words: set[str], count: int, keep: int) -> list[int]:
        """The `keep` best of `count` nominated entries by (shared pairs, estimated score).

        Only the entries tied on shared pairs across the cut need the estimate.
        """
        nominated = self._nominated(words, count)
        if len(nominated) <= keep:
            return [number for number, _ in nominated]
        edge = nominated[keep - 1][1]
        best = [number for number, shared in nominated if shared > edge]
        tied = [number for number, shared in nominated if shared == edge]
        if len(best) + len(tied) > keep:
            bits = self._bits
            mask = 0
            for word in words:
                mask |= bits.get(word, 0)
            weight = _weight(words)
            masks = self._masks
            sizes = self._sizes
            estimate: dict[int, float] = {}
            for number in tied:
                overlap = (mask & masks[number]).bit_count()
                size = sizes[number]
                # half of 2*s / (2*s + min(|A-B|, |B-A|) + 1), s = overlap - 1 (see above)
                estimate[number] = (
                    (overlap - 1) / (overlap - 2 + (weight if weight < size else size))
                    if overlap
                    else 0.0
                )
            tied.sort(key=estimate.__getitem__, reverse=True)
        best.extend(tied[: keep - len(best)])
        return best

    # -- matching -----------------------------------------------------------------------
    def match(self, text: str, threshold: float | None = None) -> FaqMatch | None:
        """The best entry scoring at least `threshold` (default: the index's), or None."""
        query = normalize(text)
        if not query:
            return None
        cutoff = self.threshold if threshold is None else threshold
        chosen = sorted(self._best(set(query.split()), self.shortlist, self.scored))
        if not chosen:
            return None
        texts = self._texts
        best = process.extractOne(
            query,
            list(chain.from_iterable(texts[n] for n in chosen)),
            scorer=fuzz.token_set_ratio,
            processor=None,
            score_cutoff=cutoff,
        )
        if best is None:
            return None
        _, score, position = best
        by_entry = self._by_entry
        for number in chosen:
            if position < len(by_entry[number]):
                question = self._questions[by_entry[number][position]]
                return FaqMatch(self.entries[number], question, float(score))
            position -= len(by_entry[number])
        raise AssertionError("rapidfuzz returned a position outside its choices")

    def suggest(self, text: str, k: int = 3, min_score: float = 50.0) -> list[FaqMatch]:
        """Up to `k` distinct entries for an agent to pick from, best first."""
        query = normalize(text)
        if not query:
            return []
        nominated = self._nominated(set(query.split()), max(self.shortlist, 4 * k))
        choices = {q: self._questions[q] for n, _ in sorted(nominated) for q in self._by_entry[n]}
        scored = process.extract(
            query,
            choices,
            scorer=fuzz.token_set_ratio,
            processor=None,
            score_cutoff=min_score,
            limit=None,
        )
        scored.sort(key=lambda item: (-item[1], item[2]))
        out: list[FaqMatch] = []
        seen: set[int] = set()
        for _, score, q in scored:
            owner = self._owner[q]
            if owner in seen:
                continue
            seen.add(owner)
            out.append(FaqMatch(self.entries[owner], self._questions[q], float(score)))
            if len(out) == k:
                break
        return out


def _weight(words: set[str]) -> int:
    """Length of the words joined by spaces, plus one (0 for no words)."""
    return sum(map(len, words)) + len(words)


# -- files --------------------------------------------------------------------------------

FAQ_KEYS = {"id", "questions", "answer", "tags"}


def load_faq_text(name: str, text: str) -> list[FaqEntry]:
    """Entries of one FAQ file:

    [[faq]]
    id = "shipping-time"
    questions = ["How long does shipping take?", "When will my order arrive?"]
    answer = "Orders ship within 24 hours and arrive in 2-5 business days."
    """
    source = TomlSource(name, text)
    data = source.parse()
    root = Table(data, (), source)
    root.reject_unknown({"faq"})
    raw = data.get("faq", [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise root.error("faq", "expected an array of tables", fix="write each entry under [[faq]]")
    entries: list[FaqEntry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        table = Table(item, ("faq", index), source)
        entry_id = table.str("id")
        table.label = f"faq {entry_id!r}: "
        table.reject_unknown(FAQ_KEYS)
        questions = table.str_list("questions")
        if not questions or not all(normalize(q) for q in questions):
            raise table.error(
                "questions",
                "needs at least one question with words in it",
                fix='questions = ["How do I ...?"]',
            )
        answer = table.str("answer").strip()
        if not answer:
            raise table.error("answer", "is empty", fix='answer = "..."')
        if entry_id in seen:
            raise table.error(
                "id",
                f"duplicate id (first used by entry {seen[entry_id] + 1})",
                fix="give each entry its own id",
            )
        seen[entry_id] = index
        entries.append(
            FaqEntry(
                entry_id,
                tuple(questions),
                answer,
                tuple(table.str_list("tags", [])),
                name,
                source.line_of(("faq", index)),
            )
        )
    return entries


def load_faq_files(paths: Sequence[str | Path]) -> list[FaqEntry]:
    from inbox.errors import ConfigError

    entries: list[FaqEntry] = []
    ids: dict[str, str] = {}
    for path in paths:
        name = str(path)
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read FAQ file: {exc.strerror}",
                file=name,
                fix="check the path in [autoreply] faq",
            ) from None
        for entry in load_faq_text(name, text):
            if entry.id in ids:
                raise ConfigError(
                    f"faq {entry.id!r}: id already used in {ids[entry.id]}",
                    file=name,
                    line=entry.line,
                    key="faq.id",
                    fix="give each entry its own id",
                )
            ids[entry.id] = name
            entries.append(entry)
    return entries
