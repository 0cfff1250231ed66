from __future__ import annotations

import pytest

from channels.sms.settings import read_sms_settings
from inbox.config import load
from inbox.errors import ConfigError

SID = "AC" + "0123456789abcdef" * 2
BASE = f"""secret_key = "0123456789abcdef0123"

[server]
public_url = "https://desk.example.com"

[sms]
account_sid = "{SID}"
auth_token_env = "TWILIO_AUTH_TOKEN"
"""
ENV = {"TWILIO_AUTH_TOKEN": "tok"}


def read(extra: str, env=ENV):
    config = load("config.toml", text=BASE + extra, environ=env)
    return read_sms_settings(
        config.section("sms"),
        public_url=config.server.public_url,
        default_country=config.ingest.default_country,
    )


def test_defaults_and_env_token():
    settings = read('from_number = "(555) 000-1111"\n')
    assert settings.auth_token == "tok"
    assert settings.from_number == "+15550001111"
    assert settings.public_base_url == "https://desk.example.com"
    assert settings.validate_signatures is True
    assert settings.media_allowed_hosts == ("api.twilio.com", "*.twilio.com")
    assert settings.status_callback_url == "https://desk.example.com/sms/twilio/status"


def test_all_keys():
    settings = read(
        'messaging_service_sid = "MG' + "a" * 32 + '"\n'
        'public_base_url = "https://proxy.example.org/omnidesk/"\n'
        'api_base_url = "http://127.0.0.1:9999"\n'
        "validate_signatures = false\ntrust_forwarded_headers = true\n"
        'inbox = "sms"\nmax_body_bytes = 4096\nstatus_callbacks = false\n'
        "send_attempts = 5\nsend_backoff_seconds = 1\nsend_timeout_seconds = 5\n"
        'media_allowed_hosts = ["*.twiliocdn.com"]\nmedia_allowed_types = ["image/jpeg"]\n'
        "media_max_bytes = 1000\nmedia_max_count = 2\nmedia_timeout_seconds = 3\n"
        "media_auth = false\n"
    )
    assert settings.public_base_url == "https://proxy.example.org/omnidesk"
    assert settings.messaging_service_sid == "MG" + "a" * 32
    assert settings.status_callback_url is None
    assert (settings.send_attempts, settings.media_max_count) == (5, 2)


@pytest.mark.parametrize(
    ("extra", "env", "key", "text"),
    [
        ("", ENV, "sms", "from_number"),
        (
            'from_number = "+15550001111"\nmessaging_service_sid = "MG' + "a" * 32 + '"\n',
            ENV,
            "sms.messaging_service_sid",
            "not both",
        ),
        ('from_number = "abc"\n', ENV, "sms.from_number", "phone"),
        ('from_number = "+15550001111"\n', {}, "sms.auth_token_env", "TWILIO_AUTH_TOKEN"),
        (
            'from_number = "+15550001111"\nmedia_alowed_hosts = []\n',
            ENV,
            "sms.media_alowed_hosts",
            "did you mean 'media_allowed_hosts'",
        ),
        (
            'from_number = "+15550001111"\npublic_base_url = "desk.example.com"\n',
            ENV,
            "sms.public_base_url",
            "http(s) URL",
        ),
        (
            'from_number = "+15550001111"\nmedia_allowed_hosts = ["http://x/"]\n',
            ENV,
            "sms.media_allowed_hosts",
            "host name",
        ),
        (
            'from_number = "+15550001111"\nvalidate_signatures = "no"\n',
            ENV,
            "sms.validate_signatures",
            "true or false",
        ),
    ],
)
def test_errors_name_the_key(extra, env, key, text):
    with pytest.raises(ConfigError) as info:
        read(extra, env)
    assert info.value.key == key
    assert text in str(info.value)
    assert str(info.value).startswith("config.toml:")


def test_bad_account_sid():
    with pytest.raises(ConfigError, match="account SID"):
        config = load(
            "c.toml", text=BASE.replace(SID, "ACxyz") + 'from_number = "+15550001111"', environ=ENV
        )
        read_sms_settings(config.section("sms"), public_url="https://x")
