"""Messages/s through POST /api/v1/messages to a durable commit (SQLite, WAL,
synchronous=FULL), beside a bare aiohttp JSON handler measured in the same run.

    python bench/ingest.py [--quick] [--python-client] [--no-all-in-one]

What runs where (each server is its own process; the load generator is another):

* baseline: a bare aiohttp handler that parses the JSON body and answers 201.
* omnidesk, the headline figure: `omnidesk serve --role web`, the process that
  acknowledges messages in a deployment (Procfile `web`): HTTP, token check, validation,
  ingest committed on SQLite (group commit), message.received published on the bus, and
  201 only after the commit. It does NOT triage: the `worker` role does.
* triage, measured afterwards so the whole path is reported: `omnidesk serve --role
  worker` started on the same database takes the untriaged backlog (pipeline.recover(),
  by the needs_triage flag) and the messages it triages per second are printed.
* all-in-one (second line, unless --no-all-in-one): `omnidesk serve`, every role in one
  process (HTTP + ingest + triage pipeline + router + outbox), the embedded default,
  under the same load, with the triage backlog it still had when the load stopped.

The last line is one JSON object: msgs_per_s, baseline_per_s, ratio, p50_ms, p99_ms (the
`web` role), triage_per_s, and all_in_one_* for the embedded process.
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

from bench._servers import Omnidesk, bare_server, omnidesk_process  # noqa: E402


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
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK "))
    figures = json.loads(line[4:])
    if figures["errors"] or figures["non2xx"]:
        raise RuntimeError(f"wrk saw failures: {figures}")
    return figures["requests"] / figures["seconds"], figures["p50_ms"], figures["p99_ms"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000


def wait_backlog(od: Omnidesk, seconds: float = 60) -> int:
    """The untriaged messages once the process has settled after the load (the embedded
    pipeline may still be catching up): waits until the count stops falling."""
    deadline = time.monotonic() + seconds
    last = od.untriaged()
    while time.monotonic() < deadline and last:
        time.sleep(0.5)
        now = od.untriaged()
        if now == last:
            break
        last = now
    return last


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--python-client", action="store_true", help="load with aiohttp even if wrk is installed"
    )
    parser.add_argument(
        "--no-all-in-one", action="store_true", help="skip the all-in-one `omnidesk serve` line"
    )
    args = parser.parse_args()
    total = 3000 if args.quick else 20000
    concurrency = 64
    rounds = 1 if args.quick else 3
    use_wrk = bool(shutil.which("wrk")) and not args.python_client
    seconds = 5 if args.quick else 15

    def measure(url: str, token: str | None, tag: str) -> tuple[float, float, float]:
        """(requests/s, p50 ms, p99 ms) under the chosen load generator."""
        if use_wrk:
            load_wrk(url, token, 1, concurrency, tag + "w")  # warm-up
            return load_wrk(url, token, seconds, concurrency, tag)
        rate, latencies = asyncio.run(load(url, token, total, concurrency, tag))
        return rate, pct(latencies, 0.50), pct(latencies, 0.99)

    base, web, allin = [], [], []
    drains: list[tuple[int, float]] = []
    backlogs: list[int] = []
    for r in range(rounds):
        with bare_server() as url:
            base.append(measure(url, None, f"b{r}")[0])
        with omnidesk_process(role="web") as od:
            web.append(measure(od.url, od.token, f"o{r}"))
            drains.append(od.drain_triage())
        if not args.no_all_in_one:
            with omnidesk_process(role="all") as od:
                allin.append(measure(od.url, od.token, f"a{r}"))
                backlogs.append(wait_backlog(od))
    how = (
        f"wrk, {seconds} s x {rounds} rounds, {concurrency} connections"
        if use_wrk
        else f"Python client, {total} requests x {rounds} rounds, {concurrency} concurrent"
    )
    report(base, web, drains, allin, backlogs, how)


def report(
    base: list[float],
    web: list[tuple[float, float, float]],
    drains: list[tuple[int, float]],
    allin: list[tuple[float, float, float]],
    backlogs: list[int],
    how: str,
) -> None:
    med = statistics.median
    baseline = med(base)
    rate, p50, p99 = (med(x[i] for x in web) for i in range(3))
    triage_rate = med(n / s for n, s in drains if s) if any(s for _, s in drains) else 0.0
    result: dict[str, float | str] = {
        "msgs_per_s": round(rate, 1),
        "baseline_per_s": round(baseline, 1),
        "ratio": round(rate / baseline, 3),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "role": "web",
        "triage_per_s": round(triage_rate, 1),
    }
    print(f"{'what (median of rounds)':<58}{'per second':>12}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'bare aiohttp JSON handler (baseline)':<58}{baseline:>12.0f}")
    print(
        f"{'omnidesk --role web: POST, committed (no triage)':<58}"
        f"{rate:>12.0f}{p50:>9.1f}{p99:>9.1f}"
    )
    print(f"{'  then --role worker triages that backlog':<58}{triage_rate:>12.0f}")
    if allin:
        a_rate, a_p50, a_p99 = (med(x[i] for x in allin) for i in range(3))
        result.update(
            all_in_one_msgs_per_s=round(a_rate, 1),
            all_in_one_ratio=round(a_rate / baseline, 3),
            all_in_one_p50_ms=round(a_p50, 2),
            all_in_one_p99_ms=round(a_p99, 2),
            all_in_one_backlog=med(backlogs),
        )
        label = "all-in-one `omnidesk serve` (ingest + triage in-process)"
        print(f"{label:<58}{a_rate:>12.0f}{a_p50:>9.1f}{a_p99:>9.1f}")
        print(f"  untriaged when the load stopped and the process settled: {med(backlogs):.0f}")
    per_round = ", ".join(f"{w[0] / b:.2f}" for w, b in zip(web, base, strict=True))
    print(f"ratio (web role) {result['ratio']}  per round {per_round}  ({how})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
