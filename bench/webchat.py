"""Web chat: visitor connections one server process holds, and the latency of a visitor's
message through the server to another socket in the conversation's room, under load.

Both are measured for omnidesk (`omnidesk serve`, /widget namespace, SQLite, ack after
commit) and for a baseline in the same run: a bare python-socketio server on aiohttp that
acks and relays without storing anything. Clients speak the engine.io/socket.io wire
protocol over raw aiohttp websockets (a python-socketio client per connection would cost
more than the server side we measure).

    python bench/webchat.py            # 10,000 connections
    python bench/webchat.py --quick    # 1,000 connections, < 60 s
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
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from bench._servers import ROOT, SECRET, free_port, wait_http

ORIGIN = "http://bench.example"
NS = "/widget"

BARE = """
import sys, secrets
import socketio
from aiohttp import web
sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
app = web.Application()
sio.attach(app)
tokens, seq = {}, [0]
class Widget(socketio.AsyncNamespace):
    async def on_connect(self, sid, environ, auth=None):
        token = (auth or {}).get("token") or secrets.token_urlsafe(16)
        tokens[sid] = token
        await self.enter_room(sid, token)
    async def on_disconnect(self, sid, reason=None):
        tokens.pop(sid, None)
    async def on_hello(self, sid, data=None):
        return {"ok": True, "token": tokens[sid], "messages": []}
    async def on_message(self, sid, data):
        seq[0] += 1
        payload = {"seq": seq[0], "text": data["text"]}
        await self.emit("message", payload, room=tokens[sid], skip_sid=sid)
        return {"ok": True, "seq": seq[0]}
sio.register_namespace(Widget("/widget"))
async def health(request):
    return web.Response(text="ok")
app.add_routes([web.get("/healthz", health)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE, str(port)], cwd=ROOT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


@contextmanager
def omnidesk_server() -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(
            f'data_dir = "{tmp}"\nsecret_key = "{SECRET}"\n'
            f'[server]\nport = {port}\nlog_level = "WARNING"\n'
            "[webchat]\nmax_connections_per_ip = 1000000\nrate_limit = 1000000\n"
            f'[webchat.widgets.bench]\nallowed_origins = ["{ORIGIN}"]\n'
        )
        env = {**os.environ, "OMNIDESK_SECRET_KEY": SECRET}
        cli = [sys.executable, "-m", "omnidesk.cli", "--config", str(cfg)]
        subprocess.run([*cli, "migrate"], check=True, env=env, capture_output=True, cwd=ROOT)
        proc = subprocess.Popen([*cli, "serve"], env=env, cwd=ROOT)
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz")
            yield f"127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            proc.wait(30)


class Conn:
    """One visitor socket speaking engine.io v4 / socket.io v5 by hand."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.next_id = 0
        self.on_message: Any = None
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, addr: str, auth: dict[str, Any]) -> Conn:
        ws = await session.ws_connect(
            f"ws://{addr}/socket.io/?EIO=4&transport=websocket",
            headers={"Origin": ORIGIN},
            heartbeat=None,
        )
        first = await ws.receive_str()
        assert first.startswith("0"), first
        await ws.send_str(f"40{NS}," + json.dumps(auth))
        answer = await ws.receive_str()
        if not answer.startswith(f"40{NS},"):
            raise RuntimeError(f"refused: {answer}")
        conn = cls(ws)
        conn.task = asyncio.create_task(conn._read())
        return conn

    async def _read(self) -> None:
        async for msg in self.ws:
            data = msg.data
            if data == "2":
                await self.ws.send_str("3")
            elif data.startswith(f"43{NS},"):
                body = data[len(NS) + 3 :]
                split = body.index("[")
                fut = self.acks.pop(int(body[:split]), None)
                if fut is not None and not fut.done():
                    fut.set_result(json.loads(body[split:])[0])
            elif data.startswith(f"42{NS},") and self.on_message is not None:
                name, payload = json.loads(data[len(NS) + 3 :])
                if name == "message":
                    self.on_message(payload)

    async def call(self, event: str, data: Any) -> Any:
        self.next_id += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[self.next_id] = fut
        await self.ws.send_str(f"42{NS},{self.next_id}" + json.dumps([event, data]))
        return await asyncio.wait_for(fut, 30)

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure(
    addr: str, pid: int, connections: int, active: int, messages: int
) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm = await Conn.open(session, addr, {"widget": "bench"})
        await warm.call("hello", {"after": 0})
        await asyncio.sleep(0.5)
        before = rss_kib(pid)
        idle: list[Conn] = []
        started = time.perf_counter()
        sem = asyncio.Semaphore(200)

        async def one() -> None:
            async with sem:
                idle.append(await Conn.open(session, addr, {"widget": "bench"}))

        await asyncio.gather(*(one() for _ in range(connections - 2 * active)))
        # active visitors: a sending socket and a second socket of the same visitor (the
        # "agent side": it is in the conversation's room and gets the message relayed)
        pairs = []
        for _ in range(active):
            sender = await Conn.open(session, addr, {"widget": "bench"})
            token = (await sender.call("hello", {"after": 0}))["token"]
            first = await sender.call("message", {"client_id": str(uuid.uuid4()), "text": "hello"})
            assert first["ok"], first
            other = await Conn.open(session, addr, {"widget": "bench", "token": token})
            await other.call("hello", {"after": 0})
            pairs.append((sender, other))
        connect_s = time.perf_counter() - started
        await asyncio.sleep(1.0)
        after = rss_kib(pid)
        held = len(idle) + 2 * len(pairs) + 1

        acks: list[float] = []
        relays: list[float] = []

        async def talk(sender: Conn, other: Conn) -> None:
            for n in range(messages):
                got = asyncio.get_running_loop().create_future()
                other.on_message = lambda m, f=got: f.done() or f.set_result(time.perf_counter())
                t0 = time.perf_counter()
                ack = await sender.call(
                    "message", {"client_id": str(uuid.uuid4()), "text": f"load {n}"}
                )
                acks.append((time.perf_counter() - t0) * 1000)
                assert ack["ok"], ack
                relays.append((await asyncio.wait_for(got, 30) - t0) * 1000)

        t_load = time.perf_counter()
        await asyncio.gather(*(talk(s, o) for s, o in pairs))
        load_s = time.perf_counter() - t_load
        for conn in [warm, *idle, *(c for p in pairs for c in p)]:
            await conn.close()
    return {
        "connections": held,
        "connect_s": connect_s,
        "kib_per_connection": (after - before) / held,
        "rss_mib": after / 1024,
        "ack_p50": pct(acks, 0.5),
        "ack_p99": pct(acks, 0.99),
        "p50_ms": pct(relays, 0.5),
        "p99_ms": pct(relays, 0.99),
        "msgs_per_s": len(relays) / load_s,
        "mean_ms": statistics.fmean(relays),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 connections, well under 60 s")
    parser.add_argument("--connections", type=int, default=None)
    args = parser.parse_args()
    connections = args.connections or (1000 if args.quick else 10_000)
    active, messages = (20, 20) if args.quick else (100, 30)
    limit = raise_nofile(connections * 2 + 1024)  # the servers inherit it
    if limit < connections + 512:
        print(f"open-file limit {limit} is too low for {connections} connections", file=sys.stderr)
        connections = limit - 512
    results = {}
    with bare_server() as (addr, pid):
        results["bare socket.io"] = asyncio.run(measure(addr, pid, connections, active, messages))
    with omnidesk_server() as (addr, pid):
        results["omnidesk"] = asyncio.run(measure(addr, pid, connections, active, messages))
    print(
        f"\n{'':16}{'conns':>8}{'connect s':>11}{'KiB/conn':>10}{'RSS MiB':>9}"
        f"{'ack p50':>9}{'ack p99':>9}{'relay p50':>11}{'relay p99':>11}{'msg/s':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:16}{r['connections']:>8}{r['connect_s']:>11.1f}{r['kib_per_connection']:>10.1f}"
            f"{r['rss_mib']:>9.0f}{r['ack_p50']:>9.1f}{r['ack_p99']:>9.1f}{r['p50_ms']:>11.1f}"
            f"{r['p99_ms']:>11.1f}{r['msgs_per_s']:>8.0f}"
        )
    print(
        f"({active} visitors talking, {messages} messages each, while the rest stay connected; "
        "relay = visitor message -> committed -> relayed to another socket in the room)"
    )
    ours, bare = results["omnidesk"], results["bare socket.io"]
    print(
        json.dumps(
            {
                "connections": ours["connections"],
                "kib_per_connection": round(ours["kib_per_connection"], 1),
                "p50_ms": round(ours["p50_ms"], 2),
                "p99_ms": round(ours["p99_ms"], 2),
                "ack_p50_ms": round(ours["ack_p50"], 2),
                "ack_p99_ms": round(ours["ack_p99"], 2),
                "baseline_kib_per_connection": round(bare["kib_per_connection"], 1),
                "baseline_p50_ms": round(bare["p50_ms"], 2),
                "baseline_p99_ms": round(bare["p99_ms"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
