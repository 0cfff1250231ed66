"""Sign-in under load: how fast `/healthz` answers while many agents sign in at once, and
what a burst of wrong passwords on one account costs.

One `omnidesk serve` process (SQLite) behind a pretend trusted proxy (127.0.0.1, each
sign-in names its own client in X-Forwarded-For). The baseline, in the same run, is the
same server's `/healthz` while idle. Phases:

1. idle: `/healthz` latency (the baseline);
2. load: N parallel correct sign-ins from N addresses, `/healthz` sampled meanwhile on a
   connection of its own; sign-ins beyond the password checks allowed to wait get 503;
3. attack: N parallel wrong passwords on one account from one address (each 401 is one
   argon2 check; the rest should be 429), then the owner from another address.

    python bench/signin.py            # 300 parallel sign-ins
    python bench/signin.py --quick    # 100, < 60 s
"""

# ruff: noqa: E402  (the import path is fixed before the imports)
from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds email.py (the email benchmark): it must not shadow the standard library
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import json
import subprocess
import time
from collections import Counter
from typing import Any

import aiohttp

from bench._servers import ROOT, omnidesk_process

EMAIL = "bench@agents.example"
PASSWORD = "bench password 0123"
TOKEN = "t" * 32  # the sign-in form's double-submit token (cookie and field agree)
CONFIG = '[agent_ui]\ntrusted_proxies = ["127.0.0.1"]\n'


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def sign_in(session: aiohttp.ClientSession, url: str, password: str, client: str) -> int:
    async with session.post(
        url + "/login",
        data={"email": EMAIL, "password": password, "login_csrf": TOKEN},
        headers={"Cookie": f"od_login_csrf={TOKEN}", "X-Forwarded-For": client},
        allow_redirects=False,
    ) as resp:
        await resp.read()
        return resp.status


async def sample_healthz(url: str, until: asyncio.Future[Any] | None, count: int) -> list[float]:
    """`/healthz` round trips (seconds), one at a time on one connection of its own."""
    samples: list[float] = []
    async with aiohttp.ClientSession() as probe:
        while len(samples) < count or (until is not None and not until.done()):
            start = time.perf_counter()
            async with probe.get(url + "/healthz") as resp:
                await resp.read()
            samples.append(time.perf_counter() - start)
            await asyncio.sleep(0.005)
    return samples


async def burst(url: str, n: int, password: str, clients: list[str]) -> Counter[int]:
    connector = aiohttp.TCPConnector(limit=n)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        statuses = await asyncio.gather(
            *(sign_in(session, url, password, clients[i % len(clients)]) for i in range(n))
        )
    return Counter(statuses)


async def run(url: str, n: int, cpu: Any) -> dict[str, Any]:
    idle = await sample_healthz(url, None, 200)

    cpu_before = cpu()
    started = time.perf_counter()
    logins = asyncio.ensure_future(
        burst(url, n, PASSWORD, [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(n)])
    )
    loaded = await sample_healthz(url, logins, 20)
    load = await logins
    load_seconds = time.perf_counter() - started
    load_cpu = cpu() - cpu_before

    attack = await burst(url, n, "wrong password", ["203.0.113.7"])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        owner = await sign_in(session, url, PASSWORD, "198.51.100.4")
    checked = load.get(303, 0) + load.get(401, 0)
    return {
        "signins": n,
        "healthz_p50_ms": round(pct(loaded, 0.5), 2),
        "healthz_p99_ms": round(pct(loaded, 0.99), 2),
        "healthz_max_ms": round(max(loaded) * 1000, 2),
        "baseline_p50_ms": round(pct(idle, 0.5), 2),
        "baseline_p99_ms": round(pct(idle, 0.99), 2),
        "signed_in": load.get(303, 0),
        "busy": load.get(503, 0),
        "load_seconds": round(load_seconds, 2),
        "cpu_ms_per_check": round(load_cpu * 1000 / max(checked, 1), 1),
        "attack_checked": attack.get(401, 0),
        "attack_throttled": attack.get(429, 0),
        "owner_status": owner,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 sign-ins, < 60 s")
    parser.add_argument("-n", type=int, help="parallel sign-ins (default 300, quick 100)")
    args = parser.parse_args()
    n = args.n or (100 if args.quick else 300)
    with omnidesk_process(CONFIG) as od:
        subprocess.run(
            [*od.cli, "agent", "add", "--name", "Bench", "--email", EMAIL, "--password", PASSWORD],
            check=True,
            env=od.env,
            capture_output=True,
            cwd=ROOT,
        )
        figures = asyncio.run(run(od.url, n, od.cpu_seconds))
    f = figures
    print(f"{'':34}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'/healthz, idle (baseline)':34}{f['baseline_p50_ms']:>10}{f['baseline_p99_ms']:>10}")
    print(
        f"{f'/healthz, {n} parallel sign-ins':34}{f['healthz_p50_ms']:>10}{f['healthz_p99_ms']:>10}"
    )
    print(
        f"sign-ins: {f['signed_in']} signed in, {f['busy']} answered busy (503) in "
        f"{f['load_seconds']} s; server CPU {f['cpu_ms_per_check']} ms per password check"
    )
    print(
        f"{n} parallel wrong passwords: {f['attack_checked']} checked, "
        f"{f['attack_throttled']} throttled; owner from another address: {f['owner_status']}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
