"""Accountability over HTTP: records scoped to the caller, the unit's cause and the supervisor's review
appended (and chained), the late-dossier and per-official reports for supervisors."""
from __future__ import annotations

from sqlalchemy import func, select

from engine import dossiers as cmd
from engine.events import verify_chain
from engine.models import AccountabilityEntry
from engine.timers import scan
from tests.conftest import vn
from tests.test_lifecycle import do, receive

pytest_plugins = ["tests.api_support"]


def late_step(db, users, *, counter: str, specialist: str) -> str:
    """Received 23/4 09:00, claimed by the specialist, overdue at the 15:00 scan, finished at 16:00."""
    d = receive(db, users, officer=counter, at=vn(2025, 4, 23, 9, 0))
    do(db, cmd.claim, code=d.code, actor=users[specialist], now=vn(2025, 4, 23, 9, 5))
    scan(db, now=vn(2025, 4, 23, 15, 0))
    db.commit()
    do(db, cmd.complete_step, code=d.code, actor=users[specialist], decision="dat", now=vn(2025, 4, 23, 16, 0))
    return d.code


def test_records_cause_review_and_reports(client, db, users):
    code = late_step(db, users, counter="pp.motcua", specialist="pp.cv")
    other = late_step(db, users, counter="tv.motcua", specialist="tv.cv")
    mine = client("pp.cv").get("/api/audit/records").json()["items"]
    assert [(r["dossier"], r["unit"], r["holder"]["username"]) for r in mine] == [(code, "TS-PP", "pp.cv")]
    assert mine[0]["finished"]["late_hours"] > 0 and mine[0]["cause"] is None
    record = mine[0]["id"]
    supervisor = client("ts.nv.gs")
    everything = supervisor.get("/api/audit/records", params={"from": "2025-04-23", "to": "2025-04-23"}).json()
    assert {r["dossier"] for r in everything["items"]} == {code, other}
    assert supervisor.get("/api/audit/records", params={"unit": "TS-TV"}).json()["items"][0]["dossier"] == other
    assert client("tv.ld").get(f"/api/audit/records/{record}").status_code == 404      # another commune's
    assert client("xts.gs").get("/api/audit/records").json()["items"] == []             # another province's

    assert client("pp.motcua").post(f"/api/audit/records/{record}/cause", json={"cause": "x"}).status_code == 403
    r = client("pp.ld").post(f"/api/audit/records/{record}/cause", json={"cause": "Chờ xác minh bản chính"})
    assert r.status_code == 201 and r.json()["cause"]["cause"] == "Chờ xác minh bản chính"
    bad = supervisor.post(f"/api/audit/records/{record}/review", json={"outcome": "khen"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert client("pp.ld").post(f"/api/audit/records/{record}/review", json={"outcome": "reminded"}).status_code == 403
    r = supervisor.post(f"/api/audit/records/{record}/review", json={"outcome": "reminded", "note": "Nhắc nhở"})
    assert r.status_code == 201
    view = r.json()
    assert view["review"]["outcome"] == "reminded" and view["holder"]["username"] == "pp.cv"
    assert [h["kind"] for h in view["history"]] == ["finished", "cause", "review"]
    assert view["history"][-1]["actor"]["username"] == "ts.nv.gs"
    db.rollback()
    assert db.scalar(select(func.count()).select_from(AccountabilityEntry)) == 4       # two finishes, cause, review
    assert list(verify_chain(db)) == []

    late = supervisor.get("/api/audit/late", params={"from": "2025-04-01", "to": "2025-04-30"})
    assert late.status_code == 200 and late.json()["unit"] == "TS"
    assert {d["code"] for d in late.json()["items"]} == {code, other}     # still open past the appointment
    officials = {o["username"]: o for o in supervisor.get("/api/audit/officials", params={"year": 2025}).json()["items"]}
    assert (officials["pp.cv"]["late_steps"], officials["pp.cv"]["reminders"]) == (1, 1)
    assert officials["tv.cv"]["late_steps"] == 1
    assert client("xts.gs").get("/api/audit/officials", params={"year": 2025, "unit": "TS"}).status_code == 404
    assert client("pp.ld").get("/api/audit/officials", params={"year": 2025}).status_code == 403


def test_bad_periods_are_refused(client):
    supervisor = client("ts.nv.gs")
    backwards = supervisor.get("/api/audit/late", params={"from": "2025-05-01", "to": "2025-04-01"})
    assert backwards.status_code == 422 and backwards.json()["detail"] == "period_invalid"
    ancient = supervisor.get("/api/audit/records", params={"from": "0001-01-01"})
    assert ancient.status_code == 422 and ancient.json()["detail"] == "period_invalid"
    assert supervisor.get("/api/audit/late", params={"from": "2025-04-01"}).status_code == 422      # `to` missing
    assert supervisor.get("/api/audit/records", params={"unit": "KHONG-CO"}).status_code == 404
