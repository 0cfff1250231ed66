"""Routing benchmark: decisions per second of the pure router core.

    python bench/routing.py          # full: 1k/10k/100k waiting x 10/100/1,000 agents
    python bench/routing.py --quick  # same code paths, shorter timed loops (< 60 s)

Scenario, per cell: agents (skills drawn from 50 skill sets over 14 skills, chat capacity
3 and email capacity 10) are online and full; `waiting` conversations wait behind them.
Timed loop: one assigned conversation is resolved, which frees its agent, who pulls the
best conversation it can take (one decision), accepts it; a fresh conversation arrives
so the queue stays the same length. decisions/s counts the assignments made per second
of that loop (arrival and resolve included). growth_1k_to_100k is the per-decision cost
at 100k waiting divided by that at 1k (1,000 agents).

Last line: one JSON object (see /work/shared/BENCH.md).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inbox.types import Presence
from routing.core import Router
from routing.decisions import Assigned
from routing.settings import QueueRules, RelaxStep, RoutingSettings

SKILLS = [f"s{n:02d}" for n in range(14)]
PRIORITIES = ("urgent", "high", "normal", "low")
# arrivals by channel in proportion to capacity (chat 3, email 10), so that both
# channels stay loaded and the queue keeps its length
CHANNEL_MIX = ("chat",) * 3 + ("email",) * 10


def pick_channel(rng: random.Random) -> str:
    return rng.choice(CHANNEL_MIX)


def skill_sets(rng: random.Random, count: int = 50) -> list[tuple[str, ...]]:
    sets: set[tuple[str, ...]] = set()
    while len(sets) < count:
        size = rng.choice((1, 1, 2, 2, 3))
        sets.add(tuple(sorted(rng.sample(SKILLS, size))))
    return sorted(sets)


def settings() -> RoutingSettings:
    # relaxation and SLA are configured (their timers are scheduled per conversation) but
    # the timed loop never calls tick(), so they do not fire
    return RoutingSettings(
        queues={"default": QueueRules("default", (RelaxStep(300.0, any_agent=True),))},
        sla_seconds={"urgent": 60, "high": 300, "normal": 900, "low": 3600},
    )


def build(waiting: int, agents: int, seed: int = 7) -> tuple[Router, list[int], random.Random]:
    rng = random.Random(seed)
    sets = skill_sets(rng)
    router = Router(settings())
    now = 1_000_000.0
    for aid in range(agents):
        # every agent covers a few of the 50 skill sets, so each set has agents
        own = set()
        for s in rng.sample(sets, 4):
            own.update(s)
        router.upsert_agent(
            aid,
            {s: rng.randint(1, 10) for s in own},
            now,
            capacity={"chat": 3, "email": 10},
            presence=Presence.ONLINE,
        )
    # conversations ask only for skill sets some agent covers (relaxation would otherwise
    # rescue the rest after 300 s, but the timed loop does not advance that far)
    skillsets = [frozenset(a.skills) for a in router.agents()]
    sets = [s for s in sets if any(set(s) <= own for own in skillsets)]
    assigned: list[int] = []
    cid = itertools.count()
    # fill every agent, then leave `waiting` conversations in line
    for _ in range(agents * 13 + waiting):
        now += 0.001
        c = next(cid)
        out = router.enqueue(
            c,
            now,
            priority=rng.choice(PRIORITIES),
            channel=pick_channel(rng),
            skills=rng.choice(sets),
        )
        for d in out:
            if isinstance(d, Assigned):
                router.accept(d.conversation_id, now)
                assigned.append(d.conversation_id)
    while router.waiting_count < waiting:
        now += 0.001
        c = next(cid)
        router.enqueue(
            c,
            now,
            priority=rng.choice(PRIORITIES),
            channel=pick_channel(rng),
            skills=rng.choice(sets),
        )
    router._bench_next_id = next(cid)  # type: ignore[attr-defined]
    router._bench_now = now  # type: ignore[attr-defined]
    router._bench_sets = sets  # type: ignore[attr-defined]
    return router, assigned, rng


def run(router: Router, assigned: list[int], rng: random.Random, seconds: float) -> float:
    sets = router._bench_sets  # type: ignore[attr-defined]
    cid = router._bench_next_id  # type: ignore[attr-defined]
    now = router._bench_now  # type: ignore[attr-defined]
    choice, randrange = rng.choice, rng.randrange
    channels = CHANNEL_MIX
    decisions = 0
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(200):
                if not assigned:
                    break
                now += 0.001
                index = randrange(len(assigned))
                done = assigned[index]
                assigned[index] = assigned[-1]
                assigned.pop()
                for d in router.resolve(done, now):
                    if type(d) is Assigned:
                        decisions += 1
                        router.accept(d.conversation_id, now)
                        assigned.append(d.conversation_id)
                cid += 1
                for d in router.enqueue(
                    cid,
                    now,
                    priority=choice(PRIORITIES),
                    channel=choice(channels),
                    skills=choice(sets),
                ):
                    if type(d) is Assigned:
                        decisions += 1
                        router.accept(d.conversation_id, now)
                        assigned.append(d.conversation_id)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds or time.perf_counter() > deadline:
                break
    finally:
        gc.enable()
    return decisions / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    waiting_sizes = [1_000, 10_000, 100_000]
    agent_sizes = [10, 100, 1_000]
    seconds = 0.6 if args.quick else 3.0
    results: dict[tuple[int, int], float] = {}
    print(
        f"{'waiting':>9} {'agents':>7} {'decisions/s':>12} {'us/decision':>12}"
        f" {'waiting at end':>14} {'sets':>5}"
    )
    for waiting in waiting_sizes:
        for agents in agent_sizes:
            router, assigned, rng = build(waiting, agents)
            rate = run(router, assigned, rng, seconds)
            results[(waiting, agents)] = rate
            print(
                f"{waiting:>9,} {agents:>7,} {rate:>12,.0f} {1e6 / rate:>12.2f}"
                f" {router.waiting_count:>14,} {len(router._bench_sets):>5}",  # type: ignore[attr-defined]
                flush=True,
            )
            del router, assigned
            gc.collect()
    growth = results[(1_000, 1_000)] / results[(100_000, 1_000)]
    print(f"growth of per-decision cost 1k -> 100k waiting (1,000 agents): {growth:.2f}x")
    print(
        json.dumps(
            {
                "decisions_per_s": round(results[(10_000, 1_000)]),
                "growth_1k_to_100k": round(growth, 3),
                "service_decisions_per_s": None,
                "note": "service_decisions_per_s: the router service is not wired to the store yet",
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    main()
