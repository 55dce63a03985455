"""What citizens say about the service: satisfaction ratings of returned dossiers, and feedback (phản ánh,
kiến nghị) about a dossier or a unit, which the unit must answer within a working-time deadline
(MOTCUA_FEEDBACK_DEADLINE_WORKING_DAYS, 15 by default, counted by the one working-time calendar).

Feedback moves received → handling → answered | rejected, with a time per state. What concerns a dossier
(a rating, feedback about it and each of its steps) is also an event of that dossier's hash chain, written
in the same transaction; nothing here commits."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import org, sla
from engine.accountability import subtree_ids
from engine.config import settings
from engine.dossiers import Command
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.events import new_event
from engine.models import FEEDBACK_STATES, RATING_CHANNELS, RATINGS, Dossier, Feedback, Rating, User
from engine.records import Record, save

D, R, F = Dossier.__table__, Rating.__table__, Feedback.__table__
RATINGS_VI = {"satisfied": "Hài lòng", "normal": "Bình thường", "not_satisfied": "Không hài lòng"}
FEEDBACK_STATES_VI = {"received": "Đã tiếp nhận", "handling": "Đang xử lý", "answered": "Đã trả lời",
                      "rejected": "Không thụ lý"}
MAX_TEXT = 5000


# --- satisfaction -----------------------------------------------------------------------------------

def rate(db: Session, *, code: str, rating: str, comment: str | None = None, via: str = "lookup",
         actor: User | None = None, now: datetime) -> Record:
    """The citizen rates the service once the dossier is over and its result (or refusal) was returned:
    through the lookup page (`via="lookup"`, no actor: the caller has checked the lookup code) or at the
    counter (`via="counter"`, recorded by a counter officer of the receiving unit). Once per dossier."""
    if rating not in RATINGS:
        raise InvalidInput(f"Mức đánh giá phải là một trong: {', '.join(RATINGS)} "
                           f"({', '.join(RATINGS_VI.values())})", code="rating_invalid")
    if via not in RATING_CHANNELS:
        raise InvalidInput("Đánh giá qua 'lookup' (tra cứu) hoặc 'counter' (tại Bộ phận Một cửa)", code="via_invalid")
    run = Command.load_record(db, _dossier_id(db, code), now)
    d = run.dossier
    if via == "counter" and (actor is None or not actor.active or actor.role != "counter"
                             or actor.unit_id != d.receiving_unit_id):
        raise Forbidden("Đánh giá tại quầy do cán bộ Bộ phận Một cửa nơi tiếp nhận hồ sơ ghi nhận",
                        code="cannot_record_rating")
    if via == "lookup" and actor is not None:
        raise InvalidInput("Đánh giá qua tra cứu do chính người dân thực hiện, không qua tài khoản cán bộ",
                           code="lookup_rating_by_official")
    if d.status not in ("returned", "refused"):
        raise Conflict(f"Hồ sơ {code} chưa trả kết quả; chỉ đánh giá được sau khi nhận kết quả",
                       code="not_returned")
    if db.execute(select(R.c.id).where(R.c.dossier_id == d.id)).first():
        raise Conflict(f"Hồ sơ {code} đã được đánh giá; mỗi hồ sơ chỉ đánh giá một lần", code="already_rated")
    row = Record(R, dict(dossier_id=d.id, rating=rating, comment=_text(comment), via=via,
                         actor_id=actor.id if actor else None, rated_at=run.now), new=True)
    run.written.append(row)
    run.written.append(new_event(d, "rated", row.actor_id, run.now,
                                 {"rating": rating, "comment": row.comment, "via": via}))
    run.save()
    return row


# --- feedback ---------------------------------------------------------------------------------------

def file_feedback(db: Session, *, unit_code: str | None = None, dossier_code: str | None = None, content: str,
                  sender_name: str, sender_contact: str | None = None, now: datetime) -> Record:
    """Receive feedback about a dossier (it goes to the dossier's handling unit, unless `unit_code` names
    another) or about a unit. Its deadline is the configured number of working days after receipt."""
    if not (unit_code or dossier_code):
        raise InvalidInput("Phản ánh, kiến nghị phải nêu đơn vị hoặc mã hồ sơ liên quan", code="feedback_target_missing")
    content, sender_name = _text(content), _text(sender_name)
    if not content or not sender_name:
        raise InvalidInput("Phản ánh, kiến nghị phải có nội dung và họ tên người phản ánh", code="feedback_incomplete")
    _at(now)
    run = Command.load_record(db, _dossier_id(db, dossier_code), now) if dossier_code else None
    unit = org.unit_by_code(db, unit_code) if unit_code else org.unit(db, run.dossier.handling_unit_id)
    days = settings().feedback_deadline_working_days
    row = Record(F, dict(unit_id=unit.id, dossier_id=run.dossier.id if run else None, content=content,
                         sender_name=sender_name, sender_contact=_text(sender_contact), state="received",
                         received_at=now, due_at=sla.calendar_of(unit).add_working_days(now, days),
                         handling_at=None, handled_by_id=None, closed_at=None, closed_by_id=None, answer=None),
                 new=True)
    save(db.connection(), row)
    if run:
        run.written.append(new_event(run.dossier, "feedback_filed", None, now, {
            "feedback_id": row.id, "unit": unit.code, "due_at": row.due_at.isoformat()}))
        run.save()
    return row


def start_feedback(db: Session, *, feedback_id: int, actor: User, now: datetime) -> Record:
    """An official of the unit takes the feedback up: received → handling."""
    return _move(db, feedback_id, actor, now, "handling", {"handling_at": now, "handled_by_id": actor.id}, {})


def answer_feedback(db: Session, *, feedback_id: int, actor: User, answer: str, now: datetime) -> Record:
    """The unit's answer to the sender: the feedback is closed; on time if by its deadline."""
    answer = _text(answer)
    if not answer:
        raise InvalidInput("Hãy ghi nội dung trả lời phản ánh, kiến nghị", code="answer_missing")
    return _move(db, feedback_id, actor, now, "answered",
                 {"closed_at": now, "closed_by_id": actor.id, "answer": answer}, {"answer": answer})


def reject_feedback(db: Session, *, feedback_id: int, actor: User, reason: str, now: datetime) -> Record:
    """Not taken up (outside the unit's remit, no content to act on…), with the reason given to the sender:
    a written response too, so it counts as handled, on time if by the deadline."""
    reason = _text(reason)
    if not reason:
        raise InvalidInput("Phải nêu lý do không thụ lý phản ánh, kiến nghị", code="reason_missing")
    return _move(db, feedback_id, actor, now, "rejected",
                 {"closed_at": now, "closed_by_id": actor.id, "answer": reason}, {"reason": reason})


def get_feedback(db: Session, feedback_id: int) -> Record:
    row = db.connection().execute(select(F).where(F.c.id == feedback_id)).first()
    if row is None:
        raise NotFound(f"Không có phản ánh, kiến nghị số {feedback_id}", code="feedback_not_found")
    return Record(F, row._mapping)


NEXT_STATES = {"handling": ("received",), "answered": ("received", "handling"), "rejected": ("received", "handling")}


def _move(db: Session, feedback_id: int, actor: User, now: datetime, state: str, values: dict[str, Any],
          event_data: dict[str, Any]) -> Record:
    assert state in FEEDBACK_STATES
    _at(now)
    fb = get_feedback(db, feedback_id)
    unit = org.unit(db, fb.unit_id)
    agency = org.agency_of(db, org.unit(db, actor.unit_id))
    if not actor.active or fb.unit_id not in subtree_ids(db, agency.id):
        raise Forbidden(f"Chỉ cán bộ của {unit.name} hoặc cơ quan quản lý được xử lý phản ánh, kiến nghị này",
                        code="cannot_handle_feedback")
    if fb.state not in NEXT_STATES[state]:
        raise Conflict(f"Phản ánh, kiến nghị số {fb.id} đang ở trạng thái '{FEEDBACK_STATES_VI[fb.state]}'; "
                       f"không chuyển sang '{FEEDBACK_STATES_VI[state]}' được", code="feedback_state_invalid")
    # Guarded by the state read: of two officials acting at once, the second finds the row moved on.
    moved = db.connection().execute(update(F).where(F.c.id == fb.id, F.c.state == fb.state)
                                    .values(state=state, **values)).rowcount
    if moved != 1:
        raise Conflict(f"Phản ánh, kiến nghị số {fb.id} vừa được người khác cập nhật; hãy tải lại",
                       code="version_conflict")
    if fb.dossier_id is not None:
        run = Command.load_record(db, fb.dossier_id, now)
        run.event(f"feedback_{state}", actor, {"feedback_id": fb.id, **event_data})
        run.save()
    return get_feedback(db, feedback_id)


def _dossier_id(db: Session, code: str) -> int:
    found = db.execute(select(D.c.id).where(D.c.code == code)).scalar()
    if found is None:
        raise NotFound(f"Không tìm thấy hồ sơ {code}", code="dossier_not_found")
    return found


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"Nội dung dài quá {MAX_TEXT} ký tự", code="text_too_long")
    return value or None


def _at(now: datetime) -> None:
    if now.tzinfo is None:
        raise InvalidInput("Thời điểm phải có múi giờ (ví dụ 2025-04-24T09:00+07:00)", code="naive_datetime")
