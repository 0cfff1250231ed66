"""Auto-answer decision time with 200 rules and a 2,000-entry FAQ, beside a bare rapidfuzz scan.

    python bench/autoreply.py [--quick]

Measures `Engine.decide` per message (rules + FAQ fallback + template render) and, in the
same run, the baseline `rapidfuzz.process.extractOne(query, all_questions,
scorer=fuzz.token_set_ratio, score_cutoff=threshold)` over every normalized phrasing.
Agreement: the engine's FAQ answer equals the bare scan's (or both find none), over
labelled paraphrased queries (typos, reordered words, synonyms, fillers, unrelated).
The last line is JSON: median_us, p99_us, baseline_us, agreement, rules, faq.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import random
import statistics
import sys
import time
from pathlib import Path

# this script is named like the package it measures: put the repository first, not bench/
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]
_spec = importlib.util.spec_from_file_location("autoreply_data", HERE / "autoreply_data.py")
assert _spec and _spec.loader
_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_data)
make_faq, make_queries = _data.make_faq, _data.make_queries

from rapidfuzz import fuzz, process  # noqa: E402

from autoreply.engine import Engine  # noqa: E402
from autoreply.faq import FaqEntry, FaqIndex  # noqa: E402
from autoreply.loader import LoadOptions, load_rules_texts  # noqa: E402
from autoreply.settings import AutoreplySettings  # noqa: E402
from autoreply.text import normalize  # noqa: E402
from tests.autoreply.factories import NOON, incoming  # noqa: E402

WORDS = (
    "invoice refund chargeback cancel subscription password login outage down broken damaged "
    "late missing tracking parcel courier address upgrade downgrade contract lawyer complaint "
    "discount coupon voucher gift wholesale partnership press careers feedback survey bug crash "
    "slow error api webhook integration export import gdpr privacy delete account invoice vat"
).split()


def make_rules(count: int, seed: int = 3) -> str:
    """`count` realistic rules: keyword triage, a few regexes, hours, language, contact tags."""
    rng = random.Random(seed)
    parts = [
        '[templates.ack]\ntext = "Hi {{ contact.name }}, thanks: we got it. {{ handoff_hint }}"\n'
    ]
    for n in range(count):
        words = rng.sample(WORDS, 3)
        phrase = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
        kind = n % 10
        if kind == 0:
            when = f'channel = ["email", "form"], subject_any = {words!r}'
        elif kind == 1:
            digits = 4 + n % 3
            when = (
                f'text_regex = "(?i)(order|ticket) #?[0-9]{{{digits}}}", text_any = {words[:1]!r}'
            )
        elif kind == 2:
            when = f"text_all = {words[:2]!r}, first_message = true"
        elif kind == 3:
            when = f'business_hours = "outside", text_any = {[phrase]!r}'
        elif kind == 4:
            when = f'contact_tags_any = ["vip"], body_any = {words!r}'
        elif kind == 5:
            when = f'language = "fr", text_any = {words!r}'
        else:
            when = f"text_any = {[*words, phrase]!r}"
        level = rng.choice(["urgent", "high", "normal", "low"])
        then = f'tags = ["t{n}"], priority = "{level}", stop = false'
        if kind == 6:
            then += f', skills = ["{words[0]}"]'
        parts.append(
            f'[[rule]]\nname = "rule-{n}"\n'
            f"when = {{ {when.replace(chr(39), chr(34))} }}\nthen = {{ {then} }}\n"
        )
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller counts, under 60 s")
    args = parser.parse_args()
    n_queries = 300 if args.quick else 1000
    repeats = 3 if args.quick else 5

    faq_rows = make_faq(2000)
    entries = [FaqEntry(i, tuple(q), a) for i, q, a in faq_rows]
    t0 = time.perf_counter()
    index = FaqIndex(entries)
    build_s = time.perf_counter() - t0
    from autoreply.hours import BusinessHours

    settings = AutoreplySettings(
        per_contact_max=10**9,
        global_max_per_minute=10**9,
        business_hours=BusinessHours.always_open(),
    )
    t0 = time.perf_counter()
    ruleset = load_rules_texts(
        [("bench.toml", make_rules(200))], LoadOptions(has_business_hours=True, has_faq=True)
    )
    rules_s = time.perf_counter() - t0
    engine = Engine(settings, ruleset, index)

    queries = make_queries(faq_rows, n_queries)
    messages = [
        incoming(q, channel="chat", contact_id=i, tags=("vip",) if i % 7 == 0 else ())
        for i, (q, _) in enumerate(queries)
    ]
    for m in messages[:50]:
        m.decide(engine, NOON)  # warm-up
    gc.collect()
    gc.freeze()

    times: list[float] = []
    decisions = []
    for r in range(repeats):
        for m in messages:
            start = time.perf_counter()
            d = m.decide(engine, NOON)
            times.append(time.perf_counter() - start)
            if r == 0:
                decisions.append(d)

    base_times: list[float] = []
    base_ids: list[str | None] = []
    normalized = [normalize(q) for q, _ in queries]
    for q in normalized:
        start = time.perf_counter()
        best = process.extractOne(
            q, index.questions, scorer=fuzz.token_set_ratio, score_cutoff=index.threshold
        )
        base_times.append(time.perf_counter() - start)
        base_ids.append(index.owner(best[2]).id if best else None)

    mine = [d.extra.get("faq", {}).get("id") for d in decisions]
    agree = sum(a == b for a, b in zip(mine, base_ids, strict=True)) / len(queries)
    labels = [label for _, label in queries]
    acc_mine = sum(a == b for a, b in zip(mine, labels, strict=True)) / len(queries)
    acc_base = sum(a == b for a, b in zip(base_ids, labels, strict=True)) / len(queries)
    fired = statistics.mean(len(d.extra.get("matched", ())) for d in decisions)
    times.sort()
    median_us = statistics.median(times) * 1e6
    p99_us = times[int(0.99 * (len(times) - 1))] * 1e6
    baseline_us = statistics.median(base_times) * 1e6

    print(
        f"auto-reply decision: {len(ruleset.rules)} rules, {len(entries)} FAQ entries "
        f"({len(index.questions)} phrasings), {len(queries)} labelled queries x {repeats}"
    )
    print(
        f"  build: FAQ index {build_s * 1000:.0f} ms, rules {rules_s * 1000:.0f} ms; "
        f"rules fired per message: {fired:.1f}"
    )
    rows = [
        ("engine.decide (rules + FAQ + reply)", median_us, p99_us),
        (
            "bare extractOne token_set_ratio",
            baseline_us,
            sorted(base_times)[int(0.99 * (len(base_times) - 1))] * 1e6,
        ),
    ]
    print(f"  {'':40} {'median us':>10} {'p99 us':>10}")
    for name, med, p99 in rows:
        print(f"  {name:40} {med:10.1f} {p99:10.1f}")
    print(f"  speed-up (baseline / engine median): {baseline_us / median_us:.1f}x")
    print(
        f"  agreement with bare scan: {agree:.4f}   "
        f"accuracy vs labels: engine {acc_mine:.3f}, bare {acc_base:.3f}"
    )
    print(
        json.dumps(
            {
                "median_us": round(median_us, 1),
                "p99_us": round(p99_us, 1),
                "baseline_us": round(baseline_us, 1),
                "agreement": round(agree, 4),
                "rules": len(ruleset.rules),
                "faq": len(entries),
            }
        )
    )


if __name__ == "__main__":
    main()
