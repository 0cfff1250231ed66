"""/metrics: traffic through every channel moves every family; the endpoint wants its token;
the Grafana dashboard queries only metrics the registry exports.

One in-process service wired as `omnidesk serve` wires it (router, delivery worker, SMTP
listener, IMAP poller), reached through real protocols: HTTP for the API, the web form and
the signed SMS webhook, a real SMTP client, python-socketio clients for the chat widget
and the agent workspace."""

from __future__ import annotations

import asyncio
import json
import re
from email.message import EmailMessage
from importlib import resources

import aiosmtplib
import pytest
import socketio
from aiohttp import ClientSession
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from inbox import metrics
from tests.agent_ui.conftest import Desk, add_people, build_desk
from tests.processes import until
from tests.test_crash import free_port
from tests.test_form_email_thread import relay  # noqa: F401 - a fixture

METRICS_TOKEN = "metrics-token-0123456789abcdef"
SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC = "https://desk.example.com"
ORIGIN = "http://shop.example"

RULES = """
[templates.order_status]
text = "Follow your order at https://shop.example.com/orders"

[[rule]]
name = "order-status"
[rule.when]
text_any = ["where is my order"]
[rule.then]
reply = "order_status"
"""


def extra_config(tmp_path, relay_port: int, smtp_port: int, dead_port: int) -> str:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    return f"""
[metrics]
token = "{METRICS_TOKEN}"
port = 0
[autoreply]
rules = ["{rules}"]
faq = []
per_contact_max = 100
[email]
domain = "desk.test"
[email.relay]
host = "127.0.0.1"
port = {relay_port}
tls = "none"
[smtp]
port = {smtp_port}
[smtp.recipients]
"support@desk.test" = "inbox-a"
[[imap.mailboxes]]
name = "support"
host = "127.0.0.1"
port = {dead_port}
tls = false
user = "support"
password = "secret"
inbox = "inbox-a"
idle = false
poll_interval = 60
[forms.contact]
title = "Contact us"
inbox = "inbox-a"
[[forms.contact.fields]]
name = "email"
type = "email"
required = true
[[forms.contact.fields]]
name = "message"
type = "textarea"
required = true
[webchat]
[webchat.widgets.shop]
allowed_origins = ["{ORIGIN}"]
inbox = "inbox-a"
prechat_fields = []
[sms]
account_sid = "{SID}"
auth_token = "{TWILIO_TOKEN}"
from_number = "+15550001111"
public_base_url = "{PUBLIC}"
api_base_url = "http://127.0.0.1:{dead_port}"
inbox = "inbox-a"
send_attempts = 1
send_backoff_seconds = 0
"""


def scrape_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from the Prometheus text format."""
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return values


def total(values, name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lab), v in values.items() if n == name and want <= set(lab))


@pytest.fixture
async def everything(tmp_path, aiohttp_client, relay):  # noqa: F811
    """The desk of tests/agent_ui with every channel, auto-answers and [metrics] on."""
    from omnidesk import metrics as endpoint
    from omnidesk.app import make_web_app

    sink, relay_port = relay
    smtp_port, dead_port = free_port(), free_port()
    _config, services = await build_desk(
        tmp_path, extra_config(tmp_path, relay_port, smtp_port, dead_port)
    )
    try:
        services.outbox.poll_interval = 0.05
        services.outbox.start()
        services.closers.append(services.outbox.stop)
        for startup in services.parts.startups:
            await startup()
        listener = await endpoint.start_listener(services)
        assert listener is not None
        services.closers.append(listener.cleanup)
        client = await aiohttp_client(make_web_app(services))
        desk = Desk(client, services)
        desk.people = await add_people(services)
        host, port = listener.addresses[0][:2]
        desk.metrics_url = f"http://{host}:{port}/metrics"
        desk.smtp_port, desk.sink = smtp_port, sink
        yield desk
    finally:
        await services.close()


async def scrape(desk, token: str | None = METRICS_TOKEN) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await desk.client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    return await resp.text()


async def test_traffic_through_every_channel_moves_every_family(everything):
    desk = everything
    client, services = desk.client, desk.services
    before = scrape_values(await scrape(desk))

    # an agent signs in, goes online and keeps the workspace's socket open
    ann = await desk.login("agent_a")
    resp = await client.post(
        "/agent/api/presence", json={"presence": "online"}, headers=desk.headers("agent_a")
    )
    assert resp.status == 200, await resp.text()
    url = str(client.make_url("/")).rstrip("/")
    # the clients' HTTP session is ours to close: a failing test's traceback must not keep
    # a socket open that the server's teardown then waits for
    http = ClientSession()
    agent_socket = socketio.AsyncClient(reconnection=False, http_session=http)
    await agent_socket.connect(
        url,
        namespaces=["/agent"],
        headers={"Origin": url, "Cookie": f"od_session={ann.cookie}"},
        transports=["websocket"],
        wait_timeout=10,
    )
    visitor = socketio.AsyncClient(reconnection=False, http_session=http)
    try:
        # API
        resp = await client.post(
            "/api/v1/messages",
            json={"sender": "api@example.org", "text": "Where is my order?", "inbox": "inbox-a"},
            headers=await api_auth(services),
        )
        assert resp.status == 201, await resp.text()
        # SMTP, with a real client
        mail = EmailMessage()
        mail["From"] = "mail@example.org"
        mail["To"] = "support@desk.test"
        mail["Subject"] = "Order"
        mail["Message-ID"] = "<metrics-1@example.org>"
        mail.set_content("Hello, where is my order?")
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=desk.smtp_port)
        # web form
        resp = await client.post(
            "/forms/contact",
            data={"email": "form@example.org", "message": "Where is my order?"},
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
        # chat, through the widget's socket.io namespace
        await visitor.connect(
            url,
            namespaces=["/widget"],
            headers={"Origin": ORIGIN},
            auth={"widget": "shop"},
            transports=["websocket"],
            wait_timeout=10,
        )
        assert (await visitor.call("hello", {"after": 0}, namespace="/widget"))["ok"]
        said = await visitor.call(
            "message",
            {"client_id": "client-0001", "text": "hi, where is my order"},
            namespace="/widget",
        )
        assert said["ok"], said
        # SMS, a webhook signed as Twilio signs it
        params = {
            "MessageSid": "SM" + "b" * 32,
            "AccountSid": SID,
            "From": "+14155550123",
            "To": "+15550001111",
            "Body": "where is my order",
            "NumMedia": "0",
        }
        path = "/sms/twilio/inbound"
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, params)
        resp = await client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        assert resp.status == 200, await resp.text()
        # a conversation nobody can take: Bob (inbox-b) is offline
        resp = await client.post(
            "/api/v1/messages",
            json={"sender": "wait@example.org", "text": "Hello?", "inbox": "inbox-b"},
            headers=await api_auth(services),
        )
        assert resp.status == 201
        # sign-in failures, then a throttled one (after the agent signed in: same address)
        for _ in range(5):
            await failed_sign_in(client, "mallory@example.org", 401)
        await failed_sign_in(client, "mallory@example.org", 429)

        async def delivered() -> bool:
            await desk.settle()
            now = scrape_values(await scrape(desk))
            return (
                total(now, "omnidesk_outbox_deliveries_total", channel="email", outcome="sent")
                - total(before, "omnidesk_outbox_deliveries_total", channel="email", outcome="sent")
                >= 3
                and total(now, "omnidesk_outbox_deliveries_total", channel="sms", outcome="retry")
                > total(before, "omnidesk_outbox_deliveries_total", channel="sms", outcome="retry")
                and total(now, "omnidesk_router_decisions_total", kind="assigned")
                - total(before, "omnidesk_router_decisions_total", kind="assigned")
                >= 5
            )

        await until(delivered, 15, "the deliveries and assignments to show in a scrape")
        after = scrape_values(await scrape(desk))
    finally:
        await visitor.disconnect()
        await agent_socket.disconnect()
        await http.close()
        # let the router hear the agent's socket close before teardown stops it (on Python
        # 3.11 a cancel landing as its wait_for wakes is lost and RouterService.close hangs)
        await asyncio.sleep(0.2)
        await desk.settle()

    def moved(name: str, at_least: float = 1, **labels: str) -> None:
        grown = total(after, name, **labels) - total(before, name, **labels)
        assert grown >= at_least, f"{name} {labels} moved by {grown}"

    for channel in ("api", "email", "form", "chat", "sms"):
        moved("omnidesk_messages_ingested_total", channel=channel)
    moved("omnidesk_ingest_latency_seconds_count", 6)
    moved("omnidesk_auto_answers_total", 5, rule="order-status")
    moved("omnidesk_router_decisions_total", 5, kind="assigned")
    moved("omnidesk_assignment_latency_seconds_count", 5)
    moved("omnidesk_outbox_deliveries_total", 3, channel="email", outcome="sent")
    moved("omnidesk_delivery_latency_seconds_count", 3, channel="email")
    moved("omnidesk_outbox_deliveries_total", 1, channel="sms", outcome="retry")
    moved("omnidesk_signin_failures_total", 5)
    moved("omnidesk_signin_throttled_total", 1)
    # gauges: what is true at the scrape
    assert total(after, "omnidesk_conversations_waiting", inbox="inbox-b") == 1
    assert total(after, "omnidesk_conversations_waiting", inbox="inbox-a") == 0
    assert total(after, "omnidesk_conversations_oldest_wait_seconds", inbox="inbox-b") > 0
    assert total(after, "omnidesk_outbox_jobs", status="pending") >= 1  # the SMS retry
    assert total(after, "omnidesk_sockets", kind="agent") == 1
    assert total(after, "omnidesk_sockets", kind="visitor") == 1
    assert ("omnidesk_imap_mailbox_healthy", (("mailbox", "support"),)) in after
    assert total(after, "omnidesk_imap_mailbox_healthy", mailbox="support") == 0
    # the event bus reconnects only on Redis (not in this embedded service): exported as 0
    assert ("omnidesk_bus_reconnects_total", ()) in after
    assert len(desk.sink.received) >= 3

    # the sockets gone, the next scrape says so
    final = scrape_values(await scrape(desk))
    assert total(final, "omnidesk_sockets", kind="agent") == 0
    assert total(final, "omnidesk_sockets", kind="visitor") == 0


async def api_auth(services) -> dict[str, str]:
    from inbox.store.tokens import create as create_token

    token = await services.store.write(lambda conn: create_token(conn, "metrics-test"))
    return {"Authorization": f"Bearer {token}"}


async def failed_sign_in(client, email: str, status: int) -> None:
    client.session.cookie_jar.clear()
    page = await client.get("/login")
    csrf = re.search(r'name="login_csrf" value="([^"]+)"', await page.text()).group(1)
    resp = await client.post(
        "/login",
        data={"email": email, "password": "not the password", "login_csrf": csrf},
        allow_redirects=False,
    )
    assert resp.status == status
    client.session.cookie_jar.clear()


async def test_metrics_want_the_token_on_the_web_port_and_the_own_listener(everything):
    desk = everything
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Basic bWV0cmljczp4"}, 401),
        ({"Authorization": "Bearer wrong-token-0123456789abcdef"}, 403),
        ({"Authorization": f"Bearer {METRICS_TOKEN}"}, 200),
    ):
        resp = await desk.client.get("/metrics", headers=headers)
        assert resp.status == status, headers
        if status == 401:
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        if status != 200:
            assert "omnidesk_" not in await resp.text()
    async with ClientSession() as session:
        async with session.get(desk.metrics_url) as resp:
            assert resp.status == 401
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        async with session.get(desk.metrics_url, headers=headers) as resp:
            assert resp.status == 200
            assert "# TYPE omnidesk_ingest_latency_seconds histogram" in await resp.text()
    # the agent workspace's sign-in does not open it either
    await desk.login("agent_a")
    cookie = f"od_session={desk.people['agent_a'].cookie}"
    resp = await desk.client.get("/metrics", headers={"Cookie": cookie})
    assert resp.status == 401


async def test_without_a_metrics_table_nothing_is_served(service):
    resp = await service.get("/metrics", headers=service.auth)  # an API token is not one
    assert resp.status == 404


# -- the dashboard ------------------------------------------------------------------------

# PromQL words that are not metric names
_PROMQL = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "by", "without",
    "histogram_quantile", "le", "on", "ignoring", "group_left", "group_right", "and", "or",
    "unless", "offset", "bool", "topk", "bottomk", "clamp_min", "clamp_max", "time",
    "vector", "scalar", "abs", "delta", "deriv", "label_replace", "sort_desc", "sort",
}  # fmt: skip
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_WORDS = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: words outside strings, label
    matchers, ranges and grouping clauses that are not functions or keywords."""
    expr = _STRINGS.sub(" ", expr)
    expr = _BRACES.sub(" ", expr)
    expr = _RANGES.sub(" ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in _WORDS.finditer(expr):
        word = match.group(0)
        if word in _PROMQL or word.startswith("$"):
            continue
        if expr[match.end() : match.end() + 1] == "(":  # a function call
            continue
        if match.start() > 0 and (
            expr[match.start() - 1].isdigit() or expr[match.start() - 1] == "."
        ):
            continue  # a number's tail, like the "e" of 1e3 or "s" of 5m
        names.add(word)
    return names


def dashboard_exprs() -> list[str]:
    text = resources.files("omnidesk").joinpath("grafana/dashboard.json").read_text()
    exprs: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    exprs.append(value)
                elif key == "query" and isinstance(value, str) and "(" in value:
                    exprs.append(value)  # a templating variable's query
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(text))
    return exprs


def test_the_name_parser_finds_names_and_skips_promql():
    expr = (
        "histogram_quantile(0.99, sum by (le) (rate(omnidesk_ingest_latency_seconds_bucket"
        '{job="omnidesk", channel=~"sms|email"}[5m]))) / 1e3 + max(omnidesk_sockets)'
    )
    assert metric_names(expr) == {"omnidesk_ingest_latency_seconds_bucket", "omnidesk_sockets"}


def test_the_dashboard_queries_only_exported_metrics():
    exprs = dashboard_exprs()
    assert len(exprs) >= 12
    used = set().union(*(metric_names(e) for e in exprs))
    exported = metrics.exported_names()
    assert used - exported == set(), f"not exported: {sorted(used - exported)}"
    # and it shows every family: nothing exported is left off the dashboard
    families = {m.name for m in metrics.REGISTRY.collect()}
    shown = {f for f in families if any(n.startswith(f) for n in used)}
    assert families - shown == set(), f"not on the dashboard: {sorted(families - shown)}"


# -- the [metrics] table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "env", "message"),
    [
        ('token = "short"', {}, "metrics.token: is too short"),
        ('host = "127.0.0.1"', {}, "serves nothing"),
        ('token_env = "METRICS_TOKEN"', {}, "environment variable METRICS_TOKEN is not set"),
        ("port = 70000", {}, "metrics.port"),
        ('port = 9464\ntokn = "x"', {}, "tokn"),
    ],
)
def test_a_bad_metrics_table_is_refused_naming_the_key(tmp_path, table, env, message):
    from inbox import config as config_mod
    from inbox.errors import ConfigError
    from omnidesk.wiring import check_sections
    from tests.conftest import write_config

    config = config_mod.load(write_config(tmp_path, f"[metrics]\n{table}\n"), environ=env)
    with pytest.raises(ConfigError) as caught:
        check_sections(config)
    assert message in str(caught.value)
    assert "config.toml:" in str(caught.value)


def test_a_good_metrics_table_reads_the_token_from_the_environment(tmp_path):
    from inbox import config as config_mod
    from omnidesk.metrics import MetricsSettings, read_metrics_settings
    from tests.conftest import write_config

    extra = '[metrics]\ntoken_env = "METRICS_TOKEN"\nport = 9464\nhost = "10.0.0.5"\n'
    config = config_mod.load(
        write_config(tmp_path, extra), environ={"METRICS_TOKEN": METRICS_TOKEN}
    )
    assert read_metrics_settings(config) == MetricsSettings(METRICS_TOKEN, "10.0.0.5", 9464)


async def test_a_taken_metrics_port_is_said_in_one_line(tmp_path):
    import socket

    from inbox import config as config_mod
    from inbox.errors import AddressInUse
    from omnidesk import metrics as endpoint
    from tests.conftest import write_config

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = config_mod.load(write_config(tmp_path, f"[metrics]\nport = {port}\n"), environ={})

        class Services:  # what start_listener reads
            def __init__(self) -> None:
                self.config, self.store, self.sio = config, None, None
                self.parts = type("Parts", (), {"scrapes": []})()

        with pytest.raises(AddressInUse, match=f"metrics on 127.0.0.1:{port}.*metrics.port"):
            await endpoint.start_listener(Services())
