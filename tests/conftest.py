"""Test set-up. The suite runs once per database: MOTCUA_TEST_DATABASE=sqlite (default) or a PostgreSQL
URL (the Makefile and .ci/run run both). The organisation and catalog are loaded once per run; each test
starts with no dossiers. Time is injected: commands get `now=` from the test, never the wall clock."""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from engine.config import REPO_ROOT, Settings, set_settings
from engine.db import dispose_engines, get_engine, session_factory

TEST_DATABASE = os.environ.get("MOTCUA_TEST_DATABASE", "sqlite")
IS_PG = TEST_DATABASE.startswith("postgresql")
VN = ZoneInfo("Asia/Ho_Chi_Minh")
# Loaded once per run; every other table is emptied after each test.
KEPT_TABLES = {"units", "users", "procedure_versions"}

postgres_only = pytest.mark.skipif(not IS_PG, reason="needs PostgreSQL (MOTCUA_TEST_DATABASE=postgresql+psycopg://…)")


def vn(*args) -> datetime:
    """A local (Asia/Ho_Chi_Minh) time: vn(2025, 4, 24, 9, 0)."""
    return datetime(*args, tzinfo=VN)


class Clock:
    """The time tests control; commands receive clock.now, never the wall clock."""

    def __init__(self, start: datetime):
        self.now = start

    def advance(self, **kwargs) -> datetime:
        self.now = self.now + timedelta(**kwargs)
        return self.now

    def set(self, *args) -> datetime:
        self.now = vn(*args)
        return self.now


def _reset_schema(url: str) -> None:
    engine = get_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def db_url(tmp_path_factory) -> str:
    from engine.catalog import load_catalog
    from engine.migrate import upgrade
    from engine.org import load_org_dir

    data_dir = tmp_path_factory.mktemp("motcua")
    url = TEST_DATABASE if IS_PG else f"sqlite:///{data_dir / 'test.db'}"
    set_settings(Settings(database_url=url, data_dir=data_dir))
    if IS_PG:
        _reset_schema(url)
    upgrade(url)
    session = session_factory(url)()
    load_org_dir(session, REPO_ROOT / "data" / "org")
    load_catalog(session, REPO_ROOT / "bpmn", now=vn(2018, 1, 1, 0, 0))
    session.commit()
    session.close()
    yield url
    dispose_engines()
    set_settings(None)


@pytest.fixture
def db(db_url):
    # Deferred transactions: a test's session often reads while another connection writes.
    session = session_factory(db_url, immediate=False)()
    yield session
    session.rollback()
    session.close()
    from engine.models import Base
    with get_engine(db_url).begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEPT_TABLES:
                conn.execute(table.delete())


@pytest.fixture
def users(db):
    from sqlalchemy import select
    from engine.models import User
    return {u.username: u for u in db.scalars(select(User))}


@pytest.fixture
def clock():
    return Clock(vn(2025, 4, 24, 9, 0))
