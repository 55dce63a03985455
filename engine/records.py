"""Rows a lifecycle command reads and writes, without the ORM's unit of work.

A command touches a handful of rows (the dossier, its open steps, new events...). Loading them as plain
records and writing exactly the changed columns with Core statements costs a fraction of an ORM flush,
and keeps the statements per step to the few the design calls for. The ORM models stay the schema and
serve reads (inspection, the API)."""
from __future__ import annotations

import copy
from typing import Any, Mapping

from functools import lru_cache

from sqlalchemy import Connection, Table, bindparam, insert, update


def _snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    # JSON values (dicts, lists) are copied so that in-place edits show up as changes too.
    return {k: copy.copy(v) if isinstance(v, (dict, list)) else v for k, v in values.items()}


class Record:
    """One row's columns as attributes. `changes()` lists what a command changed since loading."""

    def __init__(self, table: Table, values: Mapping[str, Any], *, new: bool = False):
        self.__dict__.update(values)
        self.__dict__["_table"] = table
        self.__dict__["_new"] = new
        self.__dict__["_loaded"] = {} if new else _snapshot(values)

    @property
    def is_new(self) -> bool:
        return self._new

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()
                if not k.startswith("_") and (k not in self._loaded or self._loaded[k] != v)}

    def mark_saved(self) -> None:
        self.__dict__["_new"] = False
        self.__dict__["_loaded"] = _snapshot({k: v for k, v in self.__dict__.items() if not k.startswith("_")})

    def __repr__(self) -> str:
        return f"<{self._table.name} {getattr(self, 'id', None)}>"


def load(conn: Connection, table: Table, stmt, params: Mapping[str, Any]) -> list[Record]:
    """Rows of `table` selected by a prebuilt statement with bound parameters (compiled once)."""
    return [Record(table, row._mapping) for row in conn.execute(stmt, params)]


@lru_cache(maxsize=None)
def _insert(table: Table):
    # No .values(): the columns come from the parameters, so one compiled statement serves every call.
    return insert(table).returning(table.c.id)


@lru_cache(maxsize=None)
def _update(table: Table, versioned: bool):
    where = [table.c.id == bindparam("_id")]
    if versioned:
        where.append(table.c.version == bindparam("_version"))
    return update(table).where(*where)


def save(conn: Connection, record: Record) -> int:
    """Insert a new record (setting its id) or update its changed columns. Returns rows written."""
    changes = record.changes()
    if record.is_new:
        changes.pop("id", None)
        record.__dict__["id"] = conn.execute(_insert(record._table), changes).scalar_one()
        record.mark_saved()
        return 1
    if not changes:
        return 0
    count = conn.execute(_update(record._table, False), {**changes, "_id": record.id}).rowcount
    record.mark_saved()
    return count


def save_versioned(conn: Connection, record: Record) -> bool:
    """Update a record whose `version` column guards against lost updates. False when another
    transaction changed the row since it was loaded (nothing is written then)."""
    changes = record.changes()
    params = {**changes, "version": record.version + 1, "_id": record.id, "_version": record.version}
    if conn.execute(_update(record._table, True), params).rowcount != 1:
        return False
    record.version += 1
    record.mark_saved()
    return True
