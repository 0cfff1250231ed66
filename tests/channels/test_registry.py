"""The channel registry: every channel is one adapter there, and the composition root
knows channels only through it (`channels.protocol`)."""

from __future__ import annotations

import ast
from pathlib import Path

from channels.registry import CHANNELS, enabled
from inbox import config as config_mod
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]
# what the composition root may import of `channels`: the protocol, the registry, and the
# generic inbound API (always on, no config table)
ROOT_MAY_IMPORT = {"channels", "channels.protocol", "channels.registry", "channels.api"}


def channel_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "channels"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "channels":
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return found


def test_the_composition_root_names_no_channel():
    # (omnidesk/commands/ is not looked at: `omnidesk form snippet` is the forms' own tool)
    named = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "omnidesk").glob("*.py"))
        for module in channel_imports(path)
        if module not in ROOT_MAY_IMPORT and module.rsplit(".", 1)[0] not in ROOT_MAY_IMPORT
    }
    assert not named, "\n".join(sorted(named))


def test_the_checker_sees_a_channel_named(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from channels.sms import TwilioSender\nimport channels.webchat.http\n")
    assert {"channels.sms", "channels.webchat.http"} <= channel_imports(bad)


def test_each_channel_is_one_adapter_under_its_own_table():
    sections = [adapter.section for adapter in CHANNELS]
    assert sorted(sections) == ["email", "forms", "sms", "webchat"]
    assert len(set(map(type, CHANNELS))) == len(CHANNELS)


FORM = """
[forms.contact]
title = "Contact us"
[[forms.contact.fields]]
name = "email"
type = "email"
label = "Email"
required = true
"""


def test_a_channel_is_enabled_by_its_table_alone(tmp_path):
    config = config_mod.load(write_config(tmp_path, FORM), environ={})
    assert [adapter.section for adapter in enabled(config)] == ["forms"]
    settings = enabled(config)[0].read_settings(config)
    assert list(settings.forms) == ["contact"]
