"""Routing benchmark: decisions per second of the pure router core.

    python bench/routing.py          # full: 1k/10k/100k waiting x 10/100/1,000 agents
    python bench/routing.py --quick  # same code paths, shorter timed loops (< 60 s)

Scenario, per cell: agents (skills drawn from 50 skill sets over 14 skills, chat capacity
3 and email capacity 10) are online and full; `waiting` conversations wait behind them.
Timed loop: one assigned conversation is resolved, which frees its agent, who pulls the
best conversation it can take (one decision), accepts it; a fresh conversation arrives
so the queue stays the same length. decisions/s counts the assignments made per second
of that loop (arrival and resolve included). The arrivals' priorities, channels and skill
sets and the choice of which conversation is resolved are drawn before the clock starts
(a pool of 65,536 draws, cycled): the loop times the router, not the random generator.
growth_1k_to_100k is the per-decision cost at 100k waiting divided by that at 1k (1,000
agents). Each cell runs in a fresh process (see measure_cell). On this 2-core VM the same
cell swings by +-15% from run to run even with the machine otherwise idle.

The timed loop runs with the garbage collector on, at the thresholds the router process
runs with (printed; Python's defaults), after gc.collect() + gc.freeze() as the service
does after its rebuild. It used to be switched off, which hid its cost: walking the
conversations each decision left behind took 10-20% of the CPU (more in wall-clock time:
cold memory), until the core started reusing resolved conversations' objects. Each cell
prints the collector's passes per generation during its timed loop, and beside the
wall-clock figure the decisions per CPU-second of this process; the load average is
printed: on a shared machine the wall-clock figure also measures the neighbours.

Through the service (`service_decisions_per_s`): the router service on a SQLite file with
its in-process bus. 20k conversations wait and 1,000 agents (chat capacity 10, skills
from the same 50 sets) come online at once: the burst of assignments it makes, each
persisted (conversation row + assignments row, batched per cycle) before it is announced.
Then steady state: rounds in which 500 assigned conversations are resolved and 500 new
ones queued (written to the database first, as ingest and the API do; not timed), the
events published, and the service runs until idle; decisions/s = assignments persisted
per second of that. The core alone on the same kind of load is printed beside it.

Last line: one JSON object (see /work/shared/BENCH.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# the repository root in place of bench/ (bench/email.py would shadow the stdlib's email)
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [str(Path(_HERE).parent)] + [p for p in sys.path if p != _HERE]

from inbox.bus.backends import MemoryBus  # noqa: E402
from inbox.events import Event, EventName  # noqa: E402
from inbox.store.backends import open_store  # noqa: E402
from inbox.store.migrate import upgrade  # noqa: E402
from inbox.types import Presence  # noqa: E402
from routing.core import Router  # noqa: E402
from routing.decisions import Assigned  # noqa: E402
from routing.service import RouterService  # noqa: E402
from routing.settings import QueueRules, RelaxStep, RoutingSettings  # noqa: E402

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
        own: set[str] = set()
        for s in rng.sample(sets, 4):
            own.update(s)
        router.upsert_agent(
            aid,
            # sorted: a set's order follows PYTHONHASHSEED, and so did each agent's levels
            # (the scenario changed from run to run, and decisions/s with it: 33k-51k)
            {s: rng.randint(1, 10) for s in sorted(own)},
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


def run(
    router: Router, assigned: list[int], rng: random.Random, seconds: float
) -> tuple[float, float, list[int]]:
    """Decisions per wall-clock second and per CPU-second of this process, and the
    collector's passes per generation during the timed loop."""
    sets = router._bench_sets  # type: ignore[attr-defined]
    cid = router._bench_next_id  # type: ignore[attr-defined]
    now = router._bench_now  # type: ignore[attr-defined]
    # the workload is drawn before the clock starts (a pool of draws, cycled): the loop
    # times the router's calls and the bookkeeping around them, not the random generator
    # (its draws were about a quarter of the loop's bytecodes)
    pool = 1 << 16
    arrivals = [
        (rng.choice(PRIORITIES), rng.choice(CHANNEL_MIX), rng.choice(sets)) for _ in range(pool)
    ]
    picks = [rng.random() for _ in range(pool)]
    mask = pool - 1
    n = 0
    decisions = 0
    # as the router service does after a rebuild: the build's garbage is not the loop's,
    # and the long-lived state is frozen out of the collector's full passes (the
    # collector stays on for everything the loop allocates)
    gc.collect()
    gc.freeze()
    passes = [g["collections"] for g in gc.get_stats()]
    start, cpu_start = time.perf_counter(), time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(200):
            if not assigned:
                break
            now += 0.001
            n += 1
            index = int(picks[n & mask] * len(assigned))
            done = assigned[index]
            assigned[index] = assigned[-1]
            assigned.pop()
            for d in router.resolve(done, now):
                if type(d) is Assigned:
                    decisions += 1
                    router.accept(d.conversation_id, now)
                    assigned.append(d.conversation_id)
            cid += 1
            priority, channel, skills = arrivals[n & mask]
            for d in router.enqueue(cid, now, priority=priority, channel=channel, skills=skills):
                if type(d) is Assigned:
                    decisions += 1
                    router.accept(d.conversation_id, now)
                    assigned.append(d.conversation_id)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds or time.perf_counter() > deadline:
            break
    cpu = time.process_time() - cpu_start
    passes = [g["collections"] - n for g, n in zip(gc.get_stats(), passes, strict=True)]
    gc.unfreeze()  # the next cell's build starts from a clean collector
    return decisions / elapsed, decisions / cpu, passes


def _ts(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).replace(tzinfo=None).isoformat(sep=" ")


def _seed(path: str, waiting: int, agents: int) -> tuple[list[tuple[str, ...]], int]:
    import sqlite3

    rng = random.Random(11)
    sets = skill_sets(rng)
    db = sqlite3.connect(path)
    now = time.time()
    db.execute("INSERT INTO contacts (id, attributes, tags, notes, created_at) "
               "VALUES (1, '{}', '[]', '', ?)", (_ts(now),))  # fmt: skip
    owned: list[set[str]] = []
    rows = []
    for n in range(1, agents + 1):
        own: set[str] = set()
        for chosen in rng.sample(sets, 4):
            own.update(chosen)
        owned.append(own)
        skills = json.dumps({s: rng.randint(1, 10) for s in sorted(own)})
        rows.append((n, f"a{n}", f"a{n}@bench.example", "agent", skills, '{"chat": 10}',
                     '["default"]', 1, "offline", _ts(now)))  # fmt: skip
    db.executemany(
        "INSERT INTO agents (id, name, email, role, skills, capacity, teams, active, presence,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    sets = [s for s in sets if any(set(s) <= own for own in owned)]
    _add_waiting(db, rng, sets, 1, waiting, now - waiting * 0.001)
    db.commit()
    db.close()
    return sets, waiting + 1


def _add_waiting(db, rng, sets, first: int, count: int, start: float) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for i in range(count):
        cid = first + i
        at = _ts(start + i * 0.001)
        rows.append((cid, 1, "chat", "default", "open", rng.choice(PRIORITIES),
                     json.dumps(list(rng.choice(sets))), f"t{cid}", "[]", at, at, at))  # fmt: skip
    db.executemany(
        "INSERT INTO conversations (id, contact_id, channel, inbox, status, priority,"
        " required_skills, token, tags, created_at, last_message_at, waiting_since)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


async def _service_run(quick: bool) -> tuple[float, float, int]:
    waiting, agents = (20_000, 1_000)
    rounds, per_round = (4, 500) if quick else (12, 500)
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/bench.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        sets, next_id = _seed(path, waiting, agents)
        store = open_store(url)
        bus = MemoryBus()
        service = RouterService(store, bus, settings())
        await service.start()
        await service.idle()
        import sqlite3

        db = sqlite3.connect(path, timeout=30)
        db.execute("UPDATE agents SET presence = 'online'")
        db.commit()
        # burst: every agent comes online and pulls up to its capacity
        start = time.perf_counter()
        for n in range(1, agents + 1):
            await bus.publish(Event(EventName.AGENT_PRESENCE, {"agent_id": n}))
        await bus.drain()
        await service.idle()
        burst_s = time.perf_counter() - start
        burst = service.assigned_total
        # steady state: resolve some, queue as many, let the service catch up
        rng = random.Random(5)
        timed = 0.0
        made = 0
        for _ in range(rounds):
            done = [r[0] for r in db.execute(
                "SELECT id FROM conversations WHERE assignee_id IS NOT NULL AND status = 'open'"
                " ORDER BY random() LIMIT ?", (per_round,))]  # fmt: skip
            marks = ",".join("?" * len(done))
            db.execute(f"UPDATE conversations SET status = 'resolved', assignee_id = NULL"
                       f" WHERE id IN ({marks})", done)  # fmt: skip
            _add_waiting(db, rng, sets, next_id, per_round, time.time())
            db.commit()
            fresh = range(next_id, next_id + per_round)
            next_id += per_round
            before = service.assigned_total
            start = time.perf_counter()
            for cid in done:
                await bus.publish(Event(EventName.CONVERSATION_RESOLVED, {"conversation_id": cid}))
            for cid in fresh:
                await bus.publish(Event(EventName.CONVERSATION_QUEUED, {"conversation_id": cid}))
            await bus.drain()
            await service.idle()
            timed += time.perf_counter() - start
            made += service.assigned_total - before
        db.close()
        await service.close()
        await bus.close()
        await store.close()
    return burst / burst_s, made / timed, burst


def cell_main(waiting: int, agents: int, seconds: float) -> None:
    """One cell in this process (see measure_cell): its figures as one JSON line."""
    router, assigned, rng = build(waiting, agents)
    rate, cpu_rate, passes = run(router, assigned, rng, seconds)
    figures = {
        "rate": rate,
        "cpu_rate": cpu_rate,
        "passes": passes,
        "waiting_at_end": router.waiting_count,
        "sets": len(router._bench_sets),  # type: ignore[attr-defined]
    }
    print(json.dumps(figures))


def measure_cell(waiting: int, agents: int, seconds: float) -> dict[str, Any]:
    """Each cell is built and timed in a process of its own, as the router service holds
    one router built once: run one after another in one process, the same cell measured
    33k-42k decisions/s behind earlier cells' freed memory, 45k-58k alone."""
    out = subprocess.run(
        [sys.executable, __file__, "--cell", str(waiting), str(agents), str(seconds)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--cell":
        cell_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    waiting_sizes = [1_000, 10_000, 100_000]
    agent_sizes = [10, 100, 1_000]
    seconds = 0.6 if args.quick else 3.0
    results: dict[tuple[int, int], float] = {}
    cpu_results: dict[tuple[int, int], float] = {}
    load_before = os.getloadavg()[0]
    print(f"load average (1 min) on {os.cpu_count()} CPUs: {load_before:.2f}")
    print(
        f"garbage collector on, thresholds {gc.get_threshold()}; collect + freeze before"
        " each timed loop, as the router service after its rebuild"
    )
    print(
        f"{'waiting':>9} {'agents':>7} {'decisions/s':>12} {'us/decision':>12}"
        f" {'per CPU-s':>10} {'waiting at end':>14} {'sets':>5} {'gc passes 0/1/2':>16}"
    )
    for waiting in waiting_sizes:
        for agents in agent_sizes:
            cell = measure_cell(waiting, agents, seconds)
            rate, cpu_rate = cell["rate"], cell["cpu_rate"]
            results[(waiting, agents)] = rate
            cpu_results[(waiting, agents)] = cpu_rate
            print(
                f"{waiting:>9,} {agents:>7,} {rate:>12,.0f} {1e6 / rate:>12.2f}"
                f" {cpu_rate:>10,.0f} {cell['waiting_at_end']:>14,} {cell['sets']:>5}"
                f" {'/'.join(map(str, cell['passes'])):>16}",
                flush=True,
            )
    growth = results[(1_000, 1_000)] / results[(100_000, 1_000)]
    cpu_growth = cpu_results[(1_000, 1_000)] / cpu_results[(100_000, 1_000)]
    print(
        f"growth of per-decision cost 1k -> 100k waiting (1,000 agents): {growth:.2f}x"
        f" (per CPU-second: {cpu_growth:.2f}x)"
    )
    burst_rate, steady_rate, burst = asyncio.run(_service_run(args.quick))
    print()
    print("through the service (SQLite, each assignment persisted before it is announced):")
    print(f"  burst: 1,000 agents online over 20,000 waiting: {burst:,} decisions,"
          f" {burst_rate:,.0f} decisions/s")  # fmt: skip
    print(f"  steady: resolve 500 + queue 500 per round: {steady_rate:,.0f} decisions/s")
    print(f"  core alone, 10k waiting x 1,000 agents: {results[(10_000, 1_000)]:,.0f} decisions/s")
    load_after = os.getloadavg()[0]
    print(f"load average (1 min): {load_before:.2f} at start, {load_after:.2f} at the end")
    print(
        json.dumps(
            {
                "decisions_per_s": round(results[(10_000, 1_000)]),
                "cpu_decisions_per_s": round(cpu_results[(10_000, 1_000)]),
                "growth_1k_to_100k": round(growth, 3),
                "cpu_growth_1k_to_100k": round(cpu_growth, 3),
                "service_decisions_per_s": round(steady_rate),
                "service_burst_decisions_per_s": round(burst_rate),
                "loadavg": [round(load_before, 2), round(load_after, 2)],
                "gc": True,
                "gc_thresholds": list(gc.get_threshold()),
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    main()
