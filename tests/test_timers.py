"""SLA timers with an injected clock: warnings and overdue fire at the right working minute, exactly once,
never for paused time; an overdue step gets an accountability record; a crashed scan leaves nothing."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import textwrap

from sqlalchemy import func, select

from engine import dossiers as cmd
from engine.config import Settings, set_settings, settings
from engine.db import session_factory
from engine.models import AccountabilityEntry, AccountabilityRecord, Event, TimerFiring
from engine.timers import scan, scan_all
from tests.conftest import postgres_only, vn
from tests.test_lifecycle import do, receive


def fired(db, target: str | None = None) -> list[tuple[str, str, object]]:
    q = select(TimerFiring.target, TimerFiring.kind, TimerFiring.fired_at).order_by(TimerFiring.id)
    if target:
        q = q.where(TimerFiring.target == target)
    return [tuple(r) for r in db.execute(q)]


def run_scan(db, *args) -> None:
    scan(db, now=vn(*args))
    db.commit()
    db.expunge_all()


def test_appointment_warning_and_overdue_across_the_april_holidays(db, users):
    # Permit received Thu 24/4/2025 09:30 at the district (07:00–11:30, 13:30–17:00: 480 minutes a day).
    # 15 working days (30/4, 1/5 holidays, Fri 2/5 swapped off, Sat 26/4 worked) → due Mon 19/5 17:00.
    # Warning one working day before: the end of the 14th working day, Fri 16/5 17:00.
    d = receive(db, users, code="XD.GPXD.01", officer="ts.motcua", at=vn(2025, 4, 24, 9, 30))
    assert (d.due_at, d.warn_at) == (vn(2025, 5, 19, 17, 0), vn(2025, 5, 16, 17, 0))
    run_scan(db, 2025, 5, 16, 16, 59)
    assert fired(db, "dossier") == []
    run_scan(db, 2025, 5, 16, 17, 0)
    assert fired(db, "dossier") == [("dossier", "warning", vn(2025, 5, 16, 17, 0))]
    run_scan(db, 2025, 5, 19, 16, 59)
    assert len(fired(db, "dossier")) == 1
    run_scan(db, 2025, 5, 19, 17, 0)
    run_scan(db, 2025, 5, 20, 9, 0)                      # again: nothing fires twice
    assert [k for _, k, _ in fired(db, "dossier")] == ["warning", "overdue"]
    events = db.scalars(select(Event.kind).where(Event.kind.like("dossier_%")).order_by(Event.seq)).all()
    assert events == ["dossier_warning", "dossier_overdue"]
    from engine.events import verify_chain
    assert list(verify_chain(db)) == []


def test_paused_time_is_never_late(db, users):
    # Certified copy at Phú Phong, Thu 24/4/2025 09:00: due 17:00. A supplement request at 10:00 leaves
    # 300 working minutes; the citizen returns Mon 28/4 08:00 → due 15:00 that day (continue).
    d = receive(db, users)
    do(db, cmd.request_supplement, code=d.code, actor=users["pp.cv"], missing=["Bản chính"], note="Mờ",
       now=vn(2025, 4, 24, 10, 0))
    for day in ((2025, 4, 24, 17, 30), (2025, 4, 25, 17, 0), (2025, 4, 28, 7, 59)):
        run_scan(db, *day)
    assert fired(db) == []
    do(db, cmd.record_supplement, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 28, 8, 0))
    d = cmd.get_dossier(db, d.code)
    # Warning 2 working hours before: 08:00 + (300 − 120) minutes → 11:00.
    assert (d.due_at, d.warn_at) == (vn(2025, 4, 28, 15, 0), vn(2025, 4, 28, 11, 0))
    run_scan(db, 2025, 4, 28, 14, 59)
    assert [k for _, k, _ in fired(db, "dossier")] == ["warning"]
    run_scan(db, 2025, 4, 28, 15, 0)
    assert fired(db, "dossier")[-1] == ("dossier", "overdue", vn(2025, 4, 28, 15, 0))


def test_overdue_step_gets_an_accountability_record_with_its_holder(db, users):
    # Certified copy at the district (07:00–11:30, 13:30–17:00), Tue 5/3/2024 09:00, due 17:00: 360 working
    # minutes; the appraisal's share is 60% = 216 minutes → 09:00–11:30 (150) + 66 → 14:36.
    d = receive(db, users, officer="ts.motcua", at=vn(2024, 3, 5, 9, 0))
    step = next(s for s in d.steps if s.state == "ready")
    assert step.due_at == vn(2024, 3, 5, 14, 36)
    do(db, cmd.claim, code=d.code, actor=users["ts.tp.cv"], now=vn(2024, 3, 5, 9, 10))
    run_scan(db, 2024, 3, 5, 14, 35)
    assert db.scalar(select(func.count()).select_from(AccountabilityRecord)) == 0
    run_scan(db, 2024, 3, 5, 14, 36)
    record = db.scalar(select(AccountabilityRecord))
    assert (record.holder_id, record.unit_id, record.due_at) == (users["ts.tp.cv"].id, step.unit_id, step.due_at)
    # Finished at 15:30: 14:36 → 15:30 is 54 working minutes late.
    do(db, cmd.complete_step, code=d.code, actor=users["ts.tp.cv"], decision="dat", now=vn(2024, 3, 5, 15, 30))
    entry = db.scalar(select(AccountabilityEntry))
    assert (entry.kind, entry.data["late_minutes"], entry.data["late_hours"]) == ("finished", 54, 0.9)
    kinds = db.scalars(select(Event.kind).order_by(Event.id)).all()
    assert "step_overdue" in kinds and kinds[-1] == "step_completed"


def test_a_scan_that_fails_half_way_writes_nothing(db, users, monkeypatch):
    code = receive(db, users, officer="ts.motcua", at=vn(2024, 3, 5, 9, 0)).code
    import engine.timers as timers
    original = timers._write

    def crash(db_, dossiers, steps, rows):
        original(db_, dossiers, steps, rows)
        raise RuntimeError("worker died")
    monkeypatch.setattr(timers, "_write", crash)
    try:
        scan(db, now=vn(2024, 3, 5, 17, 30))
    except RuntimeError:
        db.rollback()
    assert fired(db) == [] and db.scalar(select(func.count()).select_from(AccountabilityRecord)) == 0
    monkeypatch.setattr(timers, "_write", original)
    run_scan(db, 2024, 3, 5, 17, 30)
    assert sorted(k for _, k, _ in fired(db)) == ["overdue", "overdue", "warning", "warning"]
    assert cmd.get_dossier(db, code).last_event_seq == 5


def test_a_killed_worker_leaves_nothing_and_the_next_scan_fires_once(db, users, db_url):
    receive(db, users, officer="ts.motcua", at=vn(2024, 3, 5, 9, 0))
    db.commit()      # end this session's transaction: on SQLite it would hold the write lock
    script = textwrap.dedent(f"""
        import os, signal
        from datetime import datetime
        from zoneinfo import ZoneInfo
        from engine.config import Settings, set_settings
        set_settings(Settings(database_url={db_url!r}))
        import engine.timers as timers
        original = timers._write
        def die(db, dossiers, steps, rows):
            original(db, dossiers, steps, rows)      # everything written, not committed
            os.kill(os.getpid(), signal.SIGKILL)
        timers._write = die
        timers.scan_all(now=datetime(2024, 3, 5, 17, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert fired(db) == []
    db.commit()
    result = scan_all(now=vn(2024, 3, 5, 17, 30), url=db_url)
    assert (result.warnings, result.overdue) == (2, 2)
    assert scan_all(now=vn(2024, 3, 5, 17, 31), url=db_url).warnings == 0


@postgres_only
def test_two_scanners_at_once_fire_each_timer_exactly_once(db, users, db_url):
    for minute in range(12):
        receive(db, users, officer="ts.motcua", at=vn(2024, 3, 5, 9, minute))
    barrier = threading.Barrier(2, timeout=30)
    results = []

    def scanner():
        barrier.wait()
        results.append(scan_all(now=vn(2024, 3, 5, 17, 30), batch=5, url=db_url))
    threads = [threading.Thread(target=scanner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # 12 dossiers × (appointment + appraisal step) × (warning + overdue)
    assert sum(r.warnings + r.overdue for r in results) == 48
    rows = db.execute(select(TimerFiring.target, TimerFiring.target_id, TimerFiring.kind)).all()
    assert len(rows) == 48 and len(set(rows)) == 48


def test_recompute_after_a_holiday_is_announced(db, users, tmp_path):
    # Permit due Mon 19/5/2025 17:00. The operator adds a day off on Wed 14/5 after intake.
    d = receive(db, users, code="XD.GPXD.01", officer="ts.motcua", at=vn(2025, 4, 24, 9, 30))
    extra = tmp_path / "extra.yaml"
    extra.write_text("2025:\n  days_off:\n    - {date: 2025-05-14, note: 'Nghỉ đột xuất (thử)'}\n", encoding="utf-8")
    before = settings()
    from engine.calendar import invalidate_calendars
    try:
        set_settings(Settings(**{**before.model_dump(), "calendar_extra": str(extra)}))
        invalidate_calendars()
        changed = cmd.recompute_open(session_factory(before.database_url), reason="Thông báo nghỉ 14/5",
                                     now=vn(2025, 5, 2, 8, 0))
    finally:
        set_settings(before)
        invalidate_calendars()
    assert [c["code"] for c in changed] == [d.code]
    d = cmd.get_dossier(db, d.code)
    assert d.due_at == vn(2025, 5, 20, 17, 0)
    event = db.scalar(select(Event).where(Event.kind == "deadlines_recomputed"))
    assert event.data["reason"] == "Thông báo nghỉ 14/5"
    assert event.data["appointment"] == {"from": vn(2025, 5, 19, 17, 0).isoformat(), "to": vn(2025, 5, 20, 17, 0).isoformat()}


def test_notifications_are_written_with_the_change(db, users):
    from engine.models import OutboxMessage
    applicant = {"full_name": "Trần Thị Bích", "citizen_id": "052190001234", "email": "bich@example.vn"}
    d = receive(db, users, officer="ts.motcua", applicant=applicant)
    do(db, cmd.assign, code=d.code, actor=users["ts.tp.ld"], assignee=users["ts.tp.cv"], now=vn(2025, 4, 24, 9, 5))
    do(db, cmd.complete_step, code=d.code, actor=users["ts.tp.cv"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    do(db, cmd.complete_step, code=d.code, actor=users["ts.tp.ld"], decision="dong_y", now=vn(2025, 4, 24, 10, 0))
    rows = db.execute(select(OutboxMessage.recipient, OutboxMessage.subject).order_by(OutboxMessage.id)).all()
    assert rows == [("bich@example.vn", f"Đã tiếp nhận hồ sơ {d.code}"),
                    ("ts.tp.cv@example.gov.vn", f"Được giao xử lý hồ sơ {d.code}"),
                    ("bich@example.vn", f"Hồ sơ {d.code} đã có kết quả")]
