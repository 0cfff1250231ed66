"""`make check` covers the whole project: mypy strict on every package we ship, eslint on
every JavaScript file of ours (vendored files aside)."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ESLINT = ROOT / "node_modules" / ".bin" / "eslint"


def test_mypy_strict_checks_every_shipped_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    mypy = config["tool"]["mypy"]
    assert mypy["strict"] is True
    assert set(mypy["packages"]) == shipped


def test_eslint_lints_all_our_javascript_and_finds_nothing() -> None:
    assert ESLINT.exists(), "eslint is a devDependency in package-lock.json: run `make setup`"
    ours = {
        str(ROOT / p)
        for p in subprocess.run(
            ["git", "ls-files", "*.js"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        if "/vendor/" not in p
    }
    assert ours, "no JavaScript found"
    run = subprocess.run(
        [str(ESLINT), "--format", "json", "."], cwd=ROOT, capture_output=True, text=True
    )
    results = json.loads(run.stdout)
    linted = {r["filePath"] for r in results}
    assert ours <= linted, f"not linted: {sorted(ours - linted)}"
    problems = [
        f"{r['filePath']}:{m['line']} {m['message']}" for r in results for m in r["messages"]
    ]
    assert not problems
    assert run.returncode == 0
