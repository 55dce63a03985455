"""Scoped reads of documents and accountability records for the API, in the manner of engine.queries:
everything an official reads is limited to what they may see, and what they may not see is reported
exactly as what does not exist (404).

- A document may be read by an official who can see a dossier it belongs to (the dossier it was filed
  for, or one it was attached to).
- A citizen's data store (Decree 45/2020: reusable across agencies) may be listed by an official who can
  see a dossier of that citizen; documents that came from dossiers the official cannot see are listed
  without naming their dossier.
- An accountability record may be read by officials whose scope (engine.queries.scope_units: the agency
  and its units for supervisors and admins, the own unit for others) holds the record's unit, and by the
  official who held the late step."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine import org
from engine.accountability import record_view, subtree_ids
from engine.config import settings
from engine.documents import citizen_documents, dossier_documents, dossier_results
from engine.errors import InvalidInput, NotFound
from engine.models import AccountabilityEntry, AccountabilityRecord, Document, Dossier, DossierDocument, Step, User
from engine.queries import check_visible, scope_units, visible

A, AE, D, LINK = (AccountabilityRecord.__table__, AccountabilityEntry.__table__, Dossier.__table__,
                  DossierDocument.__table__)
FIRST_YEAR, LAST_YEAR = 2000, 2100


# --- documents --------------------------------------------------------------------------------------

def document_view(doc: Document, *, dossier: str | None = None) -> dict[str, Any]:
    return {"id": doc.id, "kind": doc.kind, "component": doc.component_code, "name": doc.name, "pages": doc.pages,
            "size": doc.size, "sha256": doc.sha256, "digitized": doc.digitized, "signed": doc.signed,
            "valid_until": doc.valid_until, "created_at": doc.created_at, "dossier": dossier}


def visible_document(db: Session, *, actor: User, document_id: int) -> Document:
    """The document if the actor can see a dossier it belongs to; else 404 as for a missing one."""
    doc = db.get(Document, document_id)
    attached = select(LINK.c.dossier_id).where(LINK.c.document_id == document_id)
    seen = doc is not None and db.scalar(
        select(D.c.id).where(or_(D.c.id == doc.source_dossier_id, D.c.id.in_(attached)), visible(db, actor))
        .limit(1)) is not None
    if not seen:
        raise NotFound(f"Không có giấy tờ số {document_id}", code="document_not_found")
    return doc


def dossier_document_list(db: Session, *, actor: User, code: str) -> dict[str, Any]:
    """The components filed to a dossier (uploaded or reused) and the results issued for it."""
    check_visible(db, actor, code)
    components = [{**document_view(link.document, dossier=code), "component": link.component_code,
                   "reused": link.reused, "attached_at": link.attached_at}
                  for link in dossier_documents(db, code=code)]
    results = [document_view(doc, dossier=code) for doc in dossier_results(db, code=code)]
    return {"code": code, "components": components, "results": results}


def citizen_store(db: Session, *, actor: User, citizen_id: str, now: datetime) -> list[dict[str, Any]]:
    """The citizen's still-valid documents, for an official who can see one of the citizen's dossiers."""
    applicant = D.c.applicant["citizen_id"].as_string()
    if db.scalar(select(D.c.id).where(applicant == citizen_id, visible(db, actor)).limit(1)) is None:
        raise NotFound("Không tìm thấy kho dữ liệu của công dân này trong các hồ sơ bạn được xem",
                       code="citizen_not_found")
    docs = citizen_documents(db, citizen_id=citizen_id, now=now)
    sources = {d.source_dossier_id for d in docs if d.source_dossier_id}
    seen = dict(db.execute(select(D.c.id, D.c.code).where(D.c.id.in_(sources), visible(db, actor))).all())
    return [document_view(d, dossier=seen[d.source_dossier_id]) if d.source_dossier_id in seen else _anonymous(d)
            for d in docs]


def _anonymous(doc: Document) -> dict[str, Any]:
    """A document from a dossier the official cannot see: reusable, but its name (which carries the
    dossier code) is replaced by what it is."""
    name = "Kết quả giải quyết thủ tục hành chính" if doc.kind == "result" else f"Thành phần {doc.component_code}"
    return {**document_view(doc), "name": name}


# --- accountability ---------------------------------------------------------------------------------

def period(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """Local days [start, end] as instants; both within the years the calendar and the database handle."""
    for day in (start, end):
        if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise InvalidInput(f"Ngày phải trong khoảng năm {FIRST_YEAR}–{LAST_YEAR}", code="period_invalid")
    if start and end and start > end:
        raise InvalidInput("Ngày bắt đầu (from) phải trước hoặc bằng ngày kết thúc (to)", code="period_invalid")
    tz = settings().tz
    return (datetime.combine(start, time(0), tz) if start else None,
            datetime.combine(end + timedelta(days=1), time(0), tz) if end else None)


def overseen_unit(db: Session, *, actor: User, code: str | None) -> org.UnitInfo:
    """The unit a supervisor's (or admin's) report is about: one in their scope, by default their agency."""
    if code is None:
        return org.agency_of(db, org.unit(db, actor.unit_id))
    unit = org.unit_by_code(db, code)
    if unit.id not in scope_units(db, actor):
        raise NotFound(f"Không có đơn vị mã {code}", code="unknown_unit")
    return unit


def _record_scope(db: Session, actor: User):
    return or_(A.c.unit_id.in_(scope_units(db, actor)), A.c.holder_id == actor.id)


def records(db: Session, *, actor: User, unit: str | None = None, start: date | None = None,
            end: date | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Accountability records in the actor's scope (optionally one unit and those under it), by the due
    time of the late step, newest first, each with its latest cause, review and finish."""
    lo, hi = period(start, end)
    query = select(A, D.c.code, Step.name.label("step_name")).join(D, D.c.id == A.c.dossier_id) \
        .join(Step, Step.id == A.c.step_id).where(_record_scope(db, actor))
    if unit:
        target = org.unit_by_code(db, unit)
        if target.id not in scope_units(db, actor):
            raise NotFound(f"Không có đơn vị mã {unit}", code="unknown_unit")
        query = query.where(A.c.unit_id.in_(subtree_ids(db, target.id)))
    if lo:
        query = query.where(A.c.due_at >= lo)
    if hi:
        query = query.where(A.c.due_at < hi)
    rows = db.execute(query.order_by(A.c.due_at.desc(), A.c.id.desc()).limit(limit)).all()
    latest = _latest_entries(db, [r.id for r in rows])
    names = _names(db, {r.holder_id for r in rows})
    return [{"id": r.id, "dossier": r.code, "step": r.step_name, "unit": org.unit(db, r.unit_id).code,
             "holder": names.get(r.holder_id), "due_at": r.due_at, "created_at": r.created_at,
             **{kind: latest.get((r.id, kind)) for kind in ("finished", "cause", "review")}} for r in rows]


def record(db: Session, *, actor: User, record_id: int) -> dict[str, Any]:
    """One record with its whole history (engine.accountability.record_view), named for people."""
    row = db.execute(select(A.c.id, A.c.dossier_id, A.c.holder_id)
                     .where(A.c.id == record_id, _record_scope(db, actor))).first()
    if row is None:
        raise NotFound(f"Không có hồ sơ trách nhiệm số {record_id}", code="accountability_not_found")
    view = record_view(db, record_id)
    actors = {h["actor_id"] for h in view["history"]} | {row.holder_id}
    names = _names(db, actors)
    return {**view, "dossier": db.scalar(select(D.c.code).where(D.c.id == row.dossier_id)),
            "unit": org.unit(db, view["unit_id"]).code, "holder": names.get(row.holder_id),
            "history": [{**h, "actor": names.get(h["actor_id"])} for h in view["history"]]}


def _latest_entries(db: Session, record_ids: list[int]) -> dict[tuple[int, str], dict[str, Any]]:
    found: dict[tuple[int, str], dict[str, Any]] = {}
    if record_ids:
        for e in db.execute(select(AE).where(AE.c.record_id.in_(record_ids)).order_by(AE.c.id)):
            found[(e.record_id, e.kind)] = dict(e.data, at=e.at)
    return found


def _names(db: Session, user_ids: set[int | None]) -> dict[int, dict[str, str]]:
    ids = [i for i in user_ids if i is not None]
    rows = db.execute(select(User.id, User.username, User.full_name).where(User.id.in_(ids))).all() if ids else []
    return {r.id: {"username": r.username, "full_name": r.full_name} for r in rows}
