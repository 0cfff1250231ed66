"""Database URLs as the command line and the cluster runner use them (inbox.store.backends):
a password never shown, the admin database of a PostgreSQL server."""

from __future__ import annotations

from inbox.store.backends import admin_target, safe_url


def test_a_shown_url_hides_its_password():
    shown = safe_url("postgresql://desk:s3cret@db.example:5432/omnidesk")
    assert "s3cret" not in shown and shown.startswith("postgresql://desk:***@db.example")
    assert safe_url("sqlite:///var/omnidesk.db") == "sqlite:///var/omnidesk.db"


def test_the_admin_target_of_a_postgresql_url():
    assert admin_target("postgresql+asyncpg://desk:pw@db:5432/omnidesk") == (
        "postgresql://desk:pw@db:5432/postgres",
        "omnidesk",
    )
    assert admin_target("sqlite:///var/omnidesk.db") is None
