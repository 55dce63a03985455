"""Database engine and sessions. Services never commit: the boundary (CLI command, request, task) does,
through `session_scope`."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.config import settings

_engines: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_begin(conn) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", True)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN DEFERRED")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # The driver's own transaction handling is switched off so that transactions start with
        # BEGIN IMMEDIATE: SQLite has one writer, and a transaction that reads and then writes would
        # otherwise fail with "database is locked" instead of waiting its turn. Sessions that only
        # read (or that are known to be alone, as in tests) can ask for a deferred BEGIN instead.
        engine = create_engine(url, connect_args={"timeout": 10, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # No pre-ping: it costs a round trip per transaction; stale connections are recycled instead.
    return create_engine(url, pool_recycle=1800, pool_size=10, max_overflow=20)


def get_engine(url: str | None = None) -> Engine:
    url = url or settings().resolved_database_url()
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def session_factory(url: str | None = None, *, immediate: bool = True) -> sessionmaker[Session]:
    """Sessions on the configured database. `immediate=False`: on SQLite, transactions take the write
    lock only when they first write (for readers, which must then not hold a transaction open long)."""
    bind = get_engine(url)
    if not immediate:
        bind = bind.execution_options(sqlite_immediate=False)
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
