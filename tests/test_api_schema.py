"""Property-based tests of the whole API from its OpenAPI schema (schemathesis, in process through ASGI):
whatever a client sends that the schema allows — and the boundary and invalid values schemathesis derives
from it — the answer is never a server error. Each operation runs signed in as an admin and as a counter
officer, so that requests get past the role checks into the engine. Bounded (a few examples per
operation, a fixed seed) to stay within a couple of minutes per database."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from api.deps import get_now
from tests.conftest import vn

pytest_plugins = ["tests.api_support", "tests.admin_support"]

CONFIG = schemathesis.Config.from_dict({"seed": 5, "generation": {"max-examples": 25}})
# The schema is read once, at collection: one test per operation. The app reads the database settings
# per request, so it serves the test database once the session fixture has set it.
APP = create_app(timers=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)
NOW = vn(2025, 4, 24, 9, 0)


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    """Signed in once per user for the module (argon2 is slow on purpose; the clock stands still)."""
    return {}


@pytest.fixture(params=["ts.admin", "pp.motcua"])
def bearer(request, db, passwords, org_guard, dev_keys, tokens) -> dict[str, str]:
    # org_guard: an admin's requests may create units and users, change passwords or add calendar days.
    APP.dependency_overrides[get_now] = lambda: NOW
    username = request.param
    if username not in tokens:
        from fastapi.testclient import TestClient
        with TestClient(APP) as c:
            r = c.post("/api/auth/token", data={"username": username, "password": passwords})
            assert r.status_code == 200, r.text
            tokens[username] = r.json()["access_token"]
    return {"Authorization": f"Bearer {tokens[username]}"}


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, bearer):
    case.call_and_validate(headers=bearer, checks=[not_a_server_error])
