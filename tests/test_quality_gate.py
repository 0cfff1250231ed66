"""`make check` covers the whole project: mypy strict on every package we ship, eslint on
every JavaScript file of ours (vendored files aside); and what we ship stays readable: no
module over 400 lines, no function over cyclomatic complexity 20 (radon's measure)."""

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


MAX_MODULE_LINES = 400
MAX_COMPLEXITY = 20


def shipped_modules() -> list[Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]]
    return [
        path
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
        # a migration is a frozen record of the schema at one time, never edited
        if "migrations" not in path.parts
    ]


def test_no_shipped_module_is_over_400_lines() -> None:
    modules = shipped_modules()
    assert len(modules) > 100
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_shipped_function_is_over_complexity_20() -> None:
    from radon.complexity import cc_visit

    complex_ = [
        f"{path.relative_to(ROOT)}:{block.lineno} {block.name} ({block.complexity})"
        for path in shipped_modules()
        for block in cc_visit(path.read_text(encoding="utf-8"))
        if block.complexity > MAX_COMPLEXITY
    ]
    assert not complex_, "over complexity 20:\n" + "\n".join(complex_)


def test_the_complexity_measure_sees_a_branchy_function() -> None:
    from radon.complexity import cc_visit

    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(25))
    (block,) = cc_visit(f"def f(x):\n{branches}\n    return -1\n")
    assert block.complexity > MAX_COMPLEXITY
