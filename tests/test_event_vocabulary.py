"""One event vocabulary: every bus event is named by an `EventName` member, never a string.

Parses every production module and looks at `.publish(name, ...)`, `.subscribe(name, ...)`
and `Event(name, ...)`: the name must not be a string literal, an f-string, or a module
constant holding a string (`AGENT_TYPING = "agent.typing"` hides a bare name behind a
constant that "find references" on `EventName` does not find).
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

from inbox.events import PAYLOADS, EventName

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("inbox", "channels", "routing", "autoreply", "agent_ui", "omnidesk")
CALLS = {"publish", "subscribe", "Event"}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def _string_constants(tree: ast.Module) -> set[str]:
    """Names a module binds to a string at its top level."""
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found |= {t.id for t in targets if isinstance(t, ast.Name)}
    return found


def _called(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _name_argument(node: ast.Call) -> ast.expr | None:
    if node.args:
        return node.args[0]
    return next((k.value for k in node.keywords if k.arg == "name"), None)


def bare_names(modules: list[tuple[Path, ast.Module]]) -> list[str]:
    constants = set().union(*(_string_constants(tree) for _, tree in modules))
    found = []
    for path, tree in modules:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _called(node) not in CALLS:
                continue
            arg = _name_argument(node)
            if isinstance(arg, ast.Attribute):
                bare = arg.attr in constants  # e.g. commands.ROUTING_COMMAND
            elif isinstance(arg, ast.Name):
                bare = arg.id in constants
            else:
                bare = isinstance(arg, ast.JoinedStr) or (
                    isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                )
            if bare:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.append(f"{where} {_called(node)}({ast.unparse(arg)}, ...)")
    return found


def test_no_event_is_published_or_subscribed_by_a_bare_string() -> None:
    modules = _modules()
    assert len(modules) > 50
    bare = bare_names(modules)
    assert not bare, "use an inbox.events.EventName member:\n" + "\n".join(bare)


def test_the_check_sees_each_kind_of_bare_name() -> None:
    source = (
        'TYPING = "agent.typing"\n'
        "async def f(bus, cmd):\n"
        '    await bus.publish(Event("x.y", {}))\n'
        "    bus.subscribe(TYPING, f)\n"
        "    bus.subscribe(cmd.TYPING, f)\n"
        '    Event(name=f"{TYPING}", data={})\n'
        "    bus.subscribe(EventName.AGENT_TYPING, f)\n"
    )
    found = bare_names([(ROOT / "example.py", ast.parse(source))])
    assert sorted(line.split(" ", 1)[1] for line in found) == [
        "Event('x.y', ...)",
        "Event(f'{TYPING}', ...)",
        "subscribe(TYPING, ...)",
        "subscribe(cmd.TYPING, ...)",
    ]


def test_every_event_has_a_typed_payload() -> None:
    assert set(PAYLOADS) == set(EventName)
    for name, payload in PAYLOADS.items():
        assert typing.is_typeddict(payload), name
