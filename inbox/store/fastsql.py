"""Plain SQL for the hot paths, run with the least overhead each engine allows.

Building and compiling a SQLAlchemy statement costs ~0.1 ms, several times what SQLite
takes to run it, and ingest runs half a dozen statements per message. Hot paths therefore
use plain SQL strings with `:name` parameters that SQLite and PostgreSQL both accept:

* on SQLite they run on the DBAPI connection underneath the SQLAlchemy one (same
  transaction), with values converted as the Core schema stores them;
* on PostgreSQL they run through `sqlalchemy.text` (the network round trip dominates).

Times are stored naive UTC (as `schema.UTCDateTime` does) and JSON as text.

Batches on SQLite also count *steps*. Python's sqlite3 module releases the GIL around every
`sqlite3_step`: once per row fetched and once per parameter set of an `executemany`. In a
server whose event loop holds the GIL most of the time, each release costs the writer
thread a wait for the GIL to come back (until the loop's next system call), so a batch of
30 messages written and read row by row spent most of its time waiting, not working.
`rows` (SQLite: the whole result as one JSON row) and `insert_rows` (one multi-row INSERT)
take one step for a whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

_std_json = json.JSONEncoder(separators=(",", ":")).encode


def to_json(value: Any) -> str:
    """Compact JSON text for a JSON column. orjson where it can (~30x faster); the
    standard library for what orjson refuses (integers past 64 bits in provider
    metadata), so any value the API accepted is stored."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _std_json(value)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return (
            value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        )
    if isinstance(value, dict | list):
        return to_json(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _pg_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


@lru_cache(maxsize=256)
def _text(sql: str) -> sa.TextClause:
    return sa.text(sql)


@lru_cache(maxsize=64)
def _multi_insert(table: str, columns: tuple[str, ...], count: int) -> str:
    group = "(" + ", ".join("?" * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([group] * count)


def as_utc(value: Any) -> datetime:
    """A time read back by plain SQL, as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


class Sql:
    """Runs plain SQL inside the caller's open transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self._raw = conn.connection.dbapi_connection if self.sqlite else None

    def _run(self, sql: str, params: dict[str, Any]) -> Any:
        if self._raw is not None:
            return self._raw.execute(sql, {k: _sqlite_value(v) for k, v in params.items()})
        return self.conn.execute(_text(sql), {k: _pg_value(v) for k, v in params.items()})

    def run(self, sql: str, **params: Any) -> int:
        """Execute; returns the number of rows changed."""
        return int(self._run(sql, params).rowcount)

    def run_many(self, sql: str, rows: list[dict[str, Any]]) -> None:
        """Execute once per parameter set, in order (PostgreSQL: pipelined, one round
        trip)."""
        if self._raw is not None:
            self._raw.executemany(
                sql, [{k: _sqlite_value(v) for k, v in row.items()} for row in rows]
            )
        else:
            self.conn.execute(
                _text(sql), [{k: _pg_value(v) for k, v in row.items()} for row in rows]
            )

    def run_positional(self, sql: str, values: Sequence[Any]) -> None:
        """SQLite only: execute with `?` parameters, values in stored form."""
        assert self._raw is not None, "run_positional is for SQLite"
        self._raw.execute(sql, values)

    def first(self, sql: str, **params: Any) -> tuple[Any, ...] | None:
        row = self._run(sql, params).fetchone()
        return None if row is None else tuple(row)

    def dicts(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """All rows as dicts keyed by column name (values as the driver returns them)."""
        cursor = self._run(sql, params)
        if self._raw is not None:
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        return [dict(row) for row in cursor.mappings()]

    def rows(self, sql: str, columns: Sequence[str], **params: Any) -> list[Sequence[Any]]:
        """All rows of a SELECT, each as a sequence of `columns` (names the SELECT gives
        its result columns), in the order of the select list. SQLite: in one step, the rows
        folded into one JSON array by SQLite and decoded here; so the values come back as
        JSON has them (numbers and text: select no blobs or reals that must stay exact)."""
        if self._raw is not None:
            fold = ", ".join(columns)
            wrapped = f"SELECT json_group_array(json_array({fold})) FROM ({sql})"
            found = self._run(wrapped, params).fetchone()
            rows: list[Sequence[Any]] = orjson.loads(found[0]) if found and found[0] else []
            return rows
        return [tuple(row) for row in self._run(sql, params).fetchall()]

    def insert_rows(self, table: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
        """INSERT `rows` (dicts with every name in `columns`) into `table`. SQLite: one
        multi-row statement per 500 rows, one step each, the values already in the form
        SQLite stores (times and JSON as text: none is converted); PostgreSQL: one
        pipelined executemany."""
        if not rows:
            return
        if self._raw is None:
            names = ", ".join(columns)
            marks = ", ".join(f":{c}" for c in columns)
            self.run_many(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            return
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            statement = _multi_insert(table, tuple(columns), len(chunk))
            self._raw.execute(statement, [row[c] for row in chunk for c in columns])

    def scalar(self, sql: str, **params: Any) -> Any:
        row = self._run(sql, params).fetchone()
        return None if row is None else row[0]


def from_json(value: Any) -> Any:
    """A JSON column read back by plain SQL (text on SQLite, decoded on PostgreSQL)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def decode(
    row: dict[str, Any], *, json_cols: tuple[str, ...] = (), time_cols: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Turn a plain-SQL row into what the Core schema would have handed out."""
    for col in json_cols:
        row[col] = from_json(row[col])
    for col in time_cols:
        if row[col] is not None:
            row[col] = as_utc(row[col])
    return row


def in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`IN (:name0, :name1, ...)` and its parameters, for a short list."""
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return "(" + ", ".join(f":{k}" for k in params) + ")", params
