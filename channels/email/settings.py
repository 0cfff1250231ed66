"""The email channel's settings: `[email]`, `[smtp]` and `[[imap.mailboxes]]`.

Read once from `ConfigSection`s (see `inbox.config`); every bad value raises `ConfigError`
naming the file, line, key and fix. Nothing else in channels/email reads config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from channels.email.limits import ParseLimits
from inbox.config import ConfigSection

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$", re.I)
_LOCAL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,30}$", re.I)
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$|^@[^@\s]+$")


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Where outbound mail goes (a smarthost)."""

    host: str = "127.0.0.1"
    port: int = 587
    tls: str = "starttls"  # "starttls" | "tls" (implicit, port 465) | "none"
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class EmailSettings:
    domain: str
    reply_local: str = "support"
    from_address: str = ""  # default reply_local@domain
    from_name: str = "Support"
    default_subject: str = "Your support request"
    instance: str | None = None  # X-Omnidesk-Instance; None: derived from the secret
    templates_dir: Path | None = None
    relay: RelaySettings | None = None  # None: no relay configured, outbound mail is captured
    limits: ParseLimits = field(default_factory=ParseLimits)


@dataclass(frozen=True, slots=True)
class SMTPSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = "localhost"  # our name in the greeting (no DNS lookup at start)
    max_message_bytes: int = 25 * 1024 * 1024
    max_recipients: int = 50
    max_connections: int = 100
    # as Postfix's anvil and postscreen: a cap per client address, and the last slots
    # kept for addresses holding none (None: a tenth of max_connections)
    max_connections_per_ip: int = 20
    reserved_connections: int | None = None
    timeout: float = 300.0  # for each command (and for the content after DATA)
    stress_timeout: float = 10.0  # for each command while only the reserve is free
    session_timeout: float = 600.0  # for a whole session
    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_starttls: bool = False
    # parse in child processes, a time and memory limit per message (email/parse_process.py)
    isolate_parser: bool = False
    parse_timeout: float = 30.0
    parse_memory_mb: int = 1024
    # recipient -> inbox; "support@example.com" exactly or "@example.com" for the domain
    recipients: dict[str, str] = field(default_factory=dict)

    @property
    def reserved_slots(self) -> int:
        if self.reserved_connections is None:
            return self.max_connections // 10
        return self.reserved_connections


@dataclass(frozen=True, slots=True)
class IMAPMailbox:
    name: str
    host: str
    user: str
    password: str
    port: int = 993
    tls: bool = True
    folder: str = "INBOX"
    inbox: str = "default"
    idle: bool = True
    poll_interval: float = 60.0
    idle_timeout: float = 300.0
    after: str = "none"  # "none" | "seen" | "flag" | "move"
    move_to: str | None = None
    max_message_bytes: int = 25 * 1024 * 1024
    backoff_max: float = 300.0


@dataclass(frozen=True, slots=True)
class EmailChannelSettings:
    email: EmailSettings
    smtp: SMTPSettings
    mailboxes: tuple[IMAPMailbox, ...] = ()


def _base(section: ConfigSection) -> Path:
    return Path(section.file).resolve().parent if section.file != "<config>" else Path.cwd()


def _path(section: ConfigSection, key: str) -> Path | None:
    value = section.str(key, None)
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else _base(section) / path


def _relay(relay: ConfigSection) -> RelaySettings:
    tls = relay.str("tls", "starttls", choices=["starttls", "tls", "none"])
    relay_settings = RelaySettings(
        host=relay.str("host", "127.0.0.1"),
        port=relay.int("port", 465 if tls == "tls" else 587, min=1, max=65535),
        tls=tls,
        user=relay.str("user", None),
        password=relay.secret("password", None),
        timeout=relay.float("timeout", 30.0, min=1, max=600),
    )
    if relay_settings.user and relay_settings.password is None:
        raise relay.error("password_env", "user is set but no password", fix="password_env = ...")
    relay.reject_unknown()
    return relay_settings


def read_email(section: ConfigSection) -> EmailSettings:
    domain = section.str("domain")
    if not _DOMAIN.match(domain):
        raise section.error("domain", f"not a mail domain: {domain!r}", fix='"example.com"')
    local = section.str("reply_local", "support")
    if not _LOCAL.match(local) or "+" in local:
        raise section.error(
            "reply_local", f"not a plain local part: {local!r}", fix='"support" (no "+")'
        )
    from_address = section.str("from_address", f"{local}@{domain}")
    if not _ADDRESS.match(from_address) or from_address.startswith("@"):
        raise section.error("from_address", f"not an address: {from_address!r}")
    templates = _path(section, "templates")
    if templates is not None and not templates.is_dir():
        raise section.error("templates", f"no such directory: {templates}")
    relay_settings = _relay(section.section("relay")) if "relay" in section else None
    max_att = section.int("max_attachment_bytes", 20 * 1024 * 1024, min=1024)
    limits = ParseLimits(
        max_attachment_bytes=max_att,
        max_attachments=section.int("max_attachments", 50, min=0, max=1000),
    )
    settings = EmailSettings(
        domain=domain.lower(),
        reply_local=local.lower(),
        from_address=from_address,
        from_name=section.str("from_name", "Support"),
        default_subject=section.str("default_subject", "Your support request"),
        instance=section.str("instance", None),
        templates_dir=templates,
        relay=relay_settings,
        limits=limits,
    )
    section.reject_unknown()
    return settings


def read_smtp(section: ConfigSection, email: EmailSettings) -> SMTPSettings:
    recipients_section = section.section("recipients")
    recipients: dict[str, str] = {}
    for address in recipients_section.keys():
        inbox = recipients_section.str(address)
        if not _ADDRESS.match(address):
            raise recipients_section.error(
                address, "not an address", fix='"support@example.com" = "support"'
            )
        recipients[address.lower()] = inbox
    if not recipients:
        recipients = {f"{email.reply_local}@{email.domain}": "default"}
    cert, key = _path(section, "tls_cert"), _path(section, "tls_key")
    if (cert is None) != (key is None):
        raise section.error(
            "tls_key" if key is None else "tls_cert", "set both tls_cert and tls_key"
        )
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        if path is not None and not path.is_file():
            raise section.error(name, f"no such file: {path}")
    require = section.bool("require_starttls", False)
    if require and cert is None:
        raise section.error("require_starttls", "needs tls_cert and tls_key")
    max_connections = section.int("max_connections", 100, min=1, max=100_000)
    per_ip = section.int("max_connections_per_ip", min(20, max_connections), min=1)
    if per_ip > max_connections:
        raise section.error(
            "max_connections_per_ip",
            f"{per_ip} is more than max_connections ({max_connections})",
            fix=f"max_connections_per_ip = {min(20, max_connections)}",
        )
    reserved = section.int("reserved_connections", max_connections // 10, min=0)
    if reserved >= max_connections:
        raise section.error(
            "reserved_connections",
            f"{reserved} leaves no slot of max_connections ({max_connections}) to the others",
            fix=f"reserved_connections = {max_connections // 10}",
        )
    timeout = section.float("timeout", 300.0, min=1, max=3600)
    stress_timeout = section.float("stress_timeout", min(10.0, timeout), min=1)
    if stress_timeout > timeout:
        raise section.error(
            "stress_timeout", f"{stress_timeout:g} s is longer than timeout ({timeout:g} s)"
        )
    session_timeout = section.float("session_timeout", max(600.0, timeout), min=1, max=86_400)
    if session_timeout < timeout:
        raise section.error(
            "session_timeout", f"{session_timeout:g} s is shorter than timeout ({timeout:g} s)"
        )
    settings = SMTPSettings(
        enabled=section.bool("enabled", True),
        host=section.str("host", "127.0.0.1"),
        port=section.int("port", 2525, min=0, max=65535),
        hostname=section.str("hostname", email.domain),
        max_message_bytes=section.int("max_message_bytes", 25 * 1024 * 1024, min=1024),
        max_recipients=section.int("max_recipients", 50, min=1, max=10_000),
        max_connections=max_connections,
        max_connections_per_ip=per_ip,
        reserved_connections=reserved,
        timeout=timeout,
        stress_timeout=stress_timeout,
        session_timeout=session_timeout,
        tls_cert=cert,
        tls_key=key,
        require_starttls=require,
        isolate_parser=section.bool("isolate_parser", False),
        parse_timeout=section.float("parse_timeout", 30.0, min=0.1, max=3600),
        parse_memory_mb=section.int("parse_memory_mb", 1024, min=128, max=1_048_576),
        recipients=recipients,
    )
    section.reject_unknown()
    return settings


def read_mailboxes(section: ConfigSection) -> tuple[IMAPMailbox, ...]:
    out: list[IMAPMailbox] = []
    names: set[str] = set()
    for index, box in enumerate(section.sections("mailboxes")):
        name = box.str("name", f"mailbox{index + 1}")
        if name in names:
            raise box.error("name", f"duplicate mailbox name {name!r}")
        names.add(name)
        tls = box.bool("tls", True)
        after = box.str("after", "none", choices=["none", "seen", "flag", "move"])
        move_to = box.str("move_to", None)
        if after == "move" and not move_to:
            raise box.error("move_to", 'is required when after = "move"', fix='move_to = "Done"')
        out.append(
            IMAPMailbox(
                name=name,
                host=box.str("host"),
                port=box.int("port", 993 if tls else 143, min=1, max=65535),
                tls=tls,
                user=box.str("user"),
                password=box.secret("password"),
                folder=box.str("folder", "INBOX"),
                inbox=box.str("inbox", "default"),
                idle=box.bool("idle", True),
                poll_interval=box.float("poll_interval", 60.0, min=0.1, max=86_400),
                idle_timeout=box.float("idle_timeout", 300.0, min=1, max=1740),
                after=after,
                move_to=move_to,
                max_message_bytes=box.int("max_message_bytes", 25 * 1024 * 1024, min=1024),
                backoff_max=box.float("backoff_max", 300.0, min=1, max=3600),
            )
        )
        box.reject_unknown()
    section.reject_unknown({"mailboxes"})
    return tuple(out)


def read_settings(
    email: ConfigSection, smtp: ConfigSection, imap: ConfigSection
) -> EmailChannelSettings:
    """`read_settings(cfg.section("email"), cfg.section("smtp"), cfg.section("imap"))`."""
    email_settings = read_email(email)
    return EmailChannelSettings(
        email=email_settings,
        smtp=read_smtp(smtp, email_settings),
        mailboxes=read_mailboxes(imap),
    )
