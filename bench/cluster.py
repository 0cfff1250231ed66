"""One process against the local cluster, side by side in one run, on this machine.

    python bench/cluster.py            # 20 s of load, 40 visitors x 15 messages
    python bench/cluster.py --quick    # 5 s of load, 10 visitors x 5 messages (< 90 s)

single:  `omnidesk serve`: every role in one process, the embedded default (SQLite, no Redis).
cluster: scripts/cluster's shape: 2 web, 1 router, 2 workers, 1 smtp on PostgreSQL and
         Redis (omnidesk.cluster.Cluster), every process on this same 2-core machine.

Two figures for each:
- inbound messages/s: POST /api/v1/messages (each one committed before its 2xx), spread
  over every web process, from wrk when it is installed (one wrk per web process) or from
  an aiohttp client in a subprocess;
- customer-to-agent latency: chat visitors connected to the first web process, agents'
  workspace sockets to the last one (another process in the cluster); each conversation
  is assigned first, then every visitor message is timed from the visitor's send until the
  assigned agent's socket receives its notice (ingest, commit, bus, socket fan-out).

The machine is the limit here, not the design: six processes and the load generator
share two cores. The README's "Scaling past one machine" says what grows with machines.
Last line: JSON with single_msgs_per_s, cluster_msgs_per_s, single_p99_ms, cluster_p99_ms.
"""

# ruff: noqa: E402  (the import path is fixed before the imports)
from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import socketio

from bench._servers import ROOT, SECRET, free_port, wait_http
from inbox.store.databases import create_database, drop_database
from omnidesk.cluster import Cluster

ORIGIN = "http://bench.example"
PASSWORD = "bench password 123"
POSTGRES = os.environ.get("OMNIDESK_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")
REDIS = os.environ.get("OMNIDESK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
AGENTS = 4


def write_config(tmp: Path) -> Path:
    config = tmp / "config.toml"
    config.write_text(
        f'data_dir = "{tmp / "data"}"\nsecret_key = "{SECRET}"\n'
        f'[server]\nport = {free_port()}\nlog_level = "WARNING"\n'
        "[webchat]\nrate_limit = 100000\nmax_connections_per_ip = 100000\n"
        f'[webchat.widgets.bench]\nallowed_origins = ["{ORIGIN}"]\nprechat_fields = []\n'
    )
    return config


# -- what is measured ------------------------------------------------------------------------
@asynccontextmanager
async def single(tmp: Path) -> AsyncIterator[tuple[list[str], Any]]:
    """`omnidesk serve` on SQLite: (web URLs, run-an-omnidesk-command)."""
    config = write_config(tmp)
    env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
    env.pop("OMNIDESK_DATABASE_URL", None)
    env.pop("OMNIDESK_REDIS_URL", None)
    cli = [sys.executable, "-m", "omnidesk.cli", "--config", str(config)]

    def run(*args: str) -> str:
        return subprocess.run(
            [*cli, *args], env=env, check=True, capture_output=True, text=True, cwd=ROOT
        ).stdout

    run("migrate")
    port = re.search(r"port = (\d+)", config.read_text()).group(1)  # type: ignore[union-attr]
    proc = await asyncio.to_thread(start, [*cli, "serve"], env, tmp / "single.log")
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(wait_http, url + "/readyz")
        yield [url], run, f"sqlite:///{tmp / 'data' / 'omnidesk.db'}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=out)


@asynccontextmanager
async def cluster(tmp: Path) -> AsyncIterator[tuple[list[str], Any]]:
    """scripts/cluster's shape on a throwaway PostgreSQL database and a Redis database."""
    import redis

    config = write_config(tmp)
    name = f"omnidesk_bench_{uuid.uuid4().hex[:8]}"
    database_url = POSTGRES.rpartition("/")[0] + "/" + name
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    node = Cluster(
        config=str(config),
        database_url=database_url,
        redis_url=REDIS,
        secret_key=SECRET,
        log_dir=tmp / "logs",
        web_ports=(free_port(), free_port()),
    )
    await asyncio.to_thread(create_database, database_url)
    try:
        await asyncio.to_thread(node.prepare)
        await asyncio.to_thread(node.start)
        yield node.web_urls, node.run, database_url
    finally:
        await asyncio.to_thread(node.stop)
        client.flushdb()
        client.close()
        await asyncio.to_thread(drop_database, database_url)


async def untriaged(url: str) -> int:
    """Messages stored and not yet triaged (the auto-answer backlog)."""
    query = "SELECT count(*) FROM messages WHERE needs_triage"
    if url.startswith("sqlite:///"):
        import sqlite3

        def count() -> int:
            with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
                return int(conn.execute(query).fetchone()[0])

        return await asyncio.to_thread(count)
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


# -- inbound messages/s ----------------------------------------------------------------------
def load_wrk(urls: list[str], token: str, seconds: float, connections: int) -> dict[str, Any]:
    """One wrk per web process, in parallel; their requests and latencies pooled."""
    script = str(_HERE / "ingest_wrk.lua")
    per = max(connections // len(urls), 1)
    procs = [
        subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{per}",
                f"-d{max(int(seconds), 1)}s",
                "--timeout",
                "30s",
                "--latency",
                "-s",
                script,
                url,
                "--",
                f"c{n}-{uuid.uuid4().hex[:6]}",
                token,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n, url in enumerate(urls)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        line = next(x for x in out.splitlines() if x.startswith("WRK "))
        results.append(json.loads(line[4:]))
    failures = sum(r["errors"] + r["non2xx"] for r in results)
    if failures:
        raise RuntimeError(f"wrk saw {failures} failed requests: {results}")
    return {
        "per_s": sum(r["requests"] / r["seconds"] for r in results),
        "ack_p99_ms": max(r["p99_ms"] for r in results),
    }


PY_LOAD = """
import asyncio, json, sys, time, uuid
import aiohttp
urls, token = json.loads(sys.argv[1]), sys.argv[2]
seconds, conc = float(sys.argv[3]), int(sys.argv[4])
async def main():
    done, lat, tag = 0, [], uuid.uuid4().hex[:6]
    end = time.perf_counter() + seconds
    async def worker(n):
        nonlocal done
        i = 0
        async with aiohttp.ClientSession() as s:
            while time.perf_counter() < end:
                i += 1
                t = time.perf_counter()
                async with s.post(urls[n % len(urls)] + "/api/v1/messages",
                        json={"sender": f"b{i % 500}@example.com", "text": f"m {i}"},
                        headers={"Authorization": f"Bearer {token}",
                                 "Idempotency-Key": f"{tag}-{n}-{i}"}) as r:
                    await r.read()
                    if r.status >= 300:
                        raise SystemExit(f"status {r.status}")
                lat.append(time.perf_counter() - t)
                done += 1
    await asyncio.gather(*(worker(n) for n in range(conc)))
    lat.sort()
    print(json.dumps({"per_s": done / seconds, "ack_p99_ms": lat[int(len(lat) * 0.99)] * 1000}))
asyncio.run(main())
"""


def load_python(urls: list[str], token: str, seconds: float, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", PY_LOAD, json.dumps(urls), token, str(seconds), str(connections)],
        check=True, capture_output=True, text=True, timeout=seconds + 120,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- customer-to-agent latency ---------------------------------------------------------------
class Agent:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sio = socketio.AsyncClient(reconnection=False)
        self.mine: set[int] = set()  # conversations assigned to this agent
        # message id -> (conversation id, when its message.received notice arrived)
        self.notices: dict[int, tuple[int, float]] = {}
        self.sio.on("assigned", self._assigned, namespace="/agent")
        self.sio.on("event", self._event, namespace="/agent")

    async def _assigned(self, data: dict[str, Any]) -> None:
        self.mine.add(data["conversation_id"])

    async def _event(self, data: dict[str, Any]) -> None:
        now = time.perf_counter()
        if data.get("name") == "message.received":
            self.notices.setdefault(data["message_id"], (data["conversation_id"], now))

    def seen(self, message_id: int) -> float | None:
        """When this agent got the notice of a message in one of its conversations."""
        found = self.notices.get(message_id)
        return found[1] if found is not None and found[0] in self.mine else None

    async def sign_in(self, email: str) -> None:
        page = await (await self.http.get(self.base + "/login")).text()
        token = re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        resp = await self.http.post(
            self.base + "/login",
            data={"email": email, "password": PASSWORD, "login_csrf": token},
            allow_redirects=False,
        )
        cookie = resp.cookies["od_session"].value
        queue = await (await self.http.get(self.base + "/queue")).text()
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', queue).group(1)  # type: ignore[union-attr]
        async with self.http.post(
            self.base + "/agent/api/presence",
            json={"presence": "online"},
            headers={"X-CSRF-Token": csrf},
        ) as answer:
            assert answer.status < 300, await answer.text()
        await self.sio.connect(
            self.base,
            namespaces=["/agent"],
            headers={"Origin": self.base, "Cookie": f"od_session={cookie}"},
            transports=["websocket"],
            wait_timeout=10,
        )

    async def close(self) -> None:
        await self.sio.disconnect()
        await self.http.close()


async def latency(urls: list[str], visitors: int, messages: int) -> dict[str, Any]:
    agents = [Agent(urls[-1]) for _ in range(AGENTS)]
    for n, agent in enumerate(agents):
        await agent.sign_in(f"agent{n}@bench.test")
    clients = []
    for _ in range(visitors):
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(
            urls[0],
            namespaces=["/widget"],
            headers={"Origin": ORIGIN},
            auth={"widget": "bench"},
            transports=["websocket"],
            wait_timeout=10,
        )
        await client.call("hello", {"after": 0}, namespace="/widget", timeout=10)
        clients.append(client)
    sent: dict[int, float] = {}

    async def say(client: socketio.AsyncClient, text: str) -> int:
        start = time.perf_counter()
        answer = await client.call(
            "message",
            {"client_id": uuid.uuid4().hex[:16], "text": text},
            namespace="/widget",
            timeout=30,
        )
        assert answer["ok"], answer
        sent[answer["seq"]] = start
        return int(answer["seq"])

    try:
        firsts = await asyncio.gather(
            *(say(c, "hello, I need help with my order") for c in clients)
        )
        deadline = time.monotonic() + 60
        while True:  # until each visitor's conversation is assigned to one of the agents
            conversations = {a.notices[m][0] for a in agents for m in firsts if m in a.notices}
            if len(conversations) == visitors and conversations <= set().union(
                *(a.mine for a in agents)
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the visitors' conversations were not all assigned")
            await asyncio.sleep(0.05)
        sent.clear()

        async def talk(client: socketio.AsyncClient, n: int) -> None:
            await asyncio.sleep(n * 0.5 / visitors)  # spread the visitors over the interval
            for i in range(messages):
                await say(client, f"more details, part {i}")
                await asyncio.sleep(0.5)

        await asyncio.gather(*(talk(c, n) for n, c in enumerate(clients)))
        seen: dict[int, float] = {}
        deadline = time.monotonic() + 15  # stragglers count, however late
        while time.monotonic() < deadline:
            for m in sent:
                for agent in agents:
                    at = agent.seen(m)
                    if at is not None:
                        seen[m] = at
            if all(m in seen for m in sent):
                break
            await asyncio.sleep(0.1)
        delays = sorted((seen[m] - t) * 1000 for m, t in sent.items() if m in seen)
        return {
            "samples": len(delays),
            "missing": len(sent) - len(delays),
            "p50_ms": statistics.median(delays),
            "p99_ms": delays[min(int(len(delays) * 0.99), len(delays) - 1)],
        }
    finally:
        for client in clients:
            await client.disconnect()
        for agent in agents:
            await agent.close()


async def measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"omnidesk-bench-{kind}-") as tmp:
        setup = single if kind == "single" else cluster
        async with setup(Path(tmp)) as (urls, run, database_url):
            for n in range(AGENTS):
                run(
                    "agent", "add", "--name", f"Agent {n}", "--email", f"agent{n}@bench.test",
                    "--password", PASSWORD, "--skills", "english:9", "--capacity", "chat:100",
                )  # fmt: skip
            token = run("token", "create", "bench").strip()
            loader = load_wrk if shutil.which("wrk") and not args.python_client else load_python
            await asyncio.to_thread(loader, urls, token, 1, args.connections)  # warm-up
            inbound = await asyncio.to_thread(loader, urls, token, args.seconds, args.connections)
            # the inbound burst left a triage backlog: latency is measured once it is gone
            started = time.monotonic()
            while await untriaged(database_url):  # noqa: ASYNC110 (polls another process's work)
                await asyncio.sleep(0.25)
            drained = time.monotonic() - started
            lat = await latency(urls, args.visitors, args.messages)
            lat["drain_s"] = drained
            return {"processes": 1 if kind == "single" else 6, **inbound, **lat}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--visitors", type=int, default=None)
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--python-client", action="store_true")
    parser.add_argument("--only", choices=("single", "cluster"), default=None)
    args = parser.parse_args()
    args.seconds = args.seconds or (5 if args.quick else 20)
    args.visitors = args.visitors or (10 if args.quick else 40)
    args.messages = args.messages or (5 if args.quick else 15)

    kinds = ("single", "cluster") if args.only is None else (args.only,)
    results = {kind: asyncio.run(measure(kind, args)) for kind in kinds}
    generator = "wrk" if shutil.which("wrk") and not args.python_client else "aiohttp"
    print(
        f"inbound: {args.seconds:g} s of POST /api/v1/messages, {args.connections} connections "
        f"({generator}); latency: {args.visitors} visitors x {args.messages} messages, "
        f"{AGENTS} agents on the last web process"
    )
    print(
        f"{'':10}{'processes':>10}{'msgs/s':>10}{'ack p99':>10}{'drain':>8}{'c2a p50':>10}"
        f"{'c2a p99':>10}{'missing':>9}"
    )
    print(
        "(drain: time for the inbound burst's triage backlog to clear after the load stopped;"
        " c2a: customer-to-agent, from the visitor's send to the agent's socket notice,"
        " measured after the drain)"
    )
    for kind, r in results.items():
        print(
            f"{kind:10}{r['processes']:>10}{r['per_s']:>10.0f}{r['ack_p99_ms']:>8.1f}ms"
            f"{r['drain_s']:>7.1f}s{r['p50_ms']:>8.1f}ms{r['p99_ms']:>8.1f}ms{r['missing']:>9}"
        )
    if args.only is not None:
        return
    single_r, cluster_r = results["single"], results["cluster"]
    print(
        json.dumps(
            {
                "single_msgs_per_s": round(single_r["per_s"], 1),
                "cluster_msgs_per_s": round(cluster_r["per_s"], 1),
                "ratio": round(cluster_r["per_s"] / single_r["per_s"], 3),
                "single_p50_ms": round(single_r["p50_ms"], 2),
                "cluster_p50_ms": round(cluster_r["p50_ms"], 2),
                "single_p99_ms": round(single_r["p99_ms"], 2),
                "cluster_p99_ms": round(cluster_r["p99_ms"], 2),
                "single_missing_notices": single_r["missing"],
                "cluster_missing_notices": cluster_r["missing"],
            }
        )
    )


if __name__ == "__main__":
    main()
