"""Internal work files (hồ sơ công việc) of units, created electronically or on paper: what the internal
electronic-files indicator counts. Not about dossiers, so no event chain: a plain row per work file."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from engine import org
from engine.accountability import subtree_ids
from engine.dossiers import utcnow
from engine.errors import Forbidden, InvalidInput
from engine.models import User, WorkFile
from engine.records import Record, save

W = WorkFile.__table__


def record_work_file(db: Session, *, unit_code: str, electronic: bool, title: str, created_at: datetime,
                     actor: User, now: datetime | None = None) -> Record:
    """Record that the unit created a work file at `created_at`, electronically or on paper. By an official
    of the unit or of the agency it belongs to."""
    now = now or utcnow()
    unit = org.unit_by_code(db, unit_code)
    agency = org.agency_of(db, org.unit(db, actor.unit_id))
    if not actor.active or unit.id not in subtree_ids(db, agency.id):
        raise Forbidden(f"Chỉ cán bộ của {unit.name} hoặc cơ quan quản lý được ghi nhận hồ sơ công việc của đơn vị",
                        code="cannot_record_work_file")
    title = (title or "").strip()
    if not title:
        raise InvalidInput("Hãy ghi tên hồ sơ công việc", code="title_missing")
    if created_at.tzinfo is None or now.tzinfo is None:
        raise InvalidInput("Thời điểm phải có múi giờ (ví dụ 2025-04-24T09:00+07:00)", code="naive_datetime")
    if created_at > now:
        raise InvalidInput("Ngày tạo lập hồ sơ công việc không được sau thời điểm ghi nhận", code="created_at_in_future")
    row = Record(W, dict(unit_id=unit.id, title=title[:500], electronic=bool(electronic), created_at=created_at,
                         recorded_by_id=actor.id, recorded_at=now), new=True)
    save(db.connection(), row)
    return row
