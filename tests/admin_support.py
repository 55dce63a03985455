"""Fixtures for tests that change what the suite keeps between tests: the organisation (units, users,
passwords), the procedure catalog and the operator's calendar file. `org_guard` puts them back as they
were. Loaded with `pytest_plugins = ["tests.admin_support"]`."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import documents
from engine.admin import operator_calendar_file
from engine.calendar import invalidate_calendars
from engine.db import get_engine
from engine.models import Base, ProcedureVersion, Unit, User
from engine.org import invalidate_units
from tests.conftest import KEPT_TABLES, vn

UNITS, USERS, VERSIONS = Unit.__table__, User.__table__, ProcedureVersion.__table__


@pytest.fixture
def org_guard(db, db_url):
    """Snapshot units, users and procedure versions, and the calendar file; restore them after the test."""
    engine = get_engine(db_url)
    with engine.connect() as conn:
        units = [dict(r._mapping) for r in conn.execute(select(UNITS))]
        users = [dict(r._mapping) for r in conn.execute(select(USERS))]
        versions = set(conn.execute(select(VERSIONS.c.id)).scalars())
    calendar = operator_calendar_file()
    calendar_before = calendar.read_bytes() if calendar.exists() else None
    yield
    db.rollback()                   # the test's session holds no lock while the rows are put back
    with engine.begin() as conn:
        # What refers to users and units goes first (the db fixture would empty these tables next anyway).
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEPT_TABLES:
                conn.execute(table.delete())
        conn.execute(USERS.delete().where(USERS.c.id.not_in([u["id"] for u in users])))
        for row in users:
            conn.execute(USERS.update().where(USERS.c.id == row["id"]).values(**row))
        for new in sorted(set(conn.execute(select(UNITS.c.id)).scalars()) - {u["id"] for u in units}, reverse=True):
            conn.execute(UNITS.delete().where(UNITS.c.id == new))       # children (higher ids) first
        for row in units:
            conn.execute(UNITS.update().where(UNITS.c.id == row["id"]).values(**row))
        conn.execute(VERSIONS.delete().where(VERSIONS.c.id.not_in(versions)))
    if calendar_before is None:
        calendar.unlink(missing_ok=True)
    else:
        calendar.write_bytes(calendar_before)
    invalidate_calendars()
    invalidate_units()


@pytest.fixture(scope="module")
def dev_keys(db_url):
    """The development signing key in the test data directory, valid around the tests' clock."""
    return documents.ensure_dev_keys(now=vn(2025, 1, 2, 8, 0), force=True)
