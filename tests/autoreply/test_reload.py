"""Hot reload: atomic swap under a stream of messages; bad edits keep the last good rules."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from autoreply.engine import Engine
from autoreply.reload import Reloader
from autoreply.settings import AutoreplySettings
from tests.autoreply.factories import NOON, incoming, write


def rules_v(version: int) -> str:
    return f"""
[templates.t]
text = "answer v{version}"

[[rule]]
name = "rule-v{version}"
when = {{ text_any = ["order"] }}
then = {{ reply = "t", tags = ["v{version}"] }}
"""


def setup(tmp_path: Path) -> tuple[Engine, Reloader, Path]:
    path = write(tmp_path / "rules.toml", rules_v(1))
    settings = AutoreplySettings(
        rules=("*.toml",), base_dir=tmp_path, per_contact_max=10**9, global_max_per_minute=10**9
    )
    engine = Engine.from_settings(settings)
    return engine, Reloader(engine), path


def test_reload_under_a_stream_loses_nothing_and_applies_only_to_later_messages(tmp_path):
    engine, reloader, path = setup(tmp_path)
    total = 3000
    results: list[tuple[int, str, tuple[str, ...], str]] = []
    reloaded_at: list[int] = []
    progress = threading.Event()

    def stream() -> None:
        for n in range(total):
            inc = incoming(f"order {n}", contact_id=n)
            d = inc.decide(engine, NOON)
            results.append((n, d.rule or "", d.tags, d.reply.text if d.reply else ""))
            if n == 300:
                progress.set()

    worker = threading.Thread(target=stream)
    worker.start()
    progress.wait(10)
    write(path, rules_v(2))
    before = len(results)  # these were decided before the swap began: old rules
    assert reloader.reload()
    reloaded_at.append(len(results))  # at most one more may be in flight with the old rules
    worker.join(30)
    assert [n for n, *_ in results] == list(range(total))  # none lost, in order
    versions = []
    for _, rule, tags, text in results:
        v = int(rule[-1])
        assert tags == (f"v{v}",) and text == f"answer v{v}"  # never a mix of old and new
        versions.append(v)
    assert versions == sorted(versions)  # old rules, then new rules, never back
    switch = versions.index(2)
    assert before <= switch <= reloaded_at[0] + 1
    assert all(v == 2 for v in versions[reloaded_at[0] + 1 :])  # later messages: new rules
    assert versions.count(1) > 0 and versions.count(2) > 0


def test_invalid_edit_keeps_last_good_rules_and_logs_one_line(tmp_path, caplog):
    engine, reloader, path = setup(tmp_path)
    write(
        path,
        rules_v(1).replace('text_any = ["order"]', 'text_any = ["order"], body_regex = "(?<=x)y"'),
    )
    with caplog.at_level(logging.ERROR, logger="omnidesk.autoreply"):
        assert not reloader.reload()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert "\n" not in line
    assert f"{path}:7:" in line and "rule 'rule-v1'" in line and "fix:" in line
    assert "keeping version 1" in line
    assert incoming("order").decide(engine).rule == "rule-v1"
    write(path, rules_v(3))
    assert reloader.reload() and incoming("order").decide(engine).rule == "rule-v3"
    assert engine.ruleset.version == 2


def test_sighup_handler_reloads(tmp_path):
    import os
    import signal

    engine, reloader, path = setup(tmp_path)

    async def main() -> None:
        reloader.install_sighup(asyncio.get_running_loop())
        write(path, rules_v(4))
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if engine.ruleset.rules[0].name == "rule-v4":
                break
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    asyncio.run(main())
    assert incoming("order").decide(engine).rule == "rule-v4"


async def test_watcher_reloads_on_change(tmp_path):
    engine, reloader, path = setup(tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(reloader.watch(stop, debounce_ms=50))
    await asyncio.sleep(0.3)
    write(path, rules_v(5))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if engine.ruleset.rules[0].name == "rule-v5":
            break
    stop.set()
    await asyncio.wait_for(task, 5)
    assert incoming("order").decide(engine).rule == "rule-v5"
