"""Administration without HTTP: the units and users of an agency, passwords, and the operator's calendar
overrides. Service functions take keyword arguments and never commit; the boundary (a route, the CLI) does.

Scope: an admin manages the units of their agency (the nearest non-department unit above their own) and
every unit under it, and the users of those units — the same scope a supervisor reads
(engine.queries.scope_units). A unit or user outside it is reported exactly as one that does not exist.

The organisation files (data/org/*.yaml, `motcua org load`, `motcua demo`) are upserted over what is
stored, so reloading one resets the units and users it names (including a user disabled here)."""
from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import org
from engine.accountability import subtree_ids
from engine.auth import hash_password
from engine.calendar import (MAX_YEAR, MIN_YEAR, WorkingCalendar, calendar_for, invalidate_calendars, load_overrides,
                             parse_office_hours)
from engine.config import settings
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.models import LEVELS, ROLES, RefreshToken, Unit, User
from engine.queries import scope_units

log = logging.getLogger("motcua.admin")

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
UNIT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Control characters: never in a name, and PostgreSQL refuses NUL in text outright.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A unit that is an agency sits below its parent agency's level; departments go anywhere.
RANK = {"province": 0, "district": 1, "commune": 2}


# --- units ------------------------------------------------------------------------------------------

def unit_view(db: Session, u: Unit) -> dict[str, Any]:
    parent = org.unit(db, u.parent_id).code if u.parent_id else None
    return {"code": u.code, "name": u.name, "level": u.level, "parent": parent, "agency_code": u.agency_code,
            "one_stop": u.one_stop, "office_hours": u.office_hours, "fields": list(u.fields or []),
            "org_set": u.org_set}


def list_units(db: Session, *, actor: User) -> list[Unit]:
    return list(db.scalars(select(Unit).where(Unit.id.in_(scope_units(db, actor))).order_by(Unit.id)))


def get_unit(db: Session, *, actor: User, code: str) -> Unit:
    """A unit in the actor's scope; any other code is 404, whether it exists or not."""
    u = None if CONTROL.search(code) else db.scalar(select(Unit).where(Unit.code == code))
    if u is None or u.id not in scope_units(db, actor):
        raise NotFound(f"Không có đơn vị mã {code} trong phạm vi quản trị của bạn", code="unknown_unit")
    return u


def create_unit(db: Session, *, actor: User, code: str, name: str, level: str, parent: str,
                agency_code: str | None = None, one_stop: bool = False, office_hours: str | None = None,
                fields: list[str] | None = None) -> Unit:
    """A new unit under one of the actor's units; it joins the parent's organisation set."""
    above = get_unit(db, actor=actor, code=parent)
    if not UNIT_CODE.match(code or ""):
        raise InvalidInput("Mã đơn vị chỉ gồm chữ, số, dấu chấm, gạch ngang, gạch dưới (tối đa 64 ký tự)",
                           code="unit_code_invalid")
    if db.scalar(select(Unit.id).where(Unit.code == code)) is not None:
        raise Conflict(f"Mã đơn vị {code} đã được dùng", code="unit_code_taken")
    _check_level(db, level, above)
    u = Unit(code=code, parent_id=above.id, level=level, org_set=above.org_set, valid_from=above.valid_from,
             valid_to=above.valid_to, sample=False)
    _apply_unit(u, name=name, agency_code=agency_code, one_stop=one_stop, office_hours=office_hours,
                fields=fields or [])
    db.add(u)
    db.flush()
    org.invalidate_units()
    log.info("unit created", extra={"unit": code, "by": actor.username})
    return u


def update_unit(db: Session, *, actor: User, code: str, **changes: Any) -> Unit:
    """Change name, agency code, one-stop flag, office hours or competent fields of a unit in scope.
    Office hours change the deadlines computed from now on, not those already set."""
    allowed = {"name", "agency_code", "one_stop", "office_hours", "fields"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(f"Không sửa được: {', '.join(sorted(unknown))}", code="unit_field_not_editable")
    u = get_unit(db, actor=actor, code=code)
    _apply_unit(u, **changes)
    db.flush()
    org.invalidate_units()
    log.info("unit updated", extra={"unit": code, "by": actor.username, "fields": sorted(changes)})
    return u


def _check_level(db: Session, level: str, parent: Unit) -> None:
    if level not in LEVELS:
        raise InvalidInput(f"Cấp đơn vị phải là một trong: {', '.join(LEVELS)}", code="unit_level_invalid")
    agency = org.agency_of(db, org.unit(db, parent.id))
    if level != "department" and RANK.get(level, 0) <= RANK.get(agency.level, 0):
        raise InvalidInput(f"Đơn vị cấp {level} không thể trực thuộc {agency.name} (cấp {agency.level})",
                           code="unit_level_invalid")


def _plain(values: dict[str, Any]) -> None:
    """Refuse control characters in any text given (a list's items included)."""
    for key, value in values.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and CONTROL.search(text):
                raise InvalidInput(f"Trường {key} chứa ký tự điều khiển không hợp lệ", code="control_character")


def _apply_unit(u: Unit, **values: Any) -> None:
    _plain(values)
    if "name" in values:
        if not (values["name"] or "").strip():
            raise InvalidInput("Tên đơn vị không được để trống", code="unit_name_missing")
        u.name = values["name"].strip()
    if "office_hours" in values and values["office_hours"] is not None:
        parse_office_hours(values["office_hours"])       # refuse bad hours now, not at the first deadline
    for key in ("agency_code", "office_hours"):
        if key in values:
            setattr(u, key, values[key] or None)
    if "one_stop" in values:
        u.one_stop = bool(values["one_stop"])
    if "fields" in values:
        u.fields = [f.strip() for f in values["fields"] or [] if f and f.strip()]


# --- users ------------------------------------------------------------------------------------------

def user_view(db: Session, u: User) -> dict[str, Any]:
    """What an admin sees of an account: never the password hash, only whether there is one."""
    return {"username": u.username, "full_name": u.full_name, "role": u.role, "unit": org.unit(db, u.unit_id).code,
            "email": u.email, "active": u.active, "has_password": u.password_hash is not None}


def list_users(db: Session, *, actor: User, unit: str | None = None) -> list[User]:
    """Users of the actor's units, or of one unit in scope and the units under it."""
    ids = scope_units(db, actor)
    if unit:
        ids &= subtree_ids(db, get_unit(db, actor=actor, code=unit).id)
    return list(db.scalars(select(User).where(User.unit_id.in_(ids)).order_by(User.username)))


def get_user(db: Session, *, actor: User, username: str) -> User:
    u = None if CONTROL.search(username) else db.scalar(select(User).where(User.username == username))
    if u is None or u.unit_id not in scope_units(db, actor):
        raise NotFound(f"Không có người dùng {username} trong phạm vi quản trị của bạn", code="unknown_user")
    return u


def create_user(db: Session, *, actor: User, username: str, full_name: str, role: str, unit: str,
                password: str, email: str | None = None) -> User:
    if not USERNAME.match(username or ""):
        raise InvalidInput("Tên đăng nhập gồm 3–64 ký tự: chữ thường không dấu, số, dấu chấm, gạch ngang, gạch dưới",
                           code="username_invalid")
    home = get_unit(db, actor=actor, code=unit)
    if db.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"Tên đăng nhập {username} đã được dùng", code="username_taken")
    u = User(username=username, unit_id=home.id, active=True, password_hash=hash_password(password))
    _apply_user(u, full_name=full_name, role=role, email=email)
    db.add(u)
    db.flush()
    log.info("user created", extra={"username": username, "by": actor.username})
    return u


def update_user(db: Session, *, actor: User, username: str, **changes: Any) -> User:
    """Change full name, role, unit (one in scope) or e-mail. An admin cannot change their own role or
    unit: that would take away the access they need to undo it."""
    allowed = {"full_name", "role", "unit", "email"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(f"Không sửa được: {', '.join(sorted(unknown))}", code="user_field_not_editable")
    u, fields = get_user(db, actor=actor, username=username), sorted(changes)
    if u.id == actor.id and ({"role", "unit"} & set(changes)):
        raise Forbidden("Không tự đổi vai trò hoặc đơn vị của chính mình; hãy nhờ quản trị viên khác",
                        code="cannot_change_self")
    if "unit" in changes:
        u.unit_id = get_unit(db, actor=actor, code=changes.pop("unit") or "").id
    _apply_user(u, **changes)
    db.flush()
    log.info("user updated", extra={"username": username, "by": actor.username, "fields": fields})
    return u


def set_active(db: Session, *, actor: User, username: str, active: bool, now: datetime) -> User:
    """Disable (or enable again) an account without deleting it: its history keeps naming it. A disabled
    user's tokens stop working at once (every request checks the account) and its sessions are ended."""
    u = get_user(db, actor=actor, username=username)
    if u.id == actor.id and not active:
        raise Forbidden("Không tự khóa tài khoản của chính mình", code="cannot_change_self")
    u.active = active
    if not active:
        _end_sessions(db, u, now)
    db.flush()
    log.info("user %s", "enabled" if active else "disabled", extra={"username": username, "by": actor.username})
    return u


def set_password(db: Session, *, username: str, password: str, now: datetime, actor: User | None = None) -> User:
    """A new password; the account's sessions end (refresh tokens revoked). With an actor (the API),
    the user must be in the actor's scope; without one (the command line), any user."""
    u = get_user(db, actor=actor, username=username) if actor else org.user_by_username(db, username)
    u.password_hash = hash_password(password)
    _end_sessions(db, u, now)
    db.flush()
    log.info("password set", extra={"username": username, "by": actor.username if actor else "cli"})
    return u


def _apply_user(u: User, **values: Any) -> None:
    _plain(values)
    if "full_name" in values:
        if not (values["full_name"] or "").strip():
            raise InvalidInput("Họ tên không được để trống", code="full_name_missing")
        u.full_name = values["full_name"].strip()
    if "role" in values:
        if values["role"] not in ROLES:
            raise InvalidInput(f"Vai trò phải là một trong: {', '.join(ROLES)}", code="role_invalid")
        u.role = values["role"]
    if "email" in values:
        email = (values["email"] or "").strip() or None
        if email and not EMAIL.match(email):
            raise InvalidInput(f"Địa chỉ thư điện tử không hợp lệ: {email}", code="email_invalid")
        u.email = email


def _end_sessions(db: Session, u: User, now: datetime) -> None:
    db.execute(update(RefreshToken).where(RefreshToken.user_id == u.id, RefreshToken.revoked_at.is_(None))
               .values(revoked_at=now))


# --- calendar overrides -----------------------------------------------------------------------------
# The announced swap days ship with the code (data/calendar); days an operator adds live in one file in
# the data directory, which Settings.calendar_files() adds to the calendar when it exists. This process
# sees a new day at once (invalidate_calendars); other processes on restart, or `motcua sla recompute`,
# which also moves the deadlines of open dossiers. Deadlines already set are not moved here.

_file_lock = threading.Lock()


def operator_calendar_file() -> Path:
    return settings().data_dir / "calendar-overrides.yaml"


def calendar_days(*, year: int) -> list[dict[str, Any]]:
    """The weekdays off and the worked weekend days in force for a year, each with its reason and
    whether it comes from the operator file."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(f"Năm phải trong khoảng {MIN_YEAR}–{MAX_YEAR}", code="calendar_out_of_range")
    path = operator_calendar_file()
    added = load_overrides([path]) if path.is_file() else {}
    return [{"date": d.date, "working": d.working, "reason": d.reason,
             "source": "operator" if d.date in added else "national"} for d in calendar_for().days(year)]


def add_calendar_day(*, day: date, working: bool, note: str) -> dict[str, Any]:
    """Declare a weekday off (working=False) or a worked weekend day (working=True) in the operator file."""
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidInput(f"Năm phải trong khoảng {MIN_YEAR}–{MAX_YEAR}", code="calendar_out_of_range")
    if not (note or "").strip():
        raise InvalidInput("Hãy ghi căn cứ (thông báo, quyết định) của ngày nghỉ hoặc ngày làm bù",
                           code="calendar_note_missing")
    _plain({"note": note})
    if calendar_for().is_working_day(day) == working:
        state = "ngày làm việc" if working else "ngày nghỉ"
        raise Conflict(f"Ngày {day:%d/%m/%Y} đã là {state}", code="calendar_day_unchanged")
    path = operator_calendar_file()
    with _file_lock, _locked(path):
        data = _read_operator_file(path)
        section = data.setdefault(day.year, {})
        for kind in ("working_days", "days_off"):       # an earlier entry of the operator for this day
            section[kind] = [e for e in section.get(kind, []) if e["date"] != day]
        # The file holds departures from the national calendar only: undoing a day the operator added
        # removes its entry instead of adding the opposite one.
        if _national_calendar(day.year).is_working_day(day) != working:
            kind = "working_days" if working else "days_off"
            section[kind] = sorted([*section[kind], {"date": day, "note": note.strip()}], key=lambda e: e["date"])
        _write_operator_file(path, {y: {k: v for k, v in s.items() if v} for y, s in data.items() if any(s.values())})
    invalidate_calendars()
    log.info("calendar day added", extra={"date": day.isoformat(), "working": working})
    return {"date": day, "working": working, "note": note.strip(), "file": str(path)}


def _national_calendar(year: int) -> WorkingCalendar:
    """The calendar of one year without the operator file (a one-year table is quick to build)."""
    s = settings()
    files = [p for p in s.calendar_files() if p != operator_calendar_file()]
    return WorkingCalendar(tz=s.tz, office_hours=parse_office_hours(s.office_hours), overrides=load_overrides(files),
                           first_year=year, last_year=year)


class _locked:
    """An exclusive lock across processes (two API workers adding a day at the same time)."""

    def __init__(self, path: Path):
        self.path = path.with_name(path.name + ".lock")

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _read_operator_file(path: Path) -> dict[int, dict[str, list[dict[str, Any]]]]:
    if not path.is_file():
        return {}
    load_overrides([path])          # a hand-edited file that is broken is reported, not overwritten
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {int(y): {k: [_entry(e) for e in v or []] for k, v in (s or {}).items()} for y, s in raw.items()}


def _entry(e: Any) -> dict[str, Any]:
    """A hand-written entry as the file's own: a date (even if quoted) and a note."""
    e = e if isinstance(e, dict) else {"date": e}
    day = e["date"] if isinstance(e["date"], date) else date.fromisoformat(str(e["date"]).strip())
    return {"date": day, "note": str(e.get("note") or "")}


def _write_operator_file(path: Path, data: dict) -> None:
    """Write next to the file, check it reads back as a calendar, then replace the file in one step."""
    header = "# Days off and worked days added by the operator (motcua admin API). Read with the national file.\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=True), encoding="utf-8")
    load_overrides([tmp])
    os.replace(tmp, path)
