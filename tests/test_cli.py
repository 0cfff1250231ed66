"""The `omnidesk` command where `make run` left it: the secret in the data directory, no
export; `agent password` prompted or from stdin, never echoed, ending the agent's sessions."""

from __future__ import annotations

import asyncio
import os
import pty
import secrets
import select
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from inbox import config as config_mod
from inbox.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# the environment a user's shell has: no OMNIDESK_* variable at all
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("OMNIDESK_")}


def checkout_like(tmp_path: Path) -> Path:
    """The example config beside its rules and a `var/secret_key` as `make setup` writes it."""
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text(secrets.token_urlsafe(48) + "\n")
    return tmp_path / "config.toml"


def omnidesk(
    config: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnidesk.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=CLEAN_ENV,
        cwd=config.parent,
        timeout=60,
    )


# -- the secret: read in one place, from the data directory when nothing else names it --


def test_secret_read_from_the_data_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "secret_key").write_text("k" * 30 + "\n")
    path = tmp_path / "c.toml"
    path.write_text('data_dir = "d"\n')
    assert config_mod.load(path, environ={}).secret_key == "k" * 30
    # the environment and the file's own key still win
    assert config_mod.load(path, environ={"OMNIDESK_SECRET_KEY": "e" * 20}).secret_key == "e" * 20
    path.write_text('data_dir = "d"\nsecret_key = "' + "s" * 20 + '"\n')
    assert config_mod.load(path, environ={}).secret_key == "s" * 20


def test_secret_key_file_is_relative_to_the_config(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "key").write_text("f" * 24)
    path = tmp_path / "c.toml"
    path.write_text('secret_key_file = "etc/key"\n')
    assert config_mod.load(path, environ={}).secret_key == "f" * 24
    path.write_text('\nsecret_key_file = "etc/none"\n')
    with pytest.raises(ConfigError) as info:
        config_mod.load(path, environ={})
    assert info.value.key == "secret_key_file" and info.value.line == 2
    assert "etc/none" in str(info.value)
    (tmp_path / "etc" / "key").write_text("short")
    path.write_text('secret_key_file = "etc/key"\n')
    with pytest.raises(ConfigError, match="too short"):
        config_mod.load(path, environ={})


def test_missing_secret_names_the_data_directory_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('data_dir = "d"\n')
    with pytest.raises(ConfigError) as info:
        config_mod.load(path, environ={})
    assert str(tmp_path / "d" / "secret_key") in str(info.value)


@pytest.mark.slow
def test_readme_commands_find_the_secret_make_run_created(tmp_path):
    config = checkout_like(tmp_path)
    checked = omnidesk(config, "config", "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().endswith(": OK")
    rules = omnidesk(
        config, "rules", "test", "--subject", "Where is my order?", "--body", "not arrived"
    )
    assert rules.returncode == 0, rules.stderr
    assert omnidesk(config, "migrate").returncode == 0
    token = omnidesk(config, "token", "create", "readme")
    assert token.returncode == 0, token.stderr
    assert len(token.stdout.strip()) >= 20
    assert "secret_key" not in token.stderr


# -- agent password ---------------------------------------------------------------------


def _agent_with_session(config: Path) -> str:
    """Add an agent and sign it in once (a stored session); returns the session id."""
    from inbox.store.agents import add as add_agent
    from inbox.store.backends import open_store
    from inbox.store.sessions import create_session
    from inbox.types import Role

    url = config_mod.load(config, environ={}).database_url

    async def run() -> str:
        store = open_store(url)
        try:
            agent = await store.write(
                lambda conn: add_agent(
                    conn,
                    name="Ann",
                    email="Ann@Example.com",
                    role=Role.AGENT,
                    skills={},
                    capacity={"chat": 1},
                    teams=["default"],
                    password_hash=None,
                )
            )
            return await store.write(
                lambda conn: create_session(
                    conn, agent.id, lifetime=timedelta(hours=1), ip=None, user_agent=None
                )
            )
        finally:
            await store.close()

    return asyncio.run(run())


def _session_alive(config: Path, session_id: str) -> bool:
    from inbox.store.backends import open_store
    from inbox.store.sessions import load_session

    url = config_mod.load(config, environ={}).database_url

    async def run() -> bool:
        store = open_store(url)
        try:
            found = await store.read(
                lambda conn: load_session(conn, session_id, idle=timedelta(hours=1))
            )
            return found is not None
        finally:
            await store.close()

    return asyncio.run(run())


def _signs_in(config: Path, password: str) -> bool:
    from agent_ui.passwords import verify_password
    from inbox.store.backends import open_store
    from inbox.store.sessions import password_hash_of

    url = config_mod.load(config, environ={}).database_url

    async def run() -> bool:
        store = open_store(url)
        try:
            _id, stored = await store.read(lambda conn: password_hash_of(conn, "ann@example.com"))
            return verify_password(stored, password)
        finally:
            await store.close()

    return asyncio.run(run())


@pytest.fixture
def agent_config(tmp_path):
    config = checkout_like(tmp_path)
    assert omnidesk(config, "migrate").returncode == 0
    return config, _agent_with_session(config)


def test_agent_password_from_stdin_ends_sessions(agent_config):
    config, session_id = agent_config
    assert _session_alive(config, session_id)
    done = omnidesk(
        config, "agent", "password", "ann@example.com", "--stdin", stdin="n3w-secret-pw\n"
    )
    assert done.returncode == 0, done.stderr
    assert "n3w-secret-pw" not in done.stdout + done.stderr
    assert "1 session(s) ended" in done.stdout
    assert _signs_in(config, "n3w-secret-pw")
    assert not _session_alive(config, session_id)


def test_agent_password_refuses_short_passwords_and_unknown_agents(agent_config):
    config, session_id = agent_config
    short = omnidesk(config, "agent", "password", "ann@example.com", "--stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    unknown = omnidesk(
        config, "agent", "password", "bob@example.com", "--stdin", stdin="long-enough-pw\n"
    )
    assert unknown.returncode == 1 and "no agent with email bob@example.com" in unknown.stderr
    assert "Traceback" not in short.stderr + unknown.stderr
    assert _session_alive(config, session_id)  # nothing changed


def _prompted(config: Path, first: str, second: str) -> tuple[int, str]:
    """Run `agent password` on a terminal, typing at each prompt; (exit code, all output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on the terminal
        os.chdir(config.parent)
        os.execve(
            sys.executable,
            [
                sys.executable,
                "-m",
                "omnidesk.cli",
                "--config",
                str(config),
                "agent",
                "password",
                "ann@example.com",
            ],
            {**CLEAN_ENV, "PYTHONPATH": str(ROOT)},
        )
    out = b""
    answers = [(b"New password:", first), (b"Again:", second)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        if answers and answers[0][0] in out:
            os.write(fd, answers.pop(0)[1].encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_agent_password_prompts_twice_without_echo(agent_config):
    config, session_id = agent_config
    code, out = _prompted(config, "typed-pw-1234", "typed-pw-9999")
    assert code == 1 and "differ" in out, out
    assert _session_alive(config, session_id)
    code, out = _prompted(config, "typed-pw-1234", "typed-pw-1234")
    assert code == 0, out
    assert "New password:" in out and "Again:" in out
    assert "typed-pw-1234" not in out  # the terminal never showed it
    assert _signs_in(config, "typed-pw-1234")
    assert not _session_alive(config, session_id)
