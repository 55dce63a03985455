"""Fees paid for dossiers (phí, lệ phí): what the online-payment indicator counts.

A payment gateway client is out of scope; what it would confirm is recorded through `record_payment` as a
counter receipt is. Recording a payment is a command on its dossier (engine.dossiers.Command): the payment
row and a hash-chained event, in the caller's transaction, after the dossier's version-checked update."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.dossiers import Command, utcnow, version_info
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.models import Dossier, Payment, User
from engine.records import Record, save

D, PAY = Dossier.__table__, Payment.__table__


def record_payment(db: Session, *, code: str, actor: User, amount: int, online: bool, paid_at: datetime,
                   reference: str | None = None, now: datetime | None = None) -> Record:
    """Record a fee paid for the dossier: `amount` in đồng, paid online (gateway, bank transfer) or at the
    counter, at `paid_at`. A reference (receipt or transaction number) is recorded once per dossier, so a
    repeated gateway confirmation is refused rather than counted twice. Returns the payment row."""
    now = _at(now or utcnow(), "Thời điểm ghi nhận")
    run = Command.load_record(db, dossier_id(db, code), now)
    d = run.dossier
    if not actor.active or actor.unit_id not in (d.receiving_unit_id, d.handling_unit_id) or \
            actor.role not in ("counter", "specialist", "leader"):
        raise Forbidden("Chỉ cán bộ nơi tiếp nhận hoặc đơn vị giải quyết hồ sơ được ghi nhận việc nộp phí, lệ phí",
                        code="cannot_record_payment")
    rules = version_info(db, d.procedure_version_id).rules
    if not (rules.fee or {}).get("amount"):
        raise InvalidInput(f"Thủ tục {rules.code} không thu phí, lệ phí", code="procedure_without_fee")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput("Số tiền phải là số đồng nguyên, lớn hơn 0", code="amount_invalid")
    paid_at = _at(paid_at, "Thời điểm nộp tiền")
    if paid_at > now:
        raise InvalidInput("Thời điểm nộp tiền không được sau thời điểm ghi nhận", code="paid_at_in_future")
    reference = (reference or "").strip() or None
    if reference and db.execute(select(PAY.c.id).where(PAY.c.dossier_id == d.id, PAY.c.reference == reference)).first():
        raise Conflict(f"Khoản nộp có số chứng từ {reference} đã được ghi nhận cho hồ sơ {code}",
                       code="payment_duplicate")
    payment = Record(PAY, dict(dossier_id=d.id, amount=amount, online=bool(online), paid_at=paid_at,
                               reference=reference, recorded_by_id=actor.id, recorded_at=now), new=True)
    save(run.conn, payment)
    run.event("payment_recorded", actor, {"payment_id": payment.id, "amount": amount, "online": bool(online),
                                          "paid_at": paid_at.isoformat(), "reference": reference})
    run.save()
    return payment


def payments_of(db: Session, *, code: str) -> list[Payment]:
    return list(db.scalars(select(Payment).where(Payment.dossier_id == dossier_id(db, code)).order_by(Payment.id)))


def dossier_id(db: Session, code: str) -> int:
    found = db.execute(select(D.c.id).where(D.c.code == code)).scalar()
    if found is None:
        raise NotFound(f"Không tìm thấy hồ sơ {code}", code="dossier_not_found")
    return found


def _at(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{what} phải có múi giờ (ví dụ 2025-04-24T09:00+07:00)", code="naive_datetime")
    return value
