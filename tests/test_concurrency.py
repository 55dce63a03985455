"""Concurrent commands over separate real connections: on PostgreSQL optimistic locking lets exactly one
of two simultaneous completions of a step commit; on both databases concurrent intakes get distinct codes."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from engine import dossiers as cmd
from engine.db import session_scope
from engine.errors import Conflict
from engine.models import Event, Step, User
from tests.conftest import postgres_only, vn
from tests.test_lifecycle import APPLICANT, receive, required



def _users(url) -> dict[str, User]:
    with session_scope(url) as s:
        return {u.username: u for u in s.scalars(select(User))}


@postgres_only
def test_two_officials_complete_the_same_step_at_once(db, db_url, users, monkeypatch):
    d = receive(db, users, code="2.000815", officer="ts.motcua")
    step_id = next(s.id for s in d.steps if s.state == "ready")
    people = _users(db_url)
    # Both commands have loaded the dossier and run the workflow before either writes.
    barrier = threading.Barrier(2, timeout=20)
    original_save = cmd.Command.save

    def save_together(self):
        barrier.wait()
        original_save(self)
    monkeypatch.setattr(cmd.Command, "save", save_together)

    outcomes: list[str] = []

    def complete(username: str) -> None:
        try:
            with session_scope(db_url) as s:
                cmd.complete_step(s, code=d.code, actor=people[username], decision="dat", step_id=step_id,
                                  now=vn(2025, 4, 24, 9, 30))
            outcomes.append("ok")
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=complete, args=(name,)) for name in ("ts.tp.cv", "ts.tp.cv2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "version_conflict"]
    db.expire_all()
    dossier_id = d.id
    assert db.scalar(select(func.count()).select_from(Event)
                     .where(Event.dossier_id == dossier_id, Event.kind == "step_completed")) == 1
    completed = db.scalars(select(Step).where(Step.dossier_id == dossier_id, Step.bpmn_id == "tham_dinh")).all()
    assert [s.state for s in completed] == ["completed"]


def test_concurrent_intake_gets_distinct_serials(db, db_url):
    people = _users(db_url)
    with session_scope(db_url) as s:
        components = required(s, "2.000815")
    codes: list[str] = []
    errors: list[Exception] = []
    start = threading.Barrier(8, timeout=20)

    def intake(i: int) -> None:
        try:
            start.wait()
            with session_scope(db_url) as s:
                codes.append(cmd.receive(s, actor=people["pp.motcua"], procedure_code="2.000815",
                                         applicant=APPLICANT, components=components,
                                         now=vn(2025, 4, 24, 9, i)).dossier.code)
        except Exception as exc:     # collected and asserted below, so a failure names itself
            errors.append(exc)

    threads = [threading.Thread(target=intake, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(codes) == [f"000.35.08.X01-250424-{n:04d}" for n in range(1, 9)]
