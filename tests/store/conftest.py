"""Fixtures of the store tests: an empty database on each engine, to migrate step by step."""

from tests.inbox.test_migration_sender_key import fresh_url as fresh_url
