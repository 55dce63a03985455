"""Accountability for late steps, and the supervisor's reports.

Who may do what:
- list and read records: every official, within their scope — supervisors and admins their agency and
  the units under it, others their own unit — plus the records of steps they held themselves;
- give the cause: the official who held the step or a leader of its unit (checked by the engine);
- review: supervisors of the agency above the unit;
- late dossiers and the per-official report: supervisors and admins, for a unit in their scope
  (by default their agency).
A record or unit outside the caller's scope answers 404, as if it did not exist."""
from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from api.deps import CurrentUser, Now, Session, commit, require
from api.schemas import Strict
from engine import access
from engine import accountability as audit
from engine.models import User

router = APIRouter(prefix="/api/audit", tags=["audit"])
Overseer = Annotated[User, Depends(require("supervisor", "admin"))]
Supervisor = Annotated[User, Depends(require("supervisor"))]
UnitCode = Annotated[str | None, Query(max_length=64, description="a unit code; the units under it are included")]
From = Annotated[date | None, Query(alias="from")]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]        # beyond it the database refuses the number itself


class CauseIn(Strict):
    cause: str = Field(..., min_length=1, max_length=2000)


class ReviewIn(Strict):
    outcome: Literal["explained", "accepted", "reminded", "disciplinary_proposal"]
    note: str | None = Field(None, max_length=2000)


@router.get("/records")
def records(user: CurrentUser, db: Session, unit: UnitCode = None, start: From = None, to: date | None = None,
            limit: int = Query(200, ge=1, le=1000)) -> dict:
    """Records by the due time of the late step (from/to: local days), newest first."""
    return {"items": access.records(db, actor=user, unit=unit, start=start, end=to, limit=limit)}


@router.get("/records/{record_id}")
def record(record_id: RowId, user: CurrentUser, db: Session) -> dict:
    return access.record(db, actor=user, record_id=record_id)


@router.post("/records/{record_id}/cause", status_code=201)
def cause(record_id: RowId, body: CauseIn, user: CurrentUser, db: Session, now: Now) -> dict:
    """The unit's explanation, appended to the record and to the dossier's event chain."""
    access.record(db, actor=user, record_id=record_id)
    audit.record_cause(db, record_id=record_id, actor=user, cause=body.cause, now=now)
    commit(db)
    return access.record(db, actor=user, record_id=record_id)


@router.post("/records/{record_id}/review", status_code=201)
def review(record_id: RowId, body: ReviewIn, user: Supervisor, db: Session, now: Now) -> dict:
    access.record(db, actor=user, record_id=record_id)
    audit.review(db, record_id=record_id, actor=user, outcome=body.outcome, note=body.note, now=now)
    commit(db)
    return access.record(db, actor=user, record_id=record_id)


@router.get("/late")
def late(user: Overseer, db: Session, now: Now, start: Annotated[date, Query(alias="from")], to: date,
         unit: UnitCode = None) -> dict:
    """Dossiers whose appointment fell in [from, to] and that were returned late or are still open past it."""
    target = access.overseen_unit(db, actor=user, code=unit)
    access.period(start, to)
    return {"unit": target.code, "from": start, "to": to,
            "items": audit.late_dossiers(db, unit_code=target.code, start=start, end=to, now=now)}


@router.get("/officials")
def officials(user: Overseer, db: Session, year: int = Query(..., ge=2000, le=2100), unit: UnitCode = None) -> dict:
    """Per official: late steps and reminders in the year; reminded last year and late again (two or more
    late steps) means no "good" rating."""
    target = access.overseen_unit(db, actor=user, code=unit)
    rows = audit.officials_report(db, year=year, unit_code=target.code)
    return {"unit": target.code, "year": year,
            "items": [{**asdict(o), "repeat_offender": o.repeat_offender, "may_be_rated_good": o.may_be_rated_good}
                      for o in rows]}
