"""Messages/s through POST /api/v1/messages to a durable commit (SQLite, WAL,
synchronous=FULL), beside a bare aiohttp JSON handler measured in the same run.

    python bench/ingest.py [--quick]

The last line is one JSON object: msgs_per_s, baseline_per_s, ratio, p50_ms, p99_ms.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds email.py (the email benchmark): it must not shadow the standard library
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import aiohttp  # noqa: E402

from bench._servers import bare_server, omnidesk_server  # noqa: E402


async def load(
    url: str, token: str | None, total: int, concurrency: int, tag: str
) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    counter = iter(range(total))
    errors = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for i in counter:
            body = {
                "sender": f"bench{i % 500}@example.com",
                "text": f"message {i} about my order",
                "subject": "Order",
            }
            start = time.perf_counter()
            async with session.post(
                url + "/api/v1/messages",
                json=body,
                headers={**headers, "Idempotency-Key": f"{tag}-{i}"},
            ) as resp:
                await resp.read()
                if resp.status >= 300:
                    errors += 1
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm up connections and code paths
        warm = iter(range(min(200, total)))
        counter, real = warm, counter
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        counter = real
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{errors} requests failed")
    return total / elapsed, latencies


def load_wrk(
    url: str, token: str | None, seconds: int, concurrency: int, tag: str
) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from wrk, a C load generator that leaves the CPU to the
    server being measured (a Python client takes about one of this machine's two cores)."""
    script = str(_HERE / "ingest_wrk.lua")
    cmd = [
        "wrk",
        "-t2",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        script,
        url,
        "--",
        tag,
        token or "",
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("WRK "))
    figures = json.loads(line[4:])
    if figures["errors"] or figures["non2xx"]:
        raise RuntimeError(f"wrk saw failures: {figures}")
    return figures["requests"] / figures["seconds"], figures["p50_ms"], figures["p99_ms"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--python-client", action="store_true", help="load with aiohttp even if wrk is installed"
    )
    args = parser.parse_args()
    total = 3000 if args.quick else 20000
    concurrency = 64
    rounds = 1 if args.quick else 3

    if shutil.which("wrk") and not args.python_client:
        seconds = 5 if args.quick else 15
        base_rates, ours, p50s, p99s = [], [], [], []
        for r in range(rounds):
            with bare_server() as url:
                load_wrk(url, None, 1, concurrency, f"bw{r}")  # warm-up
                base_rates.append(load_wrk(url, None, seconds, concurrency, f"b{r}")[0])
            with omnidesk_server() as (url, token):
                load_wrk(url, token, 1, concurrency, f"ow{r}")
                rate, p50, p99 = load_wrk(url, token, seconds, concurrency, f"o{r}")
                ours.append(rate)
                p50s.append(p50)
                p99s.append(p99)
        report(
            statistics.median(base_rates),
            statistics.median(ours),
            statistics.median(p50s),
            statistics.median(p99s),
            f"wrk, {seconds} s x {rounds} rounds, {concurrency} connections",
        )
        return

    base_rates, ours, lat = [], [], []
    for r in range(rounds):
        with bare_server() as url:
            rate, _ = asyncio.run(load(url, None, total, concurrency, f"b{r}"))
            base_rates.append(rate)
        with omnidesk_server() as (url, token):
            rate, latencies = asyncio.run(load(url, token, total, concurrency, f"o{r}"))
            ours.append(rate)
            lat += latencies
    report(
        statistics.median(base_rates),
        statistics.median(ours),
        pct(lat, 0.50),
        pct(lat, 0.99),
        f"Python client, {total} requests x {rounds} rounds, {concurrency} concurrent",
    )


def report(baseline: float, rate: float, p50: float, p99: float, how: str) -> None:
    result = {
        "msgs_per_s": round(rate, 1),
        "baseline_per_s": round(baseline, 1),
        "ratio": round(rate / baseline, 3),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
    }
    print(f"{'what':<44}{'per second':>12}")
    print(f"{'bare aiohttp JSON handler (baseline)':<44}{baseline:>12.0f}")
    print(f"{'omnidesk POST /api/v1/messages, committed':<44}{rate:>12.0f}")
    print(
        f"ratio {result['ratio']}  latency p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  ({how})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
