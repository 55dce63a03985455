"""Organisation as data: units in a tree, users with a role and a unit, loaded from YAML (data/org/)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import parse_office_hours
from engine.errors import InvalidInput, NotFound
from engine.models import LEVELS, ROLES, Unit, User


def load_org_file(db: Session, path: Path) -> tuple[int, int]:
    """Create or update the units and users of one organisation file. Returns (units, users)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    org_set = data["set"]
    default_hours = data.get("office_hours")
    count_units = 0

    def visit(spec: dict[str, Any], parent: Unit | None) -> None:
        nonlocal count_units
        unit = _upsert_unit(db, spec, parent, org_set, data, default_hours)
        count_units += 1
        for child in spec.get("children", []):
            visit(child, unit)

    for spec in data["units"]:
        visit(spec, None)
    db.flush()
    for spec in data.get("users", []):
        _upsert_user(db, spec)
    db.flush()
    invalidate_units()
    return count_units, len(data.get("users", []))


def _upsert_unit(db, spec, parent, org_set, data, default_hours) -> Unit:
    if spec.get("level") not in LEVELS:
        raise InvalidInput(f"Đơn vị {spec.get('code')}: cấp '{spec.get('level')}' không hợp lệ (dùng {LEVELS})")
    hours = spec.get("office_hours", default_hours)
    if hours:
        parse_office_hours(hours)   # refuse bad data at load time, not at the first deadline
    unit = db.scalar(select(Unit).where(Unit.code == spec["code"])) or Unit(code=spec["code"])
    unit.name = spec["name"]
    unit.level = spec["level"]
    unit.parent = parent
    unit.agency_code = spec.get("agency_code")
    unit.one_stop = bool(spec.get("one_stop", False))
    unit.office_hours = hours
    unit.fields = list(spec.get("fields", []))
    unit.org_set = org_set
    unit.valid_from = data.get("valid_from")
    unit.valid_to = data.get("valid_to")
    unit.sample = bool(spec.get("sample", False))
    unit.place = spec.get("place")
    db.add(unit)
    db.flush()
    return unit


def _upsert_user(db, spec) -> None:
    if spec["role"] not in ROLES:
        raise InvalidInput(f"Người dùng {spec['username']}: vai trò '{spec['role']}' không hợp lệ (dùng {ROLES})")
    unit = db.scalar(select(Unit).where(Unit.code == spec["unit"]))
    if unit is None:
        raise InvalidInput(f"Người dùng {spec['username']}: không có đơn vị {spec['unit']}")
    user = db.scalar(select(User).where(User.username == spec["username"])) or User(username=spec["username"])
    user.full_name = spec["full_name"]
    user.role = spec["role"]
    user.unit_id = unit.id
    user.email = spec.get("email")
    if "active" in spec or user.id is None:     # don't re-enable someone an admin disabled
        user.active = spec.get("active", True)
    db.add(user)


def load_org_dir(db: Session, directory: Path) -> list[tuple[str, int, int]]:
    return [(p.name, *load_org_file(db, p)) for p in sorted(directory.glob("*.yaml"))]


# --- lookups used by the lifecycle ------------------------------------------------------------------
# Organisation data changes rarely and is read by every command, so it is kept in a per-database cache
# of plain records, refreshed after a minute or when this process loads organisation files.

@dataclass(frozen=True)
class UnitInfo:
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    agency_code: str | None
    office_hours: str | None
    one_stop: bool
    fields: tuple[str, ...]
    place: str | None = None


_CACHE_SECONDS = 60.0
_cache: dict[str, tuple[float, dict[int, UnitInfo], dict[str, UnitInfo]]] = {}


def invalidate_units() -> None:
    _cache.clear()


def _units(db: Session) -> tuple[dict[int, UnitInfo], dict[str, UnitInfo]]:
    key = str(db.get_bind().url)
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < _CACHE_SECONDS:
        return hit[1], hit[2]
    rows = db.execute(select(Unit.id, Unit.code, Unit.name, Unit.level, Unit.parent_id, Unit.agency_code,
                             Unit.office_hours, Unit.one_stop, Unit.fields, Unit.place)).all()
    by_id = {r.id: UnitInfo(*r[:8], tuple(r.fields or ()), r.place) for r in rows}
    by_code = {u.code: u for u in by_id.values()}
    _cache[key] = (time.monotonic(), by_id, by_code)
    return by_id, by_code


def unit(db: Session, unit_id: int) -> UnitInfo:
    by_id, _ = _units(db)
    if unit_id not in by_id:
        invalidate_units()
        by_id, _ = _units(db)
    return by_id[unit_id]


def unit_by_code(db: Session, code: str) -> UnitInfo:
    _, by_code = _units(db)
    if code not in by_code:
        invalidate_units()
        _, by_code = _units(db)
    if code not in by_code:
        raise NotFound(f"Không có đơn vị mã {code}", code="unknown_unit")
    return by_code[code]


def user_by_username(db: Session, username: str) -> User:
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"Không có người dùng {username}", code="unknown_user")
    return user


def agency_of(db: Session, u: UnitInfo) -> UnitInfo:
    """The nearest unit that is an agency (not a department): a department acts for its parent."""
    while u.level == "department" and u.parent_id is not None:
        u = unit(db, u.parent_id)
    return u


def agency_code(db: Session, u: UnitInfo) -> str:
    return _inherited(db, u, "agency_code") or u.code


def place(db: Session, u: UnitInfo) -> str | None:
    """The place name the unit's documents are dated at: its own or its nearest ancestor's."""
    return _inherited(db, u, "place")


def _inherited(db: Session, u: UnitInfo, attribute: str):
    node: UnitInfo | None = u
    while node is not None:
        if getattr(node, attribute):
            return getattr(node, attribute)
        node = unit(db, node.parent_id) if node.parent_id else None
    return None


def all_units(db: Session) -> list[UnitInfo]:
    """Every unit, by code (the choices of a transfer or a filter)."""
    by_id, _ = _units(db)
    return sorted(by_id.values(), key=lambda u: u.code)


def children(db: Session, u: UnitInfo) -> list[UnitInfo]:
    by_id, _ = _units(db)
    return sorted((c for c in by_id.values() if c.parent_id == u.id), key=lambda c: c.id)


def handling_unit_for(db: Session, receiving: UnitInfo, field: str) -> UnitInfo:
    """The department competent for a field: the receiving unit itself, one of its departments, or a
    department of the agency it belongs to; the agency itself when no department lists the field."""
    agency = agency_of(db, receiving)
    for candidate in [receiving, *children(db, receiving), *children(db, agency)]:
        if field in candidate.fields:
            return candidate
    return agency


def approver_unit_for(db: Session, handling: UnitInfo) -> UnitInfo:
    return agency_of(db, handling)

