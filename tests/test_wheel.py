"""omnidesk installs as a package: the wheel, built from a copy of the checkout, installed
into a fresh virtualenv outside it, serves the example config from another directory
(templates, static files, the widget's socket.io client and the migrations come from the
wheel, nothing from the checkout) and answers /readyz."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.test_crash import free_port, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
# a user's shell: nothing pointing at the checkout or at a config
ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("OMNIDESK_", "PYTHON", "VIRTUAL_ENV"))
}
SKIP = {".git", ".venv", "var", "build", "test-artifacts", "__pycache__", ".mypy_cache"}


def run(*args: str | Path, cwd: Path, timeout: float) -> str:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def source_copy(dest: Path) -> Path:
    """The checkout's files as a fresh clone plus `npm ci` has them (no venv, no state)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP or n.endswith((".egg-info", ".pyc"))}

    return Path(shutil.copytree(ROOT, dest, ignore=ignore))


async def test_wheel_installs_into_a_clean_virtualenv_and_serves(tmp_path):
    assert not tmp_path.resolve().is_relative_to(ROOT)
    src = source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        dist,
        src,
        cwd=tmp_path,
        timeout=300,
    )
    (wheel,) = dist.glob("omnidesk-*.whl")
    shutil.rmtree(src)  # nothing may be read from a source tree from here on

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path, timeout=120)
    pip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "install", "-q", wheel, cwd=tmp_path, timeout=600)
    # every runtime import resolves with the runtime dependencies alone (no test extra)
    where = run(
        venv / "bin" / "python",
        "-c",
        "import importlib, pkgutil, sys\n"
        "for top in ('inbox', 'channels', 'routing', 'autoreply', 'agent_ui', 'omnidesk'):\n"
        "    pkg = importlib.import_module(top)\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, top + '.'):\n"
        "        if '.migrations' not in info.name:\n"
        "            importlib.import_module(info.name)\n"
        "print(pkg.__file__)",
        cwd=tmp_path,
        timeout=120,
    )
    assert Path(where.strip()).is_relative_to(venv), where

    # the admin's directory: the example config beside its rule files, and a secret key
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(ROOT / "config.example.toml", site / "config.toml")
    shutil.copytree(ROOT / "rules", site / "rules")
    (site / "var").mkdir()
    (site / "var" / "secret_key").write_text(secrets.token_urlsafe(48))
    http, smtp, demo = free_port(), free_port(), free_port()
    log = site / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(venv / "bin" / "omnidesk"),
                "--config",
                "config.toml",
                "--set",
                f"server.port={http}",
                "--set",
                f"smtp.port={smtp}",
                "--set",
                f"webchat.demo_port={demo}",
                "serve",
                "--migrate",
            ],
            cwd=site,
            env=ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{http}"
    try:
        await wait_ready(url, proc, str(log))
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/readyz") as resp:
                assert resp.status == 200, await resp.text()
            # package data: a template, the agent UI's script, the widget with its client
            async with session.get(url + "/login") as resp:
                assert resp.status == 200 and "<form" in await resp.text()
            async with session.get(url + "/agent/static/vendor/socket.io.min.js") as resp:
                assert resp.status == 200
            async with session.get(url + "/widget.js") as resp:
                assert resp.status == 200 and "Socket.IO v4" in await resp.text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0, log.read_text()[-3000:]
    assert (site / "var" / "omnidesk.db").is_file()  # the data directory beside the config
