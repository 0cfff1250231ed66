"""The [agent_ui] sign-in settings: defaults, the example file, and bad values named by
file, line and key."""

from __future__ import annotations

import ipaddress

import pytest

from agent_ui.settings import read_ui_settings
from inbox import config as config_mod
from inbox.accounts.signin_throttle import ThrottlePolicy
from inbox.errors import ConfigError

GOOD = 'secret_key = "0123456789abcdef0123"\n'


def _settings(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(GOOD + text)
    return read_ui_settings(config_mod.load(path, environ={}))


def test_defaults(tmp_path):
    ui = _settings(tmp_path, "")
    assert ui.trusted_proxies == ()
    assert ui.throttle == ThrottlePolicy(free_attempts=5, delay=5.0, max_delay=900.0, forget=3600.0)
    assert (ui.password_threads, ui.password_queue) == (2, 16)


def test_example_config_documents_every_key_with_its_default():
    ui = read_ui_settings(
        config_mod.load("config.example.toml", environ={"OMNIDESK_SECRET_KEY": "x" * 20})
    )
    assert ui.throttle == ThrottlePolicy()
    assert (ui.password_threads, ui.password_queue) == (2, 16)


def test_values_are_read(tmp_path):
    ui = _settings(
        tmp_path,
        "[agent_ui]\n"
        'trusted_proxies = ["10.0.0.0/8", "::1"]\n'
        "signin_free_attempts = 3\nsignin_delay_seconds = 0.5\n"
        "signin_max_delay_seconds = 60\nsignin_forget_minutes = 10\n"
        "password_threads = 4\npassword_queue = 0\n",
    )
    assert ui.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert ui.throttle == ThrottlePolicy(3, 0.5, 60.0, 600.0)
    assert (ui.password_threads, ui.password_queue) == (4, 0)


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('trusted_proxies = ["proxy.local"]\n', "trusted_proxies", "not an address or network"),
        ("trusted_proxies = [1]\n", "trusted_proxies", "expected a list of strings"),
        ("signin_free_attempts = 0\n", "signin_free_attempts", "at least 1"),
        ('signin_delay_seconds = "soon"\n', "signin_delay_seconds", "expected a number"),
        (
            "signin_delay_seconds = 60\nsignin_max_delay_seconds = 10\n",
            "signin_max_delay_seconds",
            "shorter than signin_delay_seconds",
        ),
        ("password_threads = 0\n", "password_threads", "at least 1"),
        ("signin_attempts = 5\n", "signin_attempts", "unknown key"),
    ],
)
def test_bad_values_name_file_line_and_key(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, "[agent_ui]\n" + text)
    err = info.value
    line = 3 + text.count("\n") - 1
    assert err.file.endswith("c.toml") and err.key == f"agent_ui.{key}"
    assert err.line == line, str(err)
    assert words in str(err)
