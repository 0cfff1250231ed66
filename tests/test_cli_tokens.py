"""`omnidesk token create|list|revoke` on a migrated SQLite database."""

from __future__ import annotations

import asyncio
import re

import pytest

from inbox.accounts.tokens import hash_token
from inbox.store.backends import open_store
from inbox.store.migrate import upgrade
from inbox.store.tokens import verify as verify_token
from omnidesk.cli import main
from tests.conftest import write_config


@pytest.fixture
def config_path(tmp_path) -> str:
    path = write_config(tmp_path)
    with open(path) as f:  # inboxes is a top-level key: before the first table
        text = f.read()
    with open(path, "w") as f:
        f.write('inboxes = ["sales", "support", "default"]\n' + text)
    upgrade(f"sqlite:///{tmp_path / 'omnidesk.db'}")
    return path


def run(capsys, config_path: str, *args: str) -> tuple[int, str, str]:
    code = main(["-c", config_path, "token", *args])
    out, err = capsys.readouterr()
    return code, out, err


def scope_of(tmp_path, token: str):
    async def read():
        store = open_store(f"sqlite:///{tmp_path / 'omnidesk.db'}")
        try:
            return await store.read(lambda c: verify_token(c, token))
        finally:
            await store.close()

    return asyncio.run(read())


def test_create_with_scopes_list_and_revoke(capsys, config_path, tmp_path):
    code, full, _ = run(capsys, config_path, "create", "crm")
    assert code == 0
    code, narrow, _ = run(
        capsys,
        config_path,
        "create",
        "shop",
        "--inbox",
        "sales",
        "--inbox",
        "support",
        "--read-only",
    )
    assert code == 0
    full, narrow = full.strip(), narrow.strip()
    assert scope_of(tmp_path, full).inboxes is None
    assert scope_of(tmp_path, full).read_only is False
    got = scope_of(tmp_path, narrow)
    assert (got.inboxes, got.read_only) == (frozenset({"sales", "support"}), True)

    code, out, _ = run(capsys, config_path, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name", "created", "last", "used", "scopes"]
    assert re.match(
        r"\s+1\s+crm\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+never\s+all inboxes, read-write$", lines[1]
    )
    assert re.search(r"shop .* never\s+inboxes sales, support, read-only$", lines[2])
    # the secret and its hash never appear
    for token in (full, narrow):
        assert token not in out and hash_token(token) not in out

    code, out, _ = run(capsys, config_path, "revoke", "shop")
    assert (code, out.strip()) == (0, "token 2 'shop' revoked")
    assert scope_of(tmp_path, narrow) is None
    code, out, _ = run(capsys, config_path, "revoke", "1")
    assert (code, out.strip()) == (0, "token 1 'crm' revoked")
    code, out, _ = run(capsys, config_path, "list")
    assert len(out.splitlines()) == 1  # the header: nothing active
    code, out, _ = run(capsys, config_path, "list", "--all")
    assert "(revoked " in out and out.count("\n") == 3


def test_refusals_say_why(capsys, config_path):
    code, _, err = run(capsys, config_path, "create", "x", "--inbox", "nope")
    assert code == 1 and "no inbox 'nope' in the config" in err
    code, _, err = run(capsys, config_path, "revoke", "missing")
    assert code == 1 and "no active API token with id or name 'missing'" in err
    run(capsys, config_path, "create", "twin")
    run(capsys, config_path, "create", "twin")
    code, _, err = run(capsys, config_path, "revoke", "twin")
    assert code == 1 and "revoke by id" in err
