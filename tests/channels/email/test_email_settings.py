from __future__ import annotations

import pytest

from channels.email.settings import read_settings
from inbox import config
from inbox.errors import ConfigError

GOOD = """
secret_key = "0123456789abcdef0123"

[email]
domain = "support.example.com"
reply_local = "help"
from_name = "ACME Support"
max_attachments = 10

[email.relay]
host = "smtp.relay.example"
port = 587
tls = "starttls"
user = "omnidesk"
password_env = "RELAY_PASSWORD"

[smtp]
port = 2526
max_message_bytes = 10485760
max_recipients = 20
isolate_parser = true
parse_timeout = 12.5

[smtp.recipients]
"help@support.example.com" = "support"
"@sales.example.com" = "sales"

[[imap.mailboxes]]
name = "legacy"
host = "imap.example.com"
user = "legacy@example.com"
password_env = "IMAP_PASSWORD"
inbox = "support"
after = "move"
move_to = "Processed"
"""


def load(text: str, **env: str) -> config.Config:
    return config.load(text=text, environ={"RELAY_PASSWORD": "r", "IMAP_PASSWORD": "i", **env})


def read(cfg: config.Config):  # type: ignore[no-untyped-def]
    return read_settings(cfg.section("email"), cfg.section("smtp"), cfg.section("imap"))


def test_reads_all_three_sections() -> None:
    s = read(load(GOOD))
    assert s.email.domain == "support.example.com"
    assert s.email.from_address == "help@support.example.com"
    assert s.email.relay.password == "r" and s.email.relay.port == 587
    assert s.email.limits.max_attachments == 10
    assert s.smtp.port == 2526 and s.smtp.max_recipients == 20
    assert s.smtp.hostname == "support.example.com"
    assert (s.smtp.isolate_parser, s.smtp.parse_timeout, s.smtp.parse_memory_mb) == (
        True,
        12.5,
        1024,
    )
    assert s.smtp.recipients == {
        "help@support.example.com": "support",
        "@sales.example.com": "sales",
    }
    (box,) = s.mailboxes
    assert (box.name, box.port, box.tls, box.password, box.after) == (
        "legacy",
        993,
        True,
        "i",
        "move",
    )


def test_defaults_when_only_domain_is_given() -> None:
    s = read(load('secret_key = "0123456789abcdef0123"\n[email]\ndomain = "ex.org"\n'))
    assert s.smtp.port == 2525 and not s.smtp.isolate_parser
    assert s.smtp.recipients == {"support@ex.org": "default"}
    assert s.email.relay is None and s.mailboxes == ()  # no relay: outbound mail is captured
    limits = (s.smtp.max_connections, s.smtp.max_connections_per_ip, s.smtp.reserved_slots)
    assert limits == (100, 20, 10)
    assert (s.smtp.timeout, s.smtp.stress_timeout, s.smtp.session_timeout) == (300, 10, 600)


def test_connection_limits_and_timeouts_are_read() -> None:
    text = GOOD.replace(
        "max_recipients = 20",
        "max_recipients = 20\nmax_connections = 40\nmax_connections_per_ip = 5\n"
        "reserved_connections = 8\ntimeout = 60\nstress_timeout = 4\nsession_timeout = 120",
    )
    smtp = read(load(text)).smtp
    assert (smtp.max_connections, smtp.max_connections_per_ip, smtp.reserved_slots) == (40, 5, 8)
    assert (smtp.timeout, smtp.stress_timeout, smtp.session_timeout) == (60, 4, 120)
    # defaults follow a small max_connections and a short timeout
    small = read(load(GOOD.replace("max_recipients = 20", "max_connections = 8\ntimeout = 5")))
    assert (small.smtp.max_connections_per_ip, small.smtp.reserved_slots) == (8, 0)
    assert (small.smtp.stress_timeout, small.smtp.session_timeout) == (5, 600)


@pytest.mark.parametrize(
    ("change", "key", "needle"),
    [
        (
            ('domain = "support.example.com"', 'domain = "not a domain"'),
            "email.domain",
            "not a mail domain",
        ),
        (('tls = "starttls"', 'tls = "ssl"'), "email.relay.tls", "unknown value"),
        (("max_recipients = 20", 'max_recipients = "many"'), "smtp.max_recipients", "whole number"),
        (('move_to = "Processed"', ""), "imap.mailboxes[0].move_to", "required"),
        (("port = 2526", "prot = 2526"), "smtp.prot", "unknown key"),
        (("parse_timeout = 12.5", "parse_timeout = 0"), "smtp.parse_timeout", "at least 0.1"),
        (("isolate_parser = true", 'isolate_parser = "yes"'), "smtp.isolate_parser", "true or"),
        (
            ("max_recipients = 20", "max_connections = 10\nmax_connections_per_ip = 11"),
            "smtp.max_connections_per_ip",
            "more than max_connections (10)",
        ),
        (
            ("max_recipients = 20", "max_connections = 10\nreserved_connections = 10"),
            "smtp.reserved_connections",
            "leaves no slot",
        ),
        (
            ("max_recipients = 20", "timeout = 30\nstress_timeout = 31"),
            "smtp.stress_timeout",
            "longer than timeout (30 s)",
        ),
        (
            ("max_recipients = 20", "timeout = 30\nsession_timeout = 20"),
            "smtp.session_timeout",
            "shorter than timeout (30 s)",
        ),
        (("max_recipients = 20", "stress_timeout = 0"), "smtp.stress_timeout", "at least 1"),
        (
            ('"@sales.example.com" = "sales"', '"sales" = "sales"'),
            "smtp.recipients.sales",
            "not an address",
        ),
    ],
)
def test_errors_name_the_key(change: tuple[str, str], key: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        read(load(GOOD.replace(*change)))
    assert info.value.key == key
    assert needle in str(info.value)
    assert info.value.line is not None


def test_missing_password_variable_is_reported() -> None:
    cfg = config.load(text=GOOD, environ={"IMAP_PASSWORD": "i"})
    with pytest.raises(ConfigError, match="RELAY_PASSWORD is not set"):
        read(cfg)
