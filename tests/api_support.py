"""HTTP test support: the app on the test database with a clock the test controls, and clients signed in
as any demo user. Test modules load it with `pytest_plugins = ["tests.api_support"]`."""
from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from engine.auth import hash_password
from engine.db import session_scope
from engine.models import User
from tests.conftest import vn

PASSWORD = "mat-khau-thu-nghiem"


@pytest.fixture(scope="session")
def passwords(db_url):
    """Every user of the sample organisations gets the same test password (hashed once per run)."""
    with session_scope(db_url) as s:
        s.execute(update(User).values(password_hash=hash_password(PASSWORD)))
    return PASSWORD


class ApiClock:
    def __init__(self, now: datetime):
        self.now = now


@pytest.fixture
def api_clock():
    return ApiClock(vn(2025, 4, 24, 9, 0))


@pytest.fixture
def app(db, db_url, passwords, api_clock):     # db: the tables are emptied after the test
    from api.app import create_app
    from api.deps import get_now
    application = create_app(timers=False)
    application.dependency_overrides[get_now] = lambda: api_clock.now
    return application


@pytest.fixture
def client(app):
    """client(username) → a TestClient with that user's bearer token; client() → anonymous."""
    made = []

    def make(username: str | None = None) -> TestClient:
        c = TestClient(app, raise_server_exceptions=False)
        made.append(c)
        if username:
            r = c.post("/api/auth/token", data={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        return c
    yield make
    for c in made:
        c.close()


@pytest.fixture
def console(app):
    """console(username) → a TestClient signed in to the web console (session cookie; redirects not
    followed), with its CSRF token as `.csrf`."""
    import re
    made = []

    def make(username: str) -> TestClient:
        c = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        made.append(c)
        r = c.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
        assert r.status_code == 303, r.text
        page = c.get("/khong-co")          # any page of a signed-in user: the header's logout form has the token
        c.csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return c
    yield make
    for c in made:
        c.close()
