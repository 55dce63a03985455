"""Accountability records, the supervisor's review, and the per-official figures on a hand-built year.

The fixture (all certified copies, same day, appraisal share 60%):
  2024: Lê Thị Hoa (ts.tp.cv) late once; the supervisor reminds her on 10/3/2024.
        Phạm Quốc Bảo (ts.tp.cv2) late once; reminded on 10/3/2024.
  2025: Hoa late twice                         → reminded last year and late again twice: no "good" rating.
        Bảo late once                          → reminded last year but late only once: may be rated good.
        Mai Văn Phúc (tv.cv, a commune) late twice, never reminded → may be rated good.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from engine import dossiers as cmd
from engine.accountability import late_dossiers, officials_report, record_cause, record_view, review
from engine.errors import Forbidden, InvalidInput
from engine.events import verify_chain
from engine.models import AccountabilityRecord
from engine.timers import scan
from tests.conftest import vn
from tests.test_lifecycle import do, receive


def late_step(db, users, *, specialist: str, day: tuple, officer: str = "ts.motcua", finish: bool = True) -> str:
    """A certified copy received at 09:00 whose appraisal is done at 16:00, after its 14:36 deadline
    (the scan at 15:00 marks it overdue). The dossier is left waiting for the leader."""
    d = receive(db, users, officer=officer, at=vn(*day, 9, 0))
    do(db, cmd.claim, code=d.code, actor=users[specialist], now=vn(*day, 9, 5))
    scan(db, now=vn(*day, 15, 0))
    db.commit()
    if finish:
        do(db, cmd.complete_step, code=d.code, actor=users[specialist], decision="dat", now=vn(*day, 16, 0))
    return d.code


def record_of(db, code: str) -> AccountabilityRecord:
    dossier = cmd.get_dossier(db, code)
    return db.scalar(select(AccountabilityRecord).where(AccountabilityRecord.dossier_id == dossier.id))


@pytest.fixture
def year(db, users):
    hoa_2024 = late_step(db, users, specialist="ts.tp.cv", day=(2024, 3, 5))
    bao_2024 = late_step(db, users, specialist="ts.tp.cv2", day=(2024, 3, 6))
    for code in (hoa_2024, bao_2024):
        review(db, record_id=record_of(db, code).id, actor=users["ts.nv.gs"], outcome="reminded",
               note="Nhắc nhở lần 1", now=vn(2024, 3, 10, 9, 0))
        db.commit()
    codes = [late_step(db, users, specialist="ts.tp.cv", day=(2025, 3, 4)),
             late_step(db, users, specialist="ts.tp.cv", day=(2025, 3, 5)),
             late_step(db, users, specialist="ts.tp.cv2", day=(2025, 3, 6)),
             late_step(db, users, specialist="tv.cv", day=(2025, 3, 7), officer="tv.motcua"),
             late_step(db, users, specialist="tv.cv", day=(2025, 3, 10), officer="tv.motcua", finish=False)]
    return {"2024": [hoa_2024, bao_2024], "2025": codes}


def test_repeat_offenders(db, users, year):
    report = {o.username: o for o in officials_report(db, year=2025)}
    hoa, bao, phuc = report["ts.tp.cv"], report["ts.tp.cv2"], report["tv.cv"]
    assert (hoa.late_steps, hoa.reminders, hoa.reminded_previous_year, hoa.repeat_offender) == (2, 0, True, True)
    assert (bao.late_steps, bao.reminded_previous_year, bao.repeat_offender, bao.may_be_rated_good) == (1, True, False, True)
    assert (phuc.late_steps, phuc.reminded_previous_year, phuc.repeat_offender) == (2, False, False)
    last_year = {o.username: o for o in officials_report(db, year=2024)}
    assert (last_year["ts.tp.cv"].late_steps, last_year["ts.tp.cv"].reminders) == (1, 1)
    # Scoped to the commune: only its official.
    assert [o.username for o in officials_report(db, year=2025, unit_code="TS-TV")] == ["tv.cv"]


def test_record_history_is_appended_and_chained(db, users, year):
    code = year["2025"][0]
    record = record_of(db, code)
    with pytest.raises(Forbidden):                  # another department's official cannot explain it
        record_cause(db, record_id=record.id, actor=users["ts.ktht.cv"], cause="x", now=vn(2025, 3, 6, 8, 0))
    db.rollback()
    record_cause(db, record_id=record.id, actor=users["ts.tp.ld"], cause="Chờ xác minh bản chính",
                 now=vn(2025, 3, 6, 8, 0))
    db.commit()
    with pytest.raises(InvalidInput):
        review(db, record_id=record.id, actor=users["ts.nv.gs"], outcome="forgiven", note=None, now=vn(2025, 3, 7, 8, 0))
    db.rollback()
    with pytest.raises(Forbidden):                  # a supervisor of another province
        review(db, record_id=record.id, actor=users["gl.gs"], outcome="reminded", note=None, now=vn(2025, 3, 7, 8, 0))
    db.rollback()
    review(db, record_id=record.id, actor=users["ts.nv.gs"], outcome="accepted", note="Lý do khách quan",
           now=vn(2025, 3, 7, 8, 0))
    db.commit()
    view = record_view(db, record.id)
    # 14:36 → 16:00 is 84 working minutes.
    assert view["finished"]["late_minutes"] == 84
    assert view["cause"]["cause"] == "Chờ xác minh bản chính" and view["review"]["outcome"] == "accepted"
    assert [h["kind"] for h in view["history"]] == ["finished", "cause", "review"]
    assert list(verify_chain(db, code)) == []


def test_late_dossiers_by_unit_and_period(db, users, year):
    # The 2025 dossiers are still open on 11/3, past their 17:00 appointments: all late.
    rows = late_dossiers(db, unit_code="TS", start=vn(2025, 1, 1, 0, 0).date(), end=vn(2025, 12, 31, 0, 0).date(),
                         now=vn(2025, 3, 11, 9, 0))
    assert sorted(r["code"] for r in rows) == sorted(year["2025"])
    commune = late_dossiers(db, unit_code="TS-TV", start=vn(2025, 3, 1, 0, 0).date(),
                            end=vn(2025, 3, 31, 0, 0).date(), now=vn(2025, 3, 11, 9, 0))
    assert [r["unit"] for r in commune] == ["TS-TV", "TS-TV"]
    # 7/3 17:00 → 11/3 09:00 at the commune (07:00–11:30, 13:30–17:00): Mon 10/3 (480) + Tue 11/3 07:00–09:00 (120)
    assert commune[0]["late_hours"] == 10.0


def test_audit_cli(db, db_url, users, year):
    def env_run(*args):
        return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
                              env={**os.environ, "MOTCUA_DATABASE_URL": db_url})
    officials = env_run("audit", "officials", "--year", "2025")
    assert officials.returncode == 0, officials.stderr
    hoa = next(line for line in officials.stdout.splitlines() if "ts.tp.cv " in line or "ts.tp.cv │" in line)
    assert "có" in hoa
    late = env_run("audit", "late", "--unit", "TS", "--from", "2025-01-01", "--to", "2025-12-31")
    assert late.returncode == 0 and "5 hồ sơ trễ hạn" in late.stdout
    bad = env_run("audit", "late", "--unit", "TS", "--from", "01/01/2025", "--to", "2025-12-31")
    assert bad.returncode == 2
