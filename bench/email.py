"""Inbound SMTP throughput: our listener (parse + attachment store + ingest) beside a bare
aiosmtpd handler that keeps the same messages in memory, measured in the same run.

    python bench/email.py [--quick] [--messages N] [--clients K] [--rounds R]
                          [--ingest embedded | memory | package.module:factory]

What runs where: both SMTP servers run in this process, one at a time under load; the load
generator is a subprocess (this script with --client) holding K persistent aiosmtplib
connections to 127.0.0.1. Each round sends N messages to the baseline and then to our
listener; the medians of each side and of the paired per-round ratios are reported.

K is 20 by default, for both sides: a sending MTA delivers a queue for one destination
over parallel connections (Postfix's default_destination_concurrency_limit is 20), and
since each connection waits for its 250, which we give only after the commit, K bounds
how many messages one group commit (one fsync) can hold. With K=4 a group holds at most
4, and the fsync, not the listener, sets the pace; `--clients 4` measures that shape.

* baseline: aiosmtpd with a handler that appends each message's bytes to a list.
* ours, by default, the `smtp` role as deployed (Procfile `smtp`): omnidesk's SMTPListener
  (MIME parsing, attachments to the file store) and its committing ingest on SQLite (WAL,
  synchronous=FULL, group commit), 250 only after the commit, message.received published
  on the bus; NO triage pipeline in this process (the `worker` role triages). Afterwards,
  so the whole path is reported, a pipeline as the worker runs it (pipeline.recover(), by
  the needs_triage flag) triages the stored backlog and the messages triaged per second
  are printed (bench._servers:committing_ingest).
* `--ingest embedded`: the all-in-one shape, the triage pipeline in the same process as
  the listener and ingest, as `omnidesk serve` runs them (bench._servers:embedded_ingest).
* `--ingest memory`: messages kept in memory instead, to see the listener and parser alone.
* `--ingest package.module:factory`: an async factory returning (ingest, async close).

Each side's CPU per message is printed too: the CPU time of this process (all threads,
so the SQLite writer's too; not the load generator's) over the round, per message. On a
shared machine msg/s swings with the neighbours' load; CPU per message much less, and
baseline CPU / our CPU is the ratio the two would reach when CPU-bound.

Last line: JSON with msgs_per_s, baseline_per_s, ratio, baseline_cpu_us, cpu_us,
cpu_ratio, ingest (which shape), clients, and the triage drain figures (triage_backlog,
triage_seconds, triage_per_s) when there are any.
"""

# ruff: noqa: E402  (the import path is fixed before the imports, see below)
from __future__ import annotations

import sys
from pathlib import Path

# This file is named email.py: drop its folder from the import path before anything
# imports the standard library's `email` package, and put the project root there.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import asyncio
import contextlib
import gc
import importlib
import itertools
import json
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bench._servers import helper_pids, process_cpu_seconds
from channels.email.files import MemoryAttachmentStore
from channels.email.parse import ParseOptions
from channels.email.settings import SMTPSettings
from channels.email.smtp_server import SMTPListener
from inbox.types import InboundMessage, IngestResult

DOMAIN = "support.example.com"
RCPT = f"support@{DOMAIN}"
SECRET = "bench-secret-0123456789abcdef"

IngestFactory = Callable[[], Awaitable[tuple[Any, Callable[[], Awaitable[Any]]]]]


# --- the messages (built identically in the client process) ----------------------------


def build_message(round_id: int, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n % 500}@example.org>"
    msg["To"] = RCPT
    msg["Subject"] = f"Order {n}: question about delivery"
    msg["Message-ID"] = f"<bench-{round_id}-{n}@example.org>"
    body = (
        f"Hello,\n\nmy order {n} has not arrived yet. Could you check the status?\n\n"
        "Thanks,\nA customer\n\nOn Mon, 1 Jan 2024 at 10:00, Support <support@x> wrote:\n"
        "> We shipped it yesterday.\n"
    )
    msg.set_content(body)
    kind = n % 4
    if kind in (1, 2):
        msg.add_alternative(
            f"<p>Hello,</p><p>my order <b>{n}</b> has not arrived yet.</p>"
            "<blockquote>We shipped it yesterday.</blockquote>",
            subtype="html",
        )
    if kind == 2:
        msg.add_attachment(
            b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
            maintype="image",
            subtype="png",
            filename="photo.png",
        )
    return msg.as_bytes()


# --- servers ----------------------------------------------------------------------------


class BareHandler:
    """The baseline: aiosmtpd storing each message's bytes in memory."""

    def __init__(self) -> None:
        self.stored: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.stored.append(envelope.content if isinstance(envelope.content, bytes) else b"")
        return "250 OK"


class MemoryIngest:
    def __init__(self) -> None:
        self.seen: dict[str, IngestResult] = {}
        self.ids = itertools.count(1)

    async def __call__(
        self, msg: InboundMessage, *, cursor: tuple[str, str] | None = None
    ) -> IngestResult:
        first = self.seen.get(msg.external_id)
        if first is not None:
            return IngestResult(first.message_id, first.conversation_id, first.contact_id, True)
        result = IngestResult(next(self.ids), 1, 1)
        self.seen[msg.external_id] = result
        return result


async def memory_factory() -> tuple[MemoryIngest, Callable[[], Awaitable[None]]]:
    async def close() -> None:
        return None

    return MemoryIngest(), close


def load_factory(spec: str | None) -> IngestFactory:
    if spec == "memory":
        return memory_factory
    if spec == "embedded":
        spec = "bench._servers:embedded_ingest"
    if not spec:
        spec = "bench._servers:committing_ingest"
    module, _, name = spec.partition(":")
    factory = getattr(importlib.import_module(module), name or "factory")
    return factory  # type: ignore[no-any-return]


# --- load generator (subprocess) --------------------------------------------------------


async def client_main(port: int, round_id: int, count: int, conns: int) -> None:
    import aiosmtplib

    messages = [build_message(round_id, n) for n in range(count)]
    shares = [messages[i::conns] for i in range(conns)]
    failures = 0

    async def worker(share: list[bytes]) -> None:
        nonlocal failures
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60) as smtp:
            for raw in share:
                try:
                    await smtp.sendmail("customer@example.org", [RCPT], raw)
                except aiosmtplib.SMTPException:
                    failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(share) for share in shares))
    elapsed = time.perf_counter() - started
    print(json.dumps({"elapsed": elapsed, "sent": count - failures, "failures": failures}))


def cpu_seconds(helpers: list[int]) -> float:
    """CPU time of this process, every thread, plus the processes working for it (the
    SQLite writer process); not the load generator's."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    for pid in helpers:
        with contextlib.suppress(OSError):  # (gone: restarted after a crash)
            total += process_cpu_seconds(pid)
    return total


async def drive(
    port: int, round_id: int, count: int, conns: int, helpers: list[int] | None = None
) -> dict[str, Any]:
    helpers = helpers or []
    started = cpu_seconds(helpers)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        str(port),
        str(round_id),
        str(count),
        str(conns),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed with {proc.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["cpu_us"] = (cpu_seconds(helpers) - started) / max(result["sent"], 1) * 1e6
    return result


# --- the run ----------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    bare = BareHandler()
    baseline = await loop.create_server(
        lambda: SMTP(bare, hostname="bench.local", data_size_limit=25 * 1024 * 1024),
        "127.0.0.1",
        0,
    )
    ingest, close = await load_factory(args.ingest)()
    settings = SMTPSettings(
        host="127.0.0.1",
        port=0,
        hostname="bench.local",
        max_connections=1000,
        max_connections_per_ip=1000,  # every load generator connection comes from 127.0.0.1
        recipients={RCPT: "support"},
    )
    options = ParseOptions(token_secret=SECRET, reply_domain=DOMAIN)
    ours = SMTPListener(settings, ingest, MemoryAttachmentStore(), options)
    await ours.start()
    # as `omnidesk serve` does once a role is serving (omnidesk/app.py): what is alive now
    # is frozen out of the collector's full passes; one process, so both servers gain alike
    gc.collect()
    gc.freeze()
    base_port = baseline.sockets[0].getsockname()[1]
    rows: list[tuple[int, float, float]] = []
    cpu: list[tuple[float, float]] = []  # server CPU per message: (baseline, ours)
    try:
        round_ids = itertools.count(1)
        # warm-up (not counted): imports, caches, the first connections
        await drive(base_port, next(round_ids), min(200, args.messages), args.clients)
        helpers = helper_pids(ingest)
        await drive(ours.port, next(round_ids), min(200, args.messages), args.clients, helpers)
        for r in range(args.rounds):
            b = await drive(base_port, next(round_ids), args.messages, args.clients)
            o = await drive(ours.port, next(round_ids), args.messages, args.clients, helpers)
            if b["failures"] or o["failures"]:
                print(f"round {r + 1}: failures baseline={b['failures']} ours={o['failures']}")
            rows.append((r + 1, b["sent"] / b["elapsed"], o["sent"] / o["elapsed"]))
            cpu.append((b["cpu_us"], o["cpu_us"]))
    finally:
        await ours.stop()
        baseline.close()
        await baseline.wait_closed()
        drained = await close()

    print(
        f"{'round':>5}  {'baseline msg/s':>15}  {'omnidesk msg/s':>15}  {'ratio':>6}"
        f"  {'server CPU µs/msg: baseline':>28}  {'omnidesk':>8}"
    )
    for (r, b_rate, o_rate), (b_cpu, o_cpu) in zip(rows, cpu, strict=True):
        print(
            f"{r:>5}  {b_rate:>15.0f}  {o_rate:>15.0f}  {o_rate / b_rate:>6.2f}"
            f"  {b_cpu:>28.0f}  {o_cpu:>8.0f}"
        )
    base_rate = statistics.median(b for _, b, _ in rows)
    our_rate = statistics.median(o for _, _, o in rows)
    # each round measures both sides back to back: the median of those paired ratios is
    # steadier on a shared machine than the ratio of the two medians
    ratio = statistics.median(o / b for _, b, o in rows)
    base_cpu = statistics.median(b for b, _ in cpu)
    our_cpu = statistics.median(o for _, o in cpu)
    print(
        f"median over {args.rounds} rounds of {args.messages} messages, "
        f"{args.clients} persistent connections on each side: baseline {base_rate:.0f}/s, "
        f"ours {our_rate:.0f}/s, paired ratio {ratio:.2f}"
    )
    shape = {
        None: "smtp role: listener + committing ingest, no triage in-process",
        "embedded": "all-in-one: listener + committing ingest + triage in-process",
        "memory": "listener + parser, messages kept in memory",
    }.get(args.ingest, args.ingest)
    print(
        f"server CPU per message (this process, all threads; median): baseline "
        f"{base_cpu:.0f} µs, ours {our_cpu:.0f} µs, CPU ratio {base_cpu / our_cpu:.2f} "
        "(steadier than msg/s when other work shares the machine)"
    )
    print(f"measured: {shape}")
    print(
        f"connections: {args.clients} on each side; each waits for its 250, so one group "
        "commit holds at most that many messages (default 20, Postfix's "
        "default_destination_concurrency_limit)"
    )
    result = {
        "msgs_per_s": round(our_rate, 1),
        "baseline_per_s": round(base_rate, 1),
        "ratio": round(ratio, 3),
        "baseline_cpu_us": round(base_cpu),
        "cpu_us": round(our_cpu),
        "cpu_ratio": round(base_cpu / our_cpu, 3),
        "ingest": args.ingest or "smtp-role",
        "messages": args.messages,
        "clients": args.clients,
        "rounds": args.rounds,
    }
    if isinstance(drained, dict) and drained.get("triage_backlog"):
        print(
            f"then triage as the worker role runs it: {drained['triage_backlog']} messages "
            f"in {drained['triage_seconds']} s = {drained['triage_per_s']:.0f} triaged/s"
        )
        result.update(drained)
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, round_id, count, conns = map(int, sys.argv[2:6])
        asyncio.run(client_main(port, round_id, count, conns))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, under 60 s")
    parser.add_argument("--messages", type=int, help="messages per side per round")
    parser.add_argument(
        "--clients",
        type=int,
        default=20,
        help="concurrent SMTP connections, the same for both sides (default 20: Postfix's "
        "default_destination_concurrency_limit)",
    )
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")
    parser.add_argument("--ingest", help="package.module:factory for the ingest function")
    args = parser.parse_args()
    args.messages = args.messages or (300 if args.quick else 2000)
    args.rounds = args.rounds or (5 if args.quick else 7)
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
