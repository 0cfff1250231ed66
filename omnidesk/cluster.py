"""A local cluster: several omnidesk processes on PostgreSQL and Redis, on this machine.

    scripts/cluster                       # 2 web, 1 router, 2 workers, 1 smtp (make cluster)
    scripts/cluster --web 3 --workers 1   # another shape

Every process reads the same config file; what differs between them (the web port, the
demo page that only the first web process serves) is passed with `--set`. The database
URL and the Redis URL come from the environment (OMNIDESK_DATABASE_URL, OMNIDESK_REDIS_URL),
as a real deployment would pass them. Each process logs to `<log_dir>/<name>.log`.

Web processes listen on consecutive ports (8080, 8082, ...); a browser or client may use
any of them: sessions live in the database, socket.io emits cross processes through Redis.
A load balancer in front would need sticky sessions for socket.io's polling transport
(see README, "Running several processes").

`Cluster` is also what the cluster tests and bench/cluster.py drive: start, kill -9 a
process, restart it, stop.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from inbox.store.databases import create_database

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_DATABASE = "postgresql://127.0.0.1:5432/omnidesk_cluster"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"


@dataclass
class Proc:
    name: str
    role: str
    sets: list[str]
    port: int | None = None  # web processes: the HTTP port
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None


@dataclass
class Cluster:
    config: str
    database_url: str = DEFAULT_DATABASE
    redis_url: str = DEFAULT_REDIS
    secret_key: str = ""
    web: int = 2
    routers: int = 1
    workers: int = 2
    smtp: int = 1
    first_port: int = 8080
    web_ports: tuple[int, ...] = ()  # given ports for the web processes (else first_port, +2...)
    log_dir: Path = field(default_factory=lambda: ROOT / "var" / "cluster")
    sets: list[str] = field(default_factory=list)  # for every process
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.web_ports:
            self.web = len(self.web_ports)
        for i in range(self.web):
            # 8081 is the demo host page of web1
            port = self.web_ports[i] if self.web_ports else self.first_port + 2 * i
            sets = [f"server.port={port}"]
            if i > 0:
                sets.append("webchat.demo_port=")
            self._add(f"web{i + 1}", "web", sets, port)
        for role, count in (("router", self.routers), ("worker", self.workers)):
            for i in range(count):
                self._add(f"{role}{i + 1}", role, [])
        for i in range(self.smtp):
            self._add(f"smtp{i + 1}", "smtp", [])

    def _add(self, name: str, role: str, sets: list[str], port: int | None = None) -> None:
        self.procs[name] = Proc(name, role, sets, port)

    # -- the command line every process shares --------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "OMNIDESK_DATABASE_URL": self.database_url,
            "OMNIDESK_REDIS_URL": self.redis_url,
            "PYTHONUNBUFFERED": "1",
        }
        if self.secret_key:
            env["OMNIDESK_SECRET_KEY"] = self.secret_key
        return env

    def command(self, *args: str, sets: Sequence[str] = ()) -> list[str]:
        cmd = [sys.executable, "-m", "omnidesk.cli", "--config", self.config]
        for item in (*self.sets, *sets):
            cmd += ["--set", item]
        return [*cmd, *args]

    def run(self, *args: str) -> str:
        """One omnidesk command against the cluster's database (migrate, agent add, ...)."""
        done = subprocess.run(
            self.command(*args), env=self.env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"omnidesk {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    # -- set-up ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the database if it does not exist, and migrate it."""
        create_database(self.database_url)
        self.run("migrate")

    # -- processes ------------------------------------------------------------------------
    def start(self, names: Sequence[str] | None = None, timeout: float = 60.0) -> None:
        chosen = [self.procs[n] for n in (names or list(self.procs))]
        for proc in chosen:
            self._spawn(proc)
        deadline = time.monotonic() + timeout
        for proc in chosen:
            self.wait_ready(proc.name, deadline - time.monotonic())

    def _spawn(self, proc: Proc) -> None:
        log = (self.log_dir / f"{proc.name}.log").open("ab")
        log.write(f"--- start {time.strftime('%H:%M:%S')} ---\n".encode())
        log.flush()
        proc.started_at = time.time()
        self._ready_file(proc).unlink(missing_ok=True)
        proc.popen = subprocess.Popen(
            self.command(
                "serve",
                "--role",
                proc.role,
                "--ready-file",
                str(self._ready_file(proc)),
                sets=proc.sets,
            ),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches only the launcher
        )
        log.close()

    def _ready_file(self, proc: Proc) -> Path:
        return self.log_dir / f"{proc.name}.ready"

    def log_of(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        """Until the process says it serves (its ready file) and a web one answers /readyz."""
        proc = self.procs[name]
        deadline = time.monotonic() + max(timeout, 1.0)
        while time.monotonic() < deadline:
            assert proc.popen is not None
            if proc.popen.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.popen.returncode}:\n{self.log_of(name)[-3000:]}"
                )
            if self._ready_file(proc).exists():
                if not proc.url:
                    return
                try:
                    with urllib.request.urlopen(proc.url + "/readyz", timeout=2) as resp:
                        if resp.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready after {timeout:.0f} s:\n{self.log_of(name)[-3000:]}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.popen is not None and proc.popen.poll() is None:
            proc.popen.send_signal(sig)
            proc.popen.wait(30)

    def restart(self, name: str) -> None:
        self.kill(name, signal.SIGTERM)
        self._spawn(self.procs[name])
        self.wait_ready(name)

    def alive(self) -> dict[str, bool]:
        return {n: p.popen is not None and p.popen.poll() is None for n, p in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.popen is not None and proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            if proc.popen is not None:
                try:
                    proc.popen.wait(20)
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
                    proc.popen.wait()

    @property
    def web_urls(self) -> list[str]:
        return [p.url for p in self.procs.values() if p.url]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/cluster", description="run omnidesk as several processes on this machine"
    )
    parser.add_argument(
        "--config", default=os.environ.get("OMNIDESK_CONFIG", "config.example.toml")
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("OMNIDESK_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument("--redis-url", default=os.environ.get("OMNIDESK_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--routers", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--smtp", type=int, default=1)
    parser.add_argument("--first-port", type=int, default=8080)
    parser.add_argument("--log-dir", default=str(ROOT / "var" / "cluster"))
    args = parser.parse_args(argv)

    secret = os.environ.get("OMNIDESK_SECRET_KEY", "")
    key_file = ROOT / "var" / "secret_key"
    if not secret and key_file.exists():
        secret = key_file.read_text().strip()
    cluster = Cluster(
        config=args.config,
        database_url=args.database_url,
        redis_url=args.redis_url,
        secret_key=secret,
        web=args.web,
        routers=args.routers,
        workers=args.workers,
        smtp=args.smtp,
        first_port=args.first_port,
        log_dir=Path(args.log_dir),
    )
    cluster.prepare()
    print(cluster.run("demo"), end="")
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cluster.start()
        print(f"\nomnidesk cluster on {args.database_url} and {args.redis_url}:")
        for proc in cluster.procs.values():
            where = f"  {proc.url}" if proc.url else ""
            print(f"  {proc.name:<8} pid {proc.popen.pid if proc.popen else '-':<7}{where}")
        print(f"logs: {cluster.log_dir}/<name>.log   (Ctrl-C stops every process)")
        reported: set[str] = set()
        while not stop:
            for name, up in cluster.alive().items():
                if not up and name not in reported:
                    reported.add(name)
                    print(f"{name} exited; see {cluster.log_dir}/{name}.log", file=sys.stderr)
            time.sleep(0.5)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
