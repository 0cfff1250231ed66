"""inbox.cases is a functional core: it imports the standard library's pure parts, our
error types and the config reader, and nothing that does I/O (SQL, HTTP, sockets, the
clock through asyncio)."""

from __future__ import annotations

import ast
from pathlib import Path

CASES = Path(__file__).resolve().parents[2] / "inbox" / "cases"
ALLOWED = {
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "difflib",
    "enum",
    "itertools",
    "re",
    "typing",
    "zoneinfo",
    "inbox.cases",
    "inbox.errors",
    "inbox.config_section",  # settings.py only: reads a section it is handed
}


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def allowed(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in ALLOWED)


def test_the_case_core_imports_nothing_that_does_io():
    files = sorted(CASES.glob("*.py"))
    assert len(files) > 10
    bad = [f"{p.name}: {m}" for p in files for m in sorted(imported(p)) if not allowed(m)]
    assert not bad, bad


def test_only_the_settings_reader_touches_config():
    readers = [p.name for p in CASES.glob("*.py") if "inbox.config_section" in imported(p)]
    assert readers == ["settings.py"]


def test_the_checker_sees_io(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text(
        "import sqlalchemy as sa\nfrom aiohttp import web\nfrom inbox.store import repo\n"
    )
    assert not any(allowed(m) for m in imported(sample))
