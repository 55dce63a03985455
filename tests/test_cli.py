"""The command line, run as a user would: exit codes and what it prints."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine import dossiers as cmd
from tests.conftest import IS_PG, vn
from tests.test_lifecycle import do, receive


def motcua(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_calendar_due_examples():
    # Thursday 24/4/2025 + 2 working days: Friday 25/4, then the swap Saturday 26/4 is worked.
    r = motcua("calendar", "due", "--received", "2025-04-24T09:00+07:00", "--working-days", "2")
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "2025-04-26T17:00:00+07:00"
    # 4 working hours from 16:00 Thursday: 1 hour Thursday, then 07:30–10:30 Friday.
    r = motcua("calendar", "due", "--received", "2025-04-24T16:00+07:00", "--working-hours", "4")
    assert r.stdout.strip().splitlines()[-1] == "2025-04-25T10:30:00+07:00"
    # A same-day procedure received after its 15:00 cut-off: next working day.
    r = motcua("calendar", "due", "--received", "2025-04-24T15:30+07:00", "--procedure", "2.000815")
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "2025-04-25T17:00:00+07:00"


def test_calendar_bad_usage_exits_2():
    assert motcua("calendar", "due", "--received", "2025-04-24T09:00", "--working-days", "2").returncode == 2
    assert motcua("calendar", "due", "--received", "2025-04-24T09:00+07:00").returncode == 2
    assert motcua("calendar", "due", "--received", "yesterday", "--working-days", "1").returncode == 2


def test_calendar_days_lists_holidays_and_swaps():
    r = motcua("calendar", "days", "--year", "2026")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert any(line.startswith("2026-02-17") and "nghỉ" in line for line in lines)
    assert any(line.startswith("2026-08-22") and "làm bù" in line for line in lines)
    assert any(line.startswith("2026-08-31") and "nghỉ" in line for line in lines)


def test_dossier_show_and_audit_verify(db, users, db_url):
    d = receive(db, users)
    do(db, cmd.request_supplement, code=d.code, actor=users["pp.cv"], missing=["Bản chính"], note="Bản chính mờ",
       now=vn(2025, 4, 24, 10, 0))
    env = {"MOTCUA_DATABASE_URL": db_url}
    r = motcua("dossier", "show", d.code, env=env)
    assert r.returncode == 0, r.stderr
    assert "chờ bổ sung" in r.stdout and "Phiếu kiểm soát" in r.stdout and "Bản chính mờ" in r.stdout
    assert "********4321" in r.stdout and "052088004321" not in r.stdout     # citizen ID masked
    assert motcua("audit", "verify", env=env).returncode == 0
    missing = motcua("dossier", "show", "KHONG-CO", env=env)
    assert missing.returncode == 1 and "Không tìm thấy hồ sơ" in missing.stderr


@pytest.mark.skipif(IS_PG, reason="the embedded default is SQLite; run once")
def test_demo_is_safe_to_run_twice(tmp_path):
    env = {"MOTCUA_DATA_DIR": str(tmp_path), "MOTCUA_DATABASE_URL": ""}
    first = motcua("demo", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("sample dossier ") == 6              # the last line names today's three
    second = motcua("demo", env=env)
    assert second.returncode == 0 and "already present (8)" in second.stdout
    assert motcua("audit", "verify", env=env).returncode == 0


@pytest.mark.skipif(IS_PG, reason="each case makes its own SQLite file; run once")
def test_a_database_without_the_schema_says_to_upgrade(tmp_path):
    from engine.migrate import upgrade
    empty = {"MOTCUA_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    r = motcua("dossier", "show", "XTS-250424-0001", env=empty)
    assert r.returncode == 1 and "schema_outdated" in r.stderr and "motcua db upgrade" in r.stderr
    assert "Traceback" not in r.stderr
    old_url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(old_url, "0005")
    r = motcua("serve", "--port", "1", env={"MOTCUA_DATABASE_URL": old_url})      # refuses before listening
    assert r.returncode == 1 and "0005" in r.stderr and "0006" in r.stderr and "motcua db upgrade" in r.stderr
    assert motcua("db", "upgrade", env={"MOTCUA_DATABASE_URL": old_url}).returncode == 0
    r = motcua("dossier", "show", "XTS-250424-0001", env={"MOTCUA_DATABASE_URL": old_url})
    assert r.returncode == 1 and "Không tìm thấy hồ sơ" in r.stderr                # upgraded: an ordinary answer


@pytest.mark.skipif(IS_PG, reason="no database is touched; run once")
def test_an_unreachable_database_is_named_without_a_traceback():
    r = motcua("dossier", "show", "XTS-250424-0001",
               env={"MOTCUA_DATABASE_URL": "postgresql+psycopg://motcua:secret@127.0.0.1:1/motcua"})
    assert r.returncode == 1 and "database_unreachable" in r.stderr and "127.0.0.1:1" in r.stderr
    assert "secret" not in r.stderr and "Traceback" not in r.stderr
