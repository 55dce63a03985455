"""Administration over HTTP (accounts, units, the calendar) and on the command line (`motcua users`,
the demo's password). Every test puts the organisation and the calendar file back (`org_guard`)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import datetime

from rich.console import Console
from sqlalchemy import select

from engine.admin import operator_calendar_file
from engine.auth import password_ok
from engine.config import set_settings, settings
from engine.models import User
from tests.conftest import vn

pytest_plugins = ["tests.api_support", "tests.admin_support"]

NEW_USER = {"username": "pp.cv3", "full_name": "Đỗ Thị Mới", "role": "specialist", "unit": "TS-PP",
            "email": "pp.cv3@example.gov.vn", "password": "mat-khau-rieng-1"}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def sign_in(c, username: str, password: str):
    return c.post("/api/auth/token", data={"username": username, "password": password})


def motcua(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_user_lifecycle(org_guard, client, db):
    admin = client("ts.admin")
    r = admin.post("/api/admin/users", json=NEW_USER)
    assert r.status_code == 201, r.text
    assert r.json() == {"username": "pp.cv3", "full_name": "Đỗ Thị Mới", "role": "specialist", "unit": "TS-PP",
                        "email": "pp.cv3@example.gov.vn", "active": True, "has_password": True}
    anonymous = client()
    tokens = sign_in(anonymous, "pp.cv3", NEW_USER["password"]).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert anonymous.get("/api/auth/me", headers=bearer).json()["unit"]["code"] == "TS-PP"

    changed = admin.patch("/api/admin/users/pp.cv3", json={"role": "leader", "email": None})
    assert (changed.json()["role"], changed.json()["email"]) == ("leader", None)
    assert admin.post("/api/admin/users/pp.cv3/disable").json()["active"] is False
    # Disabled: the token in hand stops working, sessions end, signing in is refused. Nothing is deleted.
    assert anonymous.get("/api/auth/me", headers=bearer).json()["detail"] == "user_disabled"
    assert anonymous.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    refused = sign_in(anonymous, "pp.cv3", NEW_USER["password"])
    assert refused.status_code == 401 and refused.json()["detail"] == "login_failed"
    assert admin.post("/api/admin/users/pp.cv3/enable").json()["active"] is True
    assert sign_in(anonymous, "pp.cv3", NEW_USER["password"]).status_code == 200

    assert admin.post("/api/admin/users/pp.cv3/password", json={"password": "mat-khau-moi-2"}).status_code == 200
    assert sign_in(anonymous, "pp.cv3", NEW_USER["password"]).status_code == 401
    assert sign_in(anonymous, "pp.cv3", "mat-khau-moi-2").status_code == 200
    listed = {u["username"] for u in admin.get("/api/admin/users").json()}
    assert {"pp.cv3", "ts.motcua", "tv.cv"} <= listed and not {"xts.cv", "gl.admin"} & listed
    assert {u["username"] for u in admin.get("/api/admin/users", params={"unit": "TS-TV"}).json()} == \
        {"tv.motcua", "tv.cv", "tv.ld"}


def test_bad_account_requests_change_nothing(org_guard, client, db):
    admin = client("ts.admin")
    cases = [
        (admin.post("/api/admin/users", json={**NEW_USER, "password": "ngan"}), 422, "validation_failed"),
        (admin.post("/api/admin/users", json={**NEW_USER, "username": "Có Dấu"}), 422, "username_invalid"),
        (admin.post("/api/admin/users", json={**NEW_USER, "email": "khong-phai-thu"}), 422, "email_invalid"),
        (admin.post("/api/admin/users", json={**NEW_USER, "unit": "XTS-VHXH"}), 404, "unknown_unit"),
        (admin.post("/api/admin/users", json={**NEW_USER, "username": "pp.cv"}), 409, "username_taken"),
        (admin.post("/api/admin/users", json={**NEW_USER, "role": "king"}), 422, "validation_failed"),
        (admin.patch("/api/admin/users/xts.cv", json={"role": "leader"}), 404, "unknown_user"),
        (admin.patch("/api/admin/users/ts.admin", json={"role": "counter"}), 403, "cannot_change_self"),
        (admin.post("/api/admin/users/ts.admin/disable"), 403, "cannot_change_self"),
        (admin.post("/api/admin/users/pp.cv/password", json={"password": "x"}), 422, "validation_failed"),
        (client("ts.nv.gs").post("/api/admin/users", json=NEW_USER), 403, "role_not_allowed"),
    ]
    for r, status, detail in cases:
        assert (r.status_code, r.json()["detail"]) == (status, detail), r.text
        assert r.headers["content-type"] == "application/problem+json"
    db.rollback()
    assert db.scalar(select(User).where(User.username == "pp.cv3")) is None
    assert db.scalar(select(User.role).where(User.username == "ts.admin")) == "admin"


def test_units_of_the_admins_agency(org_guard, client):
    admin = client("ts.admin")
    codes = {u["code"] for u in admin.get("/api/admin/units").json()}
    assert {"TS", "TS-PP", "TS-TV", "TS-TP"} <= codes and not {"XTS", "GL", "BD-SXD"} & codes
    r = admin.post("/api/admin/units", json={"code": "TS-PP-BPMC", "name": "Bộ phận một cửa thị trấn Phú Phong",
                                             "level": "department", "parent": "TS-PP", "one_stop": True,
                                             "fields": ["Chứng thực"]})
    assert r.status_code == 201 and r.json()["parent"] == "TS-PP" and r.json()["org_set"] == "tay-son-2024"
    assert admin.get("/api/admin/units/TS-PP-BPMC").json()["fields"] == ["Chứng thực"]
    hours = admin.patch("/api/admin/units/TS-PP-BPMC", json={"office_hours": "07:30-11:30,13:30-17:00"})
    assert hours.status_code == 200 and hours.json()["office_hours"] == "07:30-11:30,13:30-17:00"
    bad = admin.patch("/api/admin/units/TS-PP-BPMC", json={"office_hours": "17:00-07:00"})
    assert bad.status_code == 422 and bad.json()["detail"] == "invalid_office_hours"
    assert admin.get("/api/admin/units/TS-PP-BPMC").json()["office_hours"] == "07:30-11:30,13:30-17:00"
    cases = [
        (admin.post("/api/admin/units", json={"code": "XTS-MOI", "name": "x", "level": "department",
                                              "parent": "XTS"}), 404, "unknown_unit"),
        (admin.post("/api/admin/units", json={"code": "TS-PP", "name": "x", "level": "department",
                                              "parent": "TS"}), 409, "unit_code_taken"),
        (admin.post("/api/admin/units", json={"code": "TS-HUYEN", "name": "x", "level": "district",
                                              "parent": "TS"}), 422, "unit_level_invalid"),
        (admin.get("/api/admin/units/GL"), 404, "unknown_unit"),
    ]
    for r, status, detail in cases:
        assert (r.status_code, r.json()["detail"]) == (status, detail), r.text


def test_a_day_off_moves_the_next_appointments(org_guard, client, api_clock, db_url):
    # Thursday 24/4/2025 15:30, after the certified copy's 15:00 cut-off: due the next working day.
    api_clock.now = vn(2025, 4, 24, 15, 30)
    applicant = {"full_name": "Nguyễn Văn An", "citizen_id": "052088004321"}
    body = {"procedure_code": "2.000815", "applicant": applicant, "components": ["TP1"]}
    counter = client("pp.motcua")
    before = counter.post("/api/dossiers", json=body).json()
    assert when(before["due_at"]) == vn(2025, 4, 25, 17, 0)
    admin = client("ts.admin")
    r = admin.post("/api/admin/calendar", json={"date": "2025-04-25", "working": False,
                                                "note": "Nghỉ bù theo thông báo thử nghiệm"})
    assert r.status_code == 201, r.text
    # Friday is off now: the next working day is the Saturday 26/4 worked in the 2025 swap.
    after = counter.post("/api/dossiers", json=body).json()
    assert when(after["due_at"]) == vn(2025, 4, 26, 17, 0)
    assert when(counter.get(f"/api/dossiers/{before['code']}").json()["due_at"]) == when(before["due_at"])  # not moved
    days = {d["date"]: d for d in admin.get("/api/admin/calendar", params={"year": 2025}).json()["days"]}
    assert (days["2025-04-25"]["working"], days["2025-04-25"]["source"]) == (False, "operator")
    assert days["2025-04-26"]["source"] == "national"
    again = admin.post("/api/admin/calendar", json={"date": "2025-04-25", "working": False, "note": "lần hai"})
    assert again.status_code == 409 and again.json()["detail"] == "calendar_day_unchanged"
    assert admin.post("/api/admin/calendar", json={"date": "2025-13-01", "working": False,
                                                   "note": "x"}).status_code == 422
    assert client("ts.nv.gs").post("/api/admin/calendar", json={"date": "2025-04-28", "working": False,
                                                                "note": "x"}).status_code == 403
    # Another process reads the operator file when it starts.
    days_cli = motcua("calendar", "days", "--year", "2025", MOTCUA_DATA_DIR=str(settings().data_dir),
                      MOTCUA_DATABASE_URL=db_url)
    assert any(line.startswith("2025-04-25") and "nghỉ" in line for line in days_cli.stdout.splitlines())
    # Undo: the same Friday declared worked again removes the operator's day off.
    assert admin.post("/api/admin/calendar", json={"date": "2025-04-25", "working": True,
                                                   "note": "Hủy nghỉ bù"}).status_code == 201
    assert "2025-04-25" not in operator_calendar_file().read_text()
    assert when(counter.post("/api/dossiers", json=body).json()["due_at"]) == vn(2025, 4, 25, 17, 0)


def test_set_password_on_the_command_line(org_guard, db, db_url):
    env = {"MOTCUA_DATABASE_URL": db_url, "MOTCUA_DATA_DIR": str(settings().data_dir)}
    done = motcua("users", "set-password", "ts.admin", "--password-stdin", stdin="mat-khau-quan-tri\n", **env)
    assert done.returncode == 0, done.stderr
    db.rollback()
    assert password_ok(db.scalar(select(User.password_hash).where(User.username == "ts.admin")), "mat-khau-quan-tri")
    short = motcua("users", "set-password", "ts.admin", "--password-stdin", stdin="ngan\n", **env)
    assert short.returncode == 2 and "ít nhất 8 ký tự" in short.stderr
    assert motcua("users", "set-password", "khong.co", "--password-stdin", stdin="mat-khau-dai-du\n", **env).returncode == 2
    listing = motcua("users", "list", **env)
    assert listing.returncode == 0 and "ts.admin" in listing.stdout and "xts.gs" in listing.stdout


def test_demo_password_generated_once(org_guard, db, tmp_path):
    from engine.demo import demo_passwords
    original = settings()
    set_settings(original.model_copy(update={"data_dir": tmp_path}))
    try:
        db.execute(User.__table__.update().where(User.username == "xts.gs").values(password_hash=None))
        db.commit()
        shown = Console(record=True, width=200)
        demo_passwords(shown)
        path = tmp_path / "demo-password.txt"
        password = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(password) >= 12
        text = shown.export_text()
        assert "mật khẩu trong" in text and str(path) in text
        db.rollback()
        first = db.scalar(select(User.password_hash).where(User.username == "xts.gs"))
        assert password_ok(first, password)
        demo_passwords(Console(record=True))                     # a second run changes nothing
        db.rollback()
        assert path.read_text().strip() == password
        assert db.scalar(select(User.password_hash).where(User.username == "xts.gs")) == first
    finally:
        set_settings(original)
