"""Demo data for `make run`: a few agents with skills, and an API token.

Passwords and the token are printed once, when they are created; they are stored only
hashed.
"""

from __future__ import annotations

import asyncio
import secrets
from functools import partial

from agent_ui.passwords import hash_password
from inbox.config import Config
from inbox.store import agents, tokens
from inbox.store.backends import open_store
from inbox.types import Role

DEMO_AGENTS = [
    (
        "Alice Martin",
        "alice@demo.omnidesk.test",
        Role.AGENT,
        {"billing": 8, "english": 9},
        ["default"],
    ),
    (
        "Bruno Keller",
        "bruno@demo.omnidesk.test",
        Role.AGENT,
        {"technical": 8, "german": 9, "english": 6},
        ["default"],
    ),
    (
        "Sam Okafor",
        "sam@demo.omnidesk.test",
        Role.SUPERVISOR,
        {"billing": 5, "technical": 5, "english": 8},
        ["default"],
    ),
    # an admin sees what the demo would have mailed ("Captured mail", /admin/mail)
    ("Dana Admin", "dana@demo.omnidesk.test", Role.ADMIN, {"english": 5}, ["default"]),
]
CAPACITY = {"chat": 3, "email": 10, "sms": 5, "form": 10, "api": 10}


def seed(config: Config) -> list[str]:
    async def run() -> list[str]:
        store = open_store(config.database_url)
        try:
            existing = {a.email for a in await store.read(agents.list_all)}
            lines: list[str] = []
            for name, email, role, skills, teams in DEMO_AGENTS:
                if email in existing:
                    continue
                password = secrets.token_urlsafe(9)
                hashed = hash_password(password)
                await store.write(
                    partial(
                        agents.add,
                        name=name,
                        email=email,
                        role=role,
                        skills=skills,
                        capacity=CAPACITY,
                        teams=teams,
                        password_hash=hashed,
                    )
                )
                lines.append(f"  agent {email:<28} {role.value:<10} password: {password}")
            if not lines:
                return [
                    "demo agents exist already (their passwords were printed when created;"
                    " add another with `omnidesk agent add`)"
                ]
            token = await store.call(tokens.create, "demo")
            return [
                "demo agents created (passwords shown once, stored hashed):",
                *lines,
                f"  API token (shown once): {token}",
            ]
        finally:
            await store.close()

    return asyncio.run(run())
