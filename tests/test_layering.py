"""The layering of ARCHITECTURE.md, checked by parsing every import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = {"inbox", "channels", "routing", "autoreply", "agent_ui", "omnidesk"}
ALLOWED = {
    "inbox": set(),
    "channels": {"inbox"},
    "routing": {"inbox"},
    "autoreply": {"inbox"},
    "agent_ui": {"inbox", "channels", "routing", "autoreply"},
    "omnidesk": {"inbox", "channels", "routing", "autoreply", "agent_ui"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def test_every_package_imports_only_what_it_may():
    violations = []
    checked = 0
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            checked += 1
            for imported in imports_of(path) - allowed - {package}:
                violations.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert checked > 20
    assert not violations, "\n".join(violations)


def test_nothing_imports_the_composition_root():
    offenders = [
        str(path.relative_to(ROOT))
        for package in OURS - {"omnidesk"}
        for path in (ROOT / package).rglob("*.py")
        if "omnidesk" in imports_of(path)
    ]
    assert not offenders


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from routing.core import Router\nimport agent_ui.api\n")
    assert imports_of(bad) == {"routing", "agent_ui"}


# -- SQL only in the store ----------------------------------------------------------------

STORE = ROOT / "inbox" / "store"
# what speaks SQL: the toolkit, the drivers, migrations, and the store's own SQL modules
SQL_MODULES = ("sqlalchemy", "alembic", "asyncpg", "sqlite3", "psycopg", "psycopg2")
STORE_PRIVATE = ("inbox.store.schema", "inbox.store.fastsql")


def sql_imports_of(path: Path) -> set[str]:
    """The SQL toolkits and private store modules `path` imports (by any import form)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    found: set[str] = set()
    for name in names:
        if name.split(".")[0] in SQL_MODULES:
            found.add(name.split(".")[0])
        found |= {p for p in STORE_PRIVATE if name == p or name.startswith(p + ".")}
    return found


def test_sql_is_spoken_only_inside_the_store():
    offenders = []
    for package in sorted(OURS):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(STORE):
                continue
            for name in sorted(sql_imports_of(path)):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "SQL outside inbox/store:\n" + "\n".join(offenders)


def test_the_sql_checker_sees_every_import_form(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import sqlalchemy as sa\nfrom sqlalchemy.engine import Connection\n"
        "from inbox.store import schema as t\nimport inbox.store.fastsql\n"
        "from inbox.store.repo import get_conversation\n"
    )
    assert sql_imports_of(bad) == {"sqlalchemy", "inbox.store.schema", "inbox.store.fastsql"}
