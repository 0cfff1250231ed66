"""Config loading: every bad edit reads as one line naming file, line, key and fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inbox import config as config_mod
from inbox.errors import ConfigError

GOOD = 'secret_key = "0123456789abcdef0123"\n'


def load(tmp_path, text: str, environ=None):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return config_mod.load(path, environ=environ or {})


def test_defaults(tmp_path):
    cfg = load(tmp_path, GOOD)
    assert cfg.database_url.startswith("sqlite:///") and cfg.database_url.endswith("omnidesk.db")
    assert cfg.server.max_body_bytes == 1024 * 1024
    assert (
        cfg.priorities == ("urgent", "high", "normal", "low") and cfg.default_priority == "normal"
    )
    assert cfg.redis_url is None


def test_environment_wins_for_secrets_and_urls(tmp_path):
    cfg = load(
        tmp_path,
        '[database]\nurl = "sqlite:///x.db"\n',
        {
            "OMNIDESK_SECRET_KEY": "s" * 20,
            "OMNIDESK_DATABASE_URL": "postgresql://u@h/db",
            "OMNIDESK_REDIS_URL": "redis://h:1/0",
        },
    )
    assert cfg.secret_key == "s" * 20
    assert cfg.database_url == "postgresql://u@h/db"
    assert cfg.redis_url == "redis://h:1/0"


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (GOOD + '[server]\nport = "eighty"\n', 3, "server.port", "expected a whole number"),
        (GOOD + "[server]\nport = 99999\n", 3, "server.port", "at most 65535"),
        (
            GOOD + '[server]\nhost = "x"\nlog_format = "xml"\n',
            4,
            "server.log_format",
            "unknown value 'xml'",
        ),
        (GOOD + "[server]\nprot = 80\n", 3, "server.prot", "did you mean 'port'"),
        (GOOD + '[database]\nurl = "mysql://x"\n', 3, "database.url", "unsupported database URL"),
        (GOOD + '[priorities]\nlevels = ["a", "a"]\n', 3, "priorities.levels", "distinct"),
        (
            GOOD + '[priorities]\ndefault = "nromal"\n',
            3,
            "priorities.default",
            "did you mean 'normal'",
        ),
        (GOOD + '[ingest]\ndefault_country = "usa"\n', 3, "ingest.default_country", "two-letter"),
        (GOOD + '[redis]\nurl = "http://x"\n', 3, "redis.url", "not a redis URL"),
        (GOOD + "\nbogus = 1\n", 3, "bogus", "unknown key"),
        ('secret_key = "short"\n', 1, "secret_key", "too short"),
    ],
)
def test_bad_values_name_file_line_and_key(tmp_path, text, line, key, words):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    err = info.value
    message = str(err)
    assert err.file and err.file.endswith("c.toml")
    assert err.line == line, message
    assert err.key == key, message
    assert words in message
    assert message.startswith(f"{err.file}:{line}: {key}: ")
    assert "\n" not in message


def test_missing_secret_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "")
    assert "OMNIDESK_SECRET_KEY" in str(info.value)


def test_toml_syntax_error_carries_the_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, GOOD + "[server]\nport = = 3\n")
    assert info.value.line == 3
    assert "not valid TOML" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        GOOD + 'server.port = "eighty"\n',  # a dotted key
        GOOD + 'server = { host = "x", port = "eighty" }\n',  # an inline table
        GOOD
        + '[server]\nport = "eighty"\n'.replace(
            "[server]\n", '[server]\nbanner = """\nport = 1\n"""\n'
        ),
    ],
)
def test_config_errors_find_the_line_as_rule_file_errors_do(tmp_path, text):
    """One locator (inbox.tomlpos) for the config, rule and FAQ files: dotted keys, inline
    tables and multi-line strings are read the same way everywhere."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    want = next(n for n, line in enumerate(text.splitlines(), 1) if '"eighty"' in line)
    assert (info.value.key, info.value.line) == ("server.port", want), str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        config_mod.load(tmp_path / "nope.toml", environ={})
    assert "file not found" in str(info.value)


def test_secret_from_named_environment_variable(tmp_path):
    cfg = load(tmp_path, GOOD + '[email]\npassword_env = "SMTP_PW"\n', {"SMTP_PW": "hunter2"})
    assert cfg.section("email").secret("password") == "hunter2"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, GOOD + '[email]\npassword_env = "SMTP_PW"\n').section("email").secret(
            "password"
        )
    assert "SMTP_PW is not set" in str(info.value) and info.value.line == 3


def test_array_of_tables_errors_point_at_the_right_entry(tmp_path):
    text = (
        GOOD
        + '[[imap.mailboxes]]\nhost = "a"\nport = 1\n[[imap.mailboxes]]\nhost = "b"\nport = "x"\n'
    )
    boxes = load(tmp_path, text).section("imap").sections("mailboxes")
    assert boxes[0].int("port") == 1
    with pytest.raises(ConfigError) as info:
        boxes[1].int("port")
    assert info.value.line == 7 and info.value.key == "imap.mailboxes[1].port"


def test_example_config_is_valid():
    cfg = config_mod.load("config.example.toml", environ={"OMNIDESK_SECRET_KEY": "x" * 20})
    assert cfg.server.port == 8080


def test_cli_config_check_prints_one_line_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD + '[server]\nport = "x"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "omnidesk.cli", "config", "check", str(bad)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "bad.toml:3: server.port: expected a whole number" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_on_a_database_path_it_cannot_create_says_so_in_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD + f'[database]\nurl = "sqlite:///{blocker}/sub/omnidesk.db"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "omnidesk.cli", "--config", str(cfg), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"cannot create the database folder {blocker}/sub" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_overrides_set_and_remove_keys_before_validation():
    cfg = config_mod.load(
        "config.example.toml",
        environ={"OMNIDESK_SECRET_KEY": "x" * 20},
        overrides=["server.port=8082", "webchat.demo_port=", 'server.host="0.0.0.0"'],
    )
    assert cfg.server.port == 8082 and cfg.server.host == "0.0.0.0"
    assert "demo_port" not in cfg.section("webchat")


@pytest.mark.parametrize(
    "override, words",
    [
        ("server.port=abc", "server.port: expected a whole number"),
        ("server.port", "bad override 'server.port'"),
        ("priorities.urgent.x=1", "'urgent' is not a table"),
    ],
)
def test_bad_overrides_name_the_key_not_a_file_line(tmp_path, override, words):
    path = tmp_path / "c.toml"
    path.write_text(GOOD + "[server]\nport = 8080\n[priorities]\nurgent = 60\n")
    with pytest.raises(ConfigError) as info:
        config_mod.load(path, environ={}, overrides=[override])
    assert words in str(info.value)
    assert info.value.line is None  # the value did not come from a line of the file


def test_cli_set_reaches_every_command(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text(GOOD)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "omnidesk.cli",
            "--set",
            "server.port=-1",
            "config",
            "check",
            str(bad),
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2 and "server.port" in proc.stderr and "Traceback" not in proc.stderr
