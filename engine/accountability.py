"""Accountability for late steps, and the supervisor's views.

A record is written by the timer scan when a step goes overdue (unit, the official holding it, due time).
It is never edited: the finish (working hours late), the cause given by the unit and the supervisor's
review are appended as entries, and each is also an event in the dossier's hash chain, so an edit after
the fact is visible to `motcua audit verify`. The current state of a record is the fold of its entries."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import org, sla
from engine.config import settings
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.models import (REVIEW_OUTCOMES, AccountabilityEntry, AccountabilityRecord, Dossier, ProcedureVersion,
                           Step, User)
from engine.records import Record

A, AE, D, S = AccountabilityRecord.__table__, AccountabilityEntry.__table__, Dossier.__table__, Step.__table__


def finished_entry(conn, step: Record, now: datetime, unit: org.UnitInfo) -> Record | None:
    """When a step that went overdue is finished: how late it was, in working hours of its unit."""
    record_id = conn.execute(select(A.c.id).where(A.c.step_id == step.id)).scalar()
    if record_id is None:
        return None
    late = sla.calendar_of(unit).working_minutes_between(step.due_at, now)
    return Record(AE, dict(record_id=record_id, kind="finished", at=now, actor_id=step.completed_by_id,
                           data={"finished_at": now.isoformat(), "late_minutes": late,
                                 "late_hours": round(late / 60, 2)}), new=True)


def _record(db: Session, record_id: int) -> Record:
    row = db.connection().execute(select(A).where(A.c.id == record_id)).first()
    if row is None:
        raise NotFound(f"Không có hồ sơ trách nhiệm số {record_id}", code="accountability_not_found")
    return Record(A, row._mapping)


def _append(db: Session, record: Record, kind: str, actor: User, data: dict[str, Any], now: datetime) -> Record:
    from engine.dossiers import Command
    run = Command.load_record(db, record.dossier_id, now)
    entry = Record(AE, dict(record_id=record.id, kind=kind, at=now, actor_id=actor.id, data=data), new=True)
    run.written.append(entry)
    run.event(f"accountability_{kind}", actor, {"record_id": record.id, **data})
    run.save()
    return entry


def record_cause(db: Session, *, record_id: int, actor: User, cause: str, now: datetime) -> Record:
    """The unit explains why the step was late (its leader, or the official who held it)."""
    record = _record(db, record_id)
    if actor.id != record.holder_id and not (actor.role == "leader" and actor.unit_id == record.unit_id):
        raise Forbidden("Chỉ người xử lý hoặc lãnh đạo đơn vị được giải trình nguyên nhân trễ hạn",
                        code="cannot_explain")
    if not (cause or "").strip():
        raise InvalidInput("Hãy ghi nguyên nhân trễ hạn", code="cause_missing")
    return _append(db, record, "cause", actor, {"cause": cause.strip()}, now)


def review(db: Session, *, record_id: int, actor: User, outcome: str, note: str | None, now: datetime) -> Record:
    """The supervisor's review: explained, accepted, reminded or a disciplinary proposal."""
    record = _record(db, record_id)
    if actor.role != "supervisor" or not supervises(db, actor, record.unit_id):
        raise Forbidden("Chỉ cán bộ giám sát của cấp quản lý được xem xét hồ sơ trách nhiệm", code="cannot_review")
    if outcome not in REVIEW_OUTCOMES:
        raise InvalidInput(f"Kết quả xem xét phải là một trong: {', '.join(REVIEW_OUTCOMES)}", code="outcome_invalid")
    return _append(db, record, "review", actor, {"outcome": outcome, "note": note}, now)


def supervises(db: Session, supervisor: User, unit_id: int) -> bool:
    """A supervisor oversees the agency their unit belongs to and every unit under it."""
    scope = org.agency_of(db, org.unit(db, supervisor.unit_id)).id
    return unit_id in subtree_ids(db, scope)


def subtree_ids(db: Session, root_id: int) -> set[int]:
    ids, frontier = {root_id}, [root_id]
    while frontier:
        parent = frontier.pop()
        for child in org.children(db, org.unit(db, parent)):
            if child.id not in ids:
                ids.add(child.id)
                frontier.append(child.id)
    return ids


def record_view(db: Session, record_id: int) -> dict[str, Any]:
    """A record with its entries folded: the latest cause and review, the finish."""
    record = _record(db, record_id)
    entries = db.connection().execute(select(AE).where(AE.c.record_id == record_id).order_by(AE.c.id)).all()
    view = {"id": record.id, "dossier_id": record.dossier_id, "step_id": record.step_id, "unit_id": record.unit_id,
            "holder_id": record.holder_id, "due_at": record.due_at, "cause": None, "review": None,
            "finished": None, "history": []}
    for e in entries:
        view[{"finished": "finished", "cause": "cause", "review": "review"}[e.kind]] = dict(e.data, at=e.at)
        view["history"].append({"kind": e.kind, "at": e.at, "actor_id": e.actor_id, "data": e.data})
    return view


# --- supervisor views -------------------------------------------------------------------------------

def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    tz = settings().tz
    return datetime.combine(start, time(0), tz), datetime.combine(end + timedelta(days=1), time(0), tz)


def late_dossiers(db: Session, *, unit_code: str, start: date, end: date, now: datetime) -> list[dict[str, Any]]:
    """Dossiers of the unit and the units under it whose appointment fell in [start, end] and that were
    returned late or are still open past it (a paused dossier is not late for its paused time)."""
    unit = org.unit_by_code(db, unit_code)
    lo, hi = _bounds(start, end)
    rows = db.execute(
        select(D.c.code, D.c.handling_unit_id, D.c.due_at, D.c.finished_at, D.c.status, D.c.paused_at,
               D.c.extended_at, ProcedureVersion.code.label("procedure"))
        .join(ProcedureVersion, ProcedureVersion.id == D.c.procedure_version_id)
        .where(D.c.handling_unit_id.in_(subtree_ids(db, unit.id)), D.c.due_at >= lo, D.c.due_at < hi)
        .order_by(D.c.due_at)).all()
    out = []
    for r in rows:
        end_at = r.finished_at or (None if r.paused_at else now)
        if end_at is None or end_at <= r.due_at or r.status == "stopped":
            continue
        handling = org.unit(db, r.handling_unit_id)
        late = sla.calendar_of(handling).working_minutes_between(r.due_at, end_at)
        out.append({"code": r.code, "procedure": r.procedure, "unit": handling.code, "unit_name": handling.name,
                    "due_at": r.due_at, "finished_at": r.finished_at, "open": r.finished_at is None,
                    "extended": r.extended_at is not None, "late_hours": round(late / 60, 2)})
    return out


@dataclass
class OfficialYear:
    user_id: int
    username: str
    full_name: str
    unit: str
    late_steps: int = 0
    reminders: int = 0
    reminded_previous_year: bool = False
    records: list[int] = field(default_factory=list)

    @property
    def repeat_offender(self) -> bool:
        """The seed plan's rule: reminded last year and late again, repeatedly (two or more), this year."""
        return self.reminded_previous_year and self.late_steps >= 2

    @property
    def may_be_rated_good(self) -> bool:
        return not self.repeat_offender


def officials_report(db: Session, *, year: int, unit_code: str | None = None) -> list[OfficialYear]:
    """Per official: late steps whose deadline fell in the year, reminders received in the year, and
    whether they were reminded the year before."""
    lo, hi = _bounds(date(year - 1, 1, 1), date(year, 12, 31))
    this_year = datetime.combine(date(year, 1, 1), time(0), settings().tz)
    records = db.execute(select(A.c.id, A.c.holder_id, A.c.unit_id, A.c.due_at)
                         .where(A.c.holder_id.is_not(None), A.c.due_at >= lo, A.c.due_at < hi)).all()
    reviews = db.execute(select(AE.c.record_id, AE.c.at, AE.c.data, A.c.holder_id)
                         .join(A, A.c.id == AE.c.record_id)
                         .where(AE.c.kind == "review", AE.c.at >= lo, AE.c.at < hi)).all()
    scope = subtree_ids(db, org.unit_by_code(db, unit_code).id) if unit_code else None
    users = {u.id: u for u in db.scalars(select(User))}
    report: dict[int, OfficialYear] = {}

    def entry(user_id: int) -> OfficialYear:
        if user_id not in report:
            u = users[user_id]
            report[user_id] = OfficialYear(u.id, u.username, u.full_name, org.unit(db, u.unit_id).code)
        return report[user_id]

    for r in records:
        if r.due_at >= this_year and (scope is None or r.unit_id in scope):
            item = entry(r.holder_id)
            item.late_steps += 1
            item.records.append(r.id)
    for rv in reviews:
        if rv.data.get("outcome") != "reminded" or (scope is not None and users[rv.holder_id].unit_id not in scope):
            continue
        if rv.at >= this_year:
            entry(rv.holder_id).reminders += 1
        else:
            entry(rv.holder_id).reminded_previous_year = True
    return sorted(report.values(), key=lambda o: (-o.late_steps, o.username))
