"""The API served by a real uvicorn on loopback: a lifecycle end to end, and 20 officials completing the
same step at once — exactly one succeeds, the others get 409, one event is written."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from engine.models import Dossier, Event
from tests.api_support import PASSWORD

pytest_plugins = ["tests.api_support"]
APPLICANT = {"full_name": "Lê Thị Hoa", "citizen_id": "052088004321"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(db, db_url, passwords, tmp_path):
    port = free_port()
    env = {**os.environ, "MOTCUA_DATABASE_URL": db_url, "MOTCUA_DATA_DIR": str(tmp_path),
           "MOTCUA_SCAN_INTERVAL_SECONDS": "3600"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_listening(proc, base)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_until_listening(proc: subprocess.Popen, base: str) -> None:
    """Poll /healthz until the server answers (at most 30 s), failing early if the process died."""
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            try:
                proc.wait(timeout=0.1)          # returns only if it exited
                pytest.fail(f"uvicorn exited: {proc.stdout.read().decode()}")
            except subprocess.TimeoutExpired:
                pass
    pytest.fail("uvicorn did not start within 30 s")


def login(base: str, username: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=30)
    r = c.post("/api/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return c


def ready_step(c: httpx.Client, code: str) -> dict:
    return next(s for s in c.get(f"/api/dossiers/{code}").json()["steps"] if s["state"] == "ready")


def test_lifecycle_against_uvicorn(server):
    counter, specialist, leader = (login(server, u) for u in ("ts.motcua", "ts.tp.cv", "ts.tp.ld"))
    r = counter.post("/api/dossiers", json={"procedure_code": "2.000884", "applicant": APPLICANT,
                                            "components": ["TP1", "TP2"]})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    for client, decision in ((specialist, "dat"), (leader, "dong_y")):
        step = ready_step(client, code)
        assert client.post(f"/api/dossiers/{code}/steps/{step['id']}/complete",
                           json={"decision": decision}).status_code == 200
    returned = counter.post(f"/api/dossiers/{code}/return", json={})
    assert returned.json()["status"] == "returned"
    assert counter.get("/readyz").json()["database"] == "ok"
    metrics = httpx.get(f"{server}/metrics").text
    assert 'motcua_http_requests_total{method="POST",route="/api/dossiers/{code}/return",status="200"}' in metrics


def test_twenty_concurrent_completions(server, db):
    counter = login(server, "ts.motcua")
    code = counter.post("/api/dossiers", json={"procedure_code": "2.000884", "applicant": APPLICANT,
                                               "components": ["TP1", "TP2"]}).json()["code"]
    officials = [login(server, "ts.tp.cv") for _ in range(20)]
    step = ready_step(officials[0], code)
    version = officials[0].get(f"/api/dossiers/{code}").json()["version"]

    def complete(c: httpx.Client) -> int:
        return c.post(f"/api/dossiers/{code}/steps/{step['id']}/complete",
                      json={"decision": "dat", "expected_version": version}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(complete, officials))
    assert sorted(statuses) == [200] + [409] * 19
    db.rollback()
    dossier_id = db.scalar(select(Dossier.id).where(Dossier.code == code))
    assert db.scalar(select(func.count()).select_from(Event)
                     .where(Event.dossier_id == dossier_id, Event.kind == "step_completed")) == 1
