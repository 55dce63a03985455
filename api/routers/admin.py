"""Administration, for admins only: the units and users of their agency (the agency of the admin's unit
and every unit under it; anything else answers 404 as if it did not exist), and the working calendar.

The calendar is national (one per set of office hours), so any admin may add a day off or a worked day;
it is written to `<data_dir>/calendar-overrides.yaml` and takes effect at once in this process, in other
API processes and workers on restart or after `motcua sla recompute`, which also moves the deadlines of
open dossiers (a new day never moves deadlines already set on its own)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from api.deps import Now, Session, commit, require
from api.schemas import Strict
from engine import admin
from engine.models import User

router = APIRouter(prefix="/api/admin", tags=["admin"])
Admin = Annotated[User, Depends(require("admin"))]
Level = Literal["province", "district", "commune", "department"]
Role = Literal["counter", "specialist", "leader", "supervisor", "admin"]
Name = Annotated[str, Field(min_length=1, max_length=255)]
UnitCode = Annotated[str, Field(min_length=1, max_length=64)]
Fields = Annotated[list[Annotated[str, Field(max_length=255)]], Field(max_length=50)]
Hours = Annotated[str, Field(max_length=64, description="e.g. 07:30-11:30,13:30-17:00")]
Email = Annotated[str, Field(max_length=255)]
Password = Annotated[str, Field(min_length=8, max_length=128)]


class UnitIn(Strict):
    code: UnitCode
    name: Name
    level: Level
    parent: UnitCode
    agency_code: Annotated[str, Field(max_length=64)] | None = None
    one_stop: bool = False
    office_hours: Hours | None = None
    fields: Fields = []


class UnitPatch(Strict):
    name: Name | None = None
    agency_code: Annotated[str, Field(max_length=64)] | None = None
    one_stop: bool | None = None
    office_hours: Hours | None = None
    fields: Fields | None = None


class UserIn(Strict):
    username: Annotated[str, Field(min_length=3, max_length=64)]
    full_name: Name
    role: Role
    unit: UnitCode
    email: Email | None = None
    password: Password


class UserPatch(Strict):
    full_name: Name | None = None
    role: Role | None = None
    unit: UnitCode | None = None
    email: Email | None = None


class PasswordIn(Strict):
    password: Password


class CalendarDayIn(Strict):
    date: dt.date
    working: bool = Field(..., description="true: a worked weekend day; false: a weekday off")
    note: str = Field(..., min_length=1, max_length=500, description="the announcement it comes from")


# --- units ------------------------------------------------------------------------------------------

@router.get("/units")
def units(user: Admin, db: Session) -> list[dict]:
    return [admin.unit_view(db, u) for u in admin.list_units(db, actor=user)]


@router.get("/units/{code}")
def unit(code: str, user: Admin, db: Session) -> dict:
    return admin.unit_view(db, admin.get_unit(db, actor=user, code=code))


@router.post("/units", status_code=201)
def create_unit(body: UnitIn, user: Admin, db: Session) -> dict:
    """A unit under one of yours (a department, or an agency of a lower level)."""
    made = admin.create_unit(db, actor=user, **body.model_dump())
    commit(db)
    return admin.unit_view(db, made)


@router.patch("/units/{code}")
def update_unit(code: str, body: UnitPatch, user: Admin, db: Session) -> dict:
    changed = admin.update_unit(db, actor=user, code=code, **_given(body))
    commit(db)
    return admin.unit_view(db, changed)


# --- users ------------------------------------------------------------------------------------------

@router.get("/users")
def users(user: Admin, db: Session, unit: str | None = Query(None, max_length=64)) -> list[dict]:
    return [admin.user_view(db, u) for u in admin.list_users(db, actor=user, unit=unit)]


@router.post("/users", status_code=201)
def create_user(body: UserIn, user: Admin, db: Session) -> dict:
    made = admin.create_user(db, actor=user, **body.model_dump())
    commit(db)
    return admin.user_view(db, made)


@router.patch("/users/{username}")
def update_user(username: str, body: UserPatch, user: Admin, db: Session) -> dict:
    """Role, unit, e-mail or full name (not your own role or unit)."""
    changed = admin.update_user(db, actor=user, username=username, **_given(body))
    commit(db)
    return admin.user_view(db, changed)


@router.post("/users/{username}/disable")
def disable_user(username: str, user: Admin, db: Session, now: Now) -> dict:
    """The account stays (its history names it) but can no longer sign in; its sessions end now."""
    changed = admin.set_active(db, actor=user, username=username, active=False, now=now)
    commit(db)
    return admin.user_view(db, changed)


@router.post("/users/{username}/enable")
def enable_user(username: str, user: Admin, db: Session, now: Now) -> dict:
    changed = admin.set_active(db, actor=user, username=username, active=True, now=now)
    commit(db)
    return admin.user_view(db, changed)


@router.post("/users/{username}/password")
def set_password(username: str, body: PasswordIn, user: Admin, db: Session, now: Now) -> dict:
    """A new password (at least 8 characters); the user's sessions end."""
    changed = admin.set_password(db, actor=user, username=username, password=body.password, now=now)
    commit(db)
    return admin.user_view(db, changed)


# --- calendar ---------------------------------------------------------------------------------------

@router.get("/calendar")
def calendar(user: Admin, year: int = Query(..., ge=1901, le=2100)) -> dict:
    """Weekdays off and worked weekend days in force for the year, with their reasons and source."""
    return {"year": year, "days": admin.calendar_days(year=year)}


@router.post("/calendar", status_code=201)
def add_calendar_day(body: CalendarDayIn, user: Admin) -> dict:
    return admin.add_calendar_day(day=body.date, working=body.working, note=body.note)


def _given(body: Strict) -> dict:
    """The fields the client sent (an explicit null clears an optional value such as the e-mail)."""
    return body.model_dump(exclude_unset=True)
