"""What an official may see, and the reads the API and the console make: dossier lists with filters and
cursor pagination, a dossier's full record, the inbox. Every read is scoped to the caller: a dossier
they may not see is reported exactly as one that does not exist."""
from __future__ import annotations

import base64
import json
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from engine import org
from engine.accountability import subtree_ids
from engine.catalog import ProcedureRules
from engine.config import settings
from engine.dossiers import available_actions, get_dossier, rules_of, step_actions, version_info
from engine.errors import InvalidInput, NotFound
from engine.models import ControlSheetRow, Dossier, Event, Pause, ProcedureVersion, Step, Unit, User

D, S = Dossier.__table__, Step.__table__
OVERSEERS = ("supervisor", "admin")


def scope_units(db: Session, user: User) -> set[int]:
    """Supervisors and admins see their agency and every unit under it; others, their own unit."""
    if user.role in OVERSEERS:
        return subtree_ids(db, org.agency_of(db, org.unit(db, user.unit_id)).id)
    return {user.unit_id}


def visible(db: Session, user: User) -> ColumnElement[bool]:
    """A dossier is visible where it was received, where it is handled, or where one of its steps is
    or was (an inter-agency consultation, the People's Committee that signs)."""
    units = list(scope_units(db, user))
    return or_(D.c.receiving_unit_id.in_(units), D.c.handling_unit_id.in_(units),
               exists().where(S.c.dossier_id == D.c.id, S.c.unit_id.in_(units)))


def check_visible(db: Session, user: User, code: str) -> int:
    """The dossier's id if the user may see it; otherwise the same 404 as for a code that does not exist."""
    found = db.scalar(select(D.c.id).where(D.c.code == code, visible(db, user)))
    if found is None:
        raise NotFound(f"Không tìm thấy hồ sơ {code}", code="dossier_not_found")
    return found


def find_dossier(db: Session, user: User, code: str) -> Dossier:
    check_visible(db, user, code)
    return get_dossier(db, code)


def dossier_state(db: Session, code: str) -> dict[str, Any]:
    """What a client needs after an action: the new version (for its next expected_version) and status."""
    saved = db.info.get("saved_dossiers", {}).get(code)
    if saved is not None:
        return {"code": saved.code, "version": saved.version, "status": saved.status, "due_at": saved.due_at}
    row = db.execute(select(D.c.code, D.c.version, D.c.status, D.c.due_at).where(D.c.code == code)).one()
    return dict(row._mapping)


# --- lists ------------------------------------------------------------------------------------------

@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(received_at: datetime, dossier_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([received_at.isoformat(), dossier_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, dossier_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), int(dossier_id)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidInput("Con trỏ phân trang (cursor) không hợp lệ; hãy dùng giá trị next_cursor trả về",
                           code="cursor_invalid")


def list_dossiers(db: Session, user: User, *, now: datetime, unit: str | None = None, procedure: str | None = None,
                  status: str | None = None, due_before: datetime | None = None, late: bool | None = None,
                  received_from: date | None = None, received_to: date | None = None,
                  cursor: str | None = None, limit: int = 50) -> Page:
    """Newest first; `next_cursor` continues after the last item (stable under concurrent inserts)."""
    query = (select(D.c.id, D.c.code, D.c.status, D.c.channel, D.c.received_at, D.c.due_at, D.c.finished_at,
                    D.c.paused_at, D.c.handling_unit_id, D.c.receiving_unit_id, D.c.applicant,
                    ProcedureVersion.code.label("procedure"), ProcedureVersion.name.label("procedure_name"))
             .join(ProcedureVersion, ProcedureVersion.id == D.c.procedure_version_id)
             .where(visible(db, user)))
    if unit:
        ids = subtree_ids(db, org.unit_by_code(db, unit).id)
        query = query.where(or_(D.c.handling_unit_id.in_(ids), D.c.receiving_unit_id.in_(ids)))
    if procedure:
        query = query.where(ProcedureVersion.code == procedure)
    if status:
        query = query.where(D.c.status == status)
    if due_before:
        if due_before.tzinfo is None:
            raise InvalidInput("due_before cần có múi giờ, ví dụ 2025-05-19T17:00:00+07:00", code="naive_datetime")
        query = query.where(D.c.due_at < due_before)
    if late is not None:
        # Both branches are true or false, never NULL: `late=false` must keep the open dossiers.
        is_late = or_(and_(D.c.finished_at.is_not(None), D.c.finished_at > D.c.due_at),
                      and_(D.c.finished_at.is_(None), D.c.paused_at.is_(None), D.c.due_at < now))
        query = query.where(is_late if late else ~is_late)
    tz = settings().tz
    if received_from:
        query = query.where(D.c.received_at >= datetime.combine(received_from, datetime.min.time(), tz))
    if received_to:
        query = query.where(D.c.received_at < datetime.combine(received_to + timedelta(days=1),
                                                               datetime.min.time(), tz))
    if cursor:
        at, last_id = _decode_cursor(cursor)
        query = query.where(or_(D.c.received_at < at, and_(D.c.received_at == at, D.c.id < last_id)))
    rows = db.execute(query.order_by(D.c.received_at.desc(), D.c.id.desc()).limit(limit + 1)).all()
    items = [_summary(db, r, now) for r in rows[:limit]]
    next_cursor = _encode_cursor(rows[limit - 1].received_at, rows[limit - 1].id) if len(rows) > limit else None
    return Page(items, next_cursor)


def _summary(db: Session, r, now: datetime) -> dict[str, Any]:
    end = r.finished_at or (None if r.paused_at else now)
    return {"code": r.code, "procedure": r.procedure, "procedure_name": r.procedure_name, "status": r.status,
            "channel": r.channel, "applicant": r.applicant["full_name"], "received_at": r.received_at,
            "due_at": r.due_at, "finished_at": r.finished_at, "late": bool(end and end > r.due_at),
            "handling_unit": org.unit(db, r.handling_unit_id).code}


# --- one dossier ------------------------------------------------------------------------------------

def dossier_detail(db: Session, user: User, code: str, *, now: datetime) -> dict[str, Any]:
    d = find_dossier(db, user, code)
    rules = version_info(db, d.procedure_version_id).rules
    names = dict(db.execute(select(User.id, User.full_name)).all())
    units = dict(db.execute(select(Unit.id, Unit.code)).all())
    mine = step_actions(d, user)
    from engine.documents import dossier_documents
    return {
        "code": d.code, "version": d.version, "status": d.status, "outcome": d.outcome, "channel": d.channel,
        "procedure": {"code": rules.code, "name": rules.name, "version": d.procedure_version.version,
                      "components": rules.components},
        "applicant": d.applicant, "components": d.components, "lookup_code": d.lookup_code,
        "received_at": d.received_at, "due_at": d.due_at, "original_due_at": d.original_due_at,
        "warn_at": d.warn_at, "paused_at": d.paused_at, "finished_at": d.finished_at,
        "extension": d.extension, "supplement_count": d.supplement_count,
        "receiving_unit": units[d.receiving_unit_id], "handling_unit": units[d.handling_unit_id],
        "steps": [_step(s, names, units, rules, mine.get(s.id, [])) for s in d.steps],
        "pauses": [{"started_at": p.started_at, "ended_at": p.ended_at, "reason": p.reason, "missing": p.missing,
                    "remaining_minutes": p.remaining_minutes, "resume_mode": p.resume_mode}
                   for p in db.scalars(select(Pause).where(Pause.dossier_id == d.id).order_by(Pause.id))],
        "control_sheet": [{"at": r.at, "kind": r.kind, "step": r.step_name, "giver": names.get(r.giver_id),
                           "giver_unit": units.get(r.giver_unit_id), "receiver_unit": units.get(r.receiver_unit_id),
                           "receiver_step": r.receiver_step, "step_due_at": r.step_due_at, "timing": r.timing,
                           "note": r.note}
                          for r in db.scalars(select(ControlSheetRow).where(ControlSheetRow.dossier_id == d.id)
                                              .order_by(ControlSheetRow.id))],
        "documents": [{"id": link.document_id, "component": link.component_code, "reused": link.reused,
                       "name": link.document.name, "pages": link.document.pages, "sha256": link.document.sha256}
                      for link in dossier_documents(db, code=code)],
        "events": [{"seq": e.seq, "at": e.at, "kind": e.kind, "actor": names.get(e.actor_id), "data": e.data,
                    "hash": e.hash}
                   for e in db.scalars(select(Event).where(Event.dossier_id == d.id).order_by(Event.seq))],
        "actions": available_actions(d, user),
    }


def sla_state(due_at: datetime | None, now: datetime, unit_id: int, db: Session) -> str:
    """on_track, due_soon (within one working day) or overdue."""
    if due_at is None:
        return "on_track"
    if due_at <= now:
        return "overdue"
    from engine.sla import calendar_of
    cal = calendar_of(org.unit(db, unit_id))
    return "due_soon" if cal.working_minutes_between(now, due_at) <= cal.minutes_per_day else "on_track"


def _step(s: Step, names: dict, units: dict, rules: ProcedureRules, actions: list[str]) -> dict[str, Any]:
    """A step as its readers see it: with the decisions its procedure offers there and the actions the
    reader may take on it now."""
    return {"id": s.id, "step": s.bpmn_id, "name": s.name, "role": s.role, "unit": units.get(s.unit_id),
            "assignee": names.get(s.assignee_id), "state": s.state, "started_at": s.started_at, "due_at": s.due_at,
            "finished_at": s.finished_at, "completed_by": names.get(s.completed_by_id), "decision": s.decision,
            "note": s.note, "timing": s.timing, "decisions": rules.step(s.bpmn_id).get("decisions") or {},
            "actions": actions}


def dossier_diagram(db: Session, user: User, code: str) -> str:
    """The BPMN XML of the procedure version the dossier runs on (the version of its receipt)."""
    dossier_id = check_visible(db, user, code)
    version_id = db.scalar(select(D.c.procedure_version_id).where(D.c.id == dossier_id))
    return db.scalar(select(ProcedureVersion.bpmn_xml).where(ProcedureVersion.id == version_id))


# --- the inbox --------------------------------------------------------------------------------------

def inbox(db: Session, user: User, *, now: datetime, state: str | None = None, procedure: str | None = None,
          search: str | None = None) -> dict[str, Any]:
    """Ready steps for this user or their role in their unit, soonest due first, each with its SLA state.
    `procedure` and `search` (part of the code or the applicant's name, with or without diacritics)
    narrow both the items and the counts; `state` narrows the items only, so the counts stay the
    filter's choices."""
    query = (
        select(S.c.id, S.c.bpmn_id, S.c.name, S.c.due_at, S.c.assignee_id, S.c.unit_id, S.c.started_at, D.c.code,
               D.c.applicant, D.c.version, ProcedureVersion.code.label("procedure"),
               ProcedureVersion.name.label("procedure_name"), ProcedureVersion.sha256.label("sha"))
        .join(D, D.c.id == S.c.dossier_id).join(ProcedureVersion, ProcedureVersion.id == D.c.procedure_version_id)
        .where(S.c.state == "ready", S.c.unit_id == user.unit_id, S.c.role == user.role,
               or_(S.c.assignee_id.is_(None), S.c.assignee_id == user.id))
        .order_by(S.c.due_at.is_(None), S.c.due_at, S.c.id))
    if procedure:
        query = query.where(ProcedureVersion.code == procedure)
    needle = fold(search or "")
    items, counts = [], {k: 0 for k in ("on_track", "due_soon", "overdue")}
    for r in db.execute(query):
        if needle and needle not in fold(r.code) and needle not in fold(r.applicant["full_name"]):
            continue
        sla = sla_state(r.due_at, now, r.unit_id, db)
        counts[sla] += 1
        if state is None or sla == state:
            items.append({"step_id": r.id, "step": r.bpmn_id, "name": r.name, "code": r.code, "version": r.version,
                          "procedure": r.procedure, "procedure_name": r.procedure_name,
                          "applicant": r.applicant["full_name"], "started_at": r.started_at, "due_at": r.due_at,
                          "mine": r.assignee_id == user.id, "sla": sla})
    return {"items": items, "counts": counts}


def fold(text: str) -> str:
    """Lower case without diacritics ("Nguyễn" → "nguyen", "Chứng thực" → "chung thuc"): how people type
    into a search box."""
    decomposed = unicodedata.normalize("NFD", text.strip().casefold().replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def citizen_lookup(db: Session, *, code: str, id_last4: str | None = None, lookup_code: str | None = None,
                   citizen_id: str | None = None) -> dict[str, Any]:
    """What a citizen may learn without an account: status, appointment, what is missing — nothing else.
    The secret is the last 4 digits of the applicant's ID, the lookup code printed on the receipt, or the
    full ID (what the receipt's QR code carries). Any mismatch answers as if the dossier did not exist."""
    d = db.scalar(select(Dossier).where(Dossier.code == code))
    applicant_id = d.applicant.get("citizen_id", "") if d is not None else ""
    matches = d is not None and (
        (lookup_code and d.lookup_code and lookup_code.strip().upper() == d.lookup_code) or
        (id_last4 and len(id_last4) == 4 and applicant_id.endswith(id_last4)) or
        (citizen_id and len(citizen_id) == 12 and applicant_id == citizen_id))
    if not matches:
        raise NotFound("Không tìm thấy hồ sơ với mã và thông tin đã nhập; hãy kiểm tra lại phiếu hẹn",
                       code="lookup_not_found")
    missing: list[str] = []
    if d.status == "waiting_supplement":
        pause = db.scalar(select(Pause).where(Pause.dossier_id == d.id, Pause.ended_at.is_(None)))
        missing = list(pause.missing) if pause else []
    rules = rules_of(d.procedure_version)
    return {"code": d.code, "procedure": rules.name, "status": d.status, "received_at": d.received_at,
            "appointment": d.due_at, "finished_at": d.finished_at, "missing": missing}
