"""The records the indicators need: payments, satisfaction ratings, feedback with its working-time deadline
and states, internal work files; and the appointment kept without the extension. Each write that concerns
a dossier is an event of its hash chain."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import dossiers as cmd
from engine import feedback, payments, workfiles
from engine.config import set_settings, settings
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.events import verify_chain
from engine.models import Event, Feedback, Payment, Rating, WorkFile
from tests.conftest import vn
from tests.test_lifecycle import do, receive

T0 = vn(2025, 4, 24, 9, 0)


def kinds(db, code) -> list[str]:
    d = cmd.get_dossier(db, code)
    return list(db.scalars(select(Event.kind).where(Event.dossier_id == d.id).order_by(Event.seq)))


def returned(db, users, procedure="2.000815"):
    """A certified copy received 24/4 09:00 and returned 10:30 (the lifecycle tests' normal path)."""
    d = receive(db, users, code=procedure)
    do(db, cmd.complete_step, code=d.code, actor=users["pp.cv"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    do(db, cmd.complete_step, code=d.code, actor=users["pp.ld"], decision="dong_y", now=vn(2025, 4, 24, 10, 0))
    do(db, cmd.return_result, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 24, 10, 30))
    return d.code


# --- payments -----------------------------------------------------------------------------------------

def test_payment_is_recorded_in_the_dossier_chain(db, users):
    code = receive(db, users).code
    row = do(db, payments.record_payment, code=code, actor=users["pp.motcua"], amount=2000, online=True,
             paid_at=vn(2025, 4, 24, 9, 5), reference="VNPAY-42", now=vn(2025, 4, 24, 9, 6))
    paid = db.get(Payment, row.id)
    assert (paid.amount, paid.online, paid.paid_at, paid.reference) == (2000, True, vn(2025, 4, 24, 9, 5), "VNPAY-42")
    assert kinds(db, code)[-1] == "payment_recorded" and list(verify_chain(db)) == []
    # A gateway confirming the same transaction twice is not counted twice.
    with pytest.raises(Conflict) as exc:
        payments.record_payment(db, code=code, actor=users["pp.motcua"], amount=2000, online=True,
                                paid_at=vn(2025, 4, 24, 9, 5), reference="VNPAY-42", now=vn(2025, 4, 24, 9, 7))
    assert exc.value.code == "payment_duplicate"
    db.rollback()
    assert [p.id for p in payments.payments_of(db, code=code)] == [row.id]


def test_payment_checks(db, users):
    code = receive(db, users).code
    free = receive(db, users, code="1.000894").code          # marriage registration: no fee
    at = vn(2025, 4, 24, 9, 30)

    def pay(**kw):
        args = dict(code=code, actor=users["pp.motcua"], amount=2000, online=False, paid_at=at, now=at) | kw
        with pytest.raises((InvalidInput, Forbidden, NotFound)) as exc:
            payments.record_payment(db, **args)
        db.rollback()
        return exc.value.code
    assert pay(code=free) == "procedure_without_fee"
    assert pay(amount=0) == "amount_invalid" and pay(amount=1.5) == "amount_invalid"
    assert pay(paid_at=vn(2025, 4, 24, 10, 0)) == "paid_at_in_future"
    assert pay(paid_at=at.replace(tzinfo=None)) == "naive_datetime"
    assert pay(actor=users["tv.motcua"]) == "cannot_record_payment"      # another commune's counter
    assert pay(code="KHONG-CO") == "dossier_not_found"
    assert db.scalar(select(Payment.id)) is None


# --- ratings ------------------------------------------------------------------------------------------

def test_rating_after_return_once(db, users):
    code = receive(db, users).code
    with pytest.raises(Conflict) as exc:
        feedback.rate(db, code=code, rating="satisfied", now=vn(2025, 4, 24, 9, 30))
    assert exc.value.code == "not_returned"
    db.rollback()
    code = returned(db, users)
    row = do(db, feedback.rate, code=code, rating="not_satisfied", comment="  Chờ lâu  ", now=vn(2025, 4, 25, 8, 0))
    saved = db.get(Rating, row.id)
    assert (saved.rating, saved.comment, saved.via, saved.actor_id) == ("not_satisfied", "Chờ lâu", "lookup", None)
    assert kinds(db, code)[-1] == "rated" and list(verify_chain(db)) == []
    with pytest.raises(Conflict) as exc:
        feedback.rate(db, code=code, rating="satisfied", now=vn(2025, 4, 25, 9, 0))
    assert exc.value.code == "already_rated"
    db.rollback()


def test_rating_channels(db, users):
    code = returned(db, users)
    at = vn(2025, 4, 24, 11, 0)
    for kwargs, error in ((dict(rating="tot"), "rating_invalid"), (dict(rating="satisfied", via="zalo"), "via_invalid"),
                          (dict(rating="satisfied", via="counter"), "cannot_record_rating"),
                          (dict(rating="satisfied", via="counter", actor=users["pp.cv"]), "cannot_record_rating"),
                          (dict(rating="satisfied", actor=users["pp.motcua"]), "lookup_rating_by_official")):
        with pytest.raises((InvalidInput, Forbidden)) as exc:
            feedback.rate(db, code=code, now=at, **kwargs)
        assert exc.value.code == error
        db.rollback()
    row = do(db, feedback.rate, code=code, rating="normal", via="counter", actor=users["pp.motcua"], now=at)
    assert db.get(Rating, row.id).actor_id == users["pp.motcua"].id


def test_a_refused_dossier_can_be_rated(db, users):
    d = receive(db, users, code="1.001193")
    do(db, cmd.refuse, code=d.code, actor=users["pp.cv"], reason="Giấy chứng sinh không hợp lệ", now=vn(2025, 4, 24, 9, 30))
    do(db, cmd.complete_step, code=d.code, actor=users["pp.ld"], decision="dong_y", now=vn(2025, 4, 24, 10, 0))
    do(db, cmd.return_result, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 24, 10, 30))
    assert do(db, feedback.rate, code=d.code, rating="not_satisfied", now=vn(2025, 4, 24, 11, 0)).rating == "not_satisfied"


# --- feedback -----------------------------------------------------------------------------------------

def test_feedback_about_a_dossier_goes_to_its_unit_with_a_working_time_deadline(db, users):
    code = returned(db, users)
    # Filed Mon 28/4/2025 09:00; 15 working days from the next day: 29/4 (1); 30/4, 1/5 holidays and Fri 2/5
    # swapped off; 5–9/5 (2–6), 12–16/5 (7–11), 19–22/5 (12–15) → Thu 22/5/2025 17:00.
    row = do(db, feedback.file_feedback, dossier_code=code, content="Trả kết quả không đúng hẹn",
             sender_name="Nguyễn Văn An", sender_contact="0905123456", now=vn(2025, 4, 28, 9, 0))
    fb = db.get(Feedback, row.id)
    assert fb.unit_id == users["pp.cv"].unit_id and fb.state == "received"
    assert fb.due_at == vn(2025, 5, 22, 17, 0)
    assert kinds(db, code)[-1] == "feedback_filed"
    do(db, feedback.start_feedback, feedback_id=fb.id, actor=users["pp.ld"], now=vn(2025, 4, 29, 8, 0))
    answered = do(db, feedback.answer_feedback, feedback_id=fb.id, actor=users["pp.ld"], answer="Đã xin lỗi công dân",
                  now=vn(2025, 5, 20, 10, 0))
    assert (answered.state, answered.handling_at, answered.closed_at, answered.closed_by_id) == \
        ("answered", vn(2025, 4, 29, 8, 0), vn(2025, 5, 20, 10, 0), users["pp.ld"].id)
    assert kinds(db, code)[-2:] == ["feedback_handling", "feedback_answered"] and list(verify_chain(db)) == []
    with pytest.raises(Conflict) as exc:
        feedback.start_feedback(db, feedback_id=fb.id, actor=users["pp.ld"], now=vn(2025, 5, 21, 8, 0))
    assert exc.value.code == "feedback_state_invalid"
    db.rollback()


def test_feedback_about_a_unit_and_its_checks(db, users):
    at = vn(2025, 6, 2, 9, 0)
    fb = do(db, feedback.file_feedback, unit_code="TS-TV", content="Cán bộ không hướng dẫn", sender_name="Lê Văn Hòa",
            now=at)
    assert fb.due_at == vn(2025, 6, 23, 17, 0) and fb.dossier_id is None     # 3–6/6, 9–13/6, 16–20/6, 23/6
    with pytest.raises(InvalidInput):
        feedback.file_feedback(db, content="Thái độ", sender_name="Lê Văn Hòa", now=at)
    with pytest.raises(InvalidInput):
        feedback.file_feedback(db, unit_code="TS-TV", content="  ", sender_name="Lê Văn Hòa", now=at)
    with pytest.raises(NotFound):
        feedback.file_feedback(db, unit_code="KHONG-CO", content="Thái độ", sender_name="Lê Văn Hòa", now=at)
    db.rollback()
    # Another commune's official may not handle it; the district's office (a department of TS, the agency
    # above Tây Vinh) may.
    with pytest.raises(Forbidden):
        feedback.answer_feedback(db, feedback_id=fb.id, actor=users["pp.ld"], answer="…", now=at)
    db.rollback()
    assert do(db, feedback.start_feedback, feedback_id=fb.id, actor=users["ts.motcua"], now=at).state == "handling"
    with pytest.raises(InvalidInput):
        feedback.reject_feedback(db, feedback_id=fb.id, actor=users["tv.ld"], reason=" ", now=at)
    db.rollback()
    rejected = do(db, feedback.reject_feedback, feedback_id=fb.id, actor=users["tv.ld"], reason="Không có nội dung cụ thể",
                  now=vn(2025, 6, 3, 9, 0))
    assert (rejected.state, rejected.answer) == ("rejected", "Không có nội dung cụ thể")
    with pytest.raises(NotFound):
        feedback.get_feedback(db, 10 ** 6)


def test_feedback_deadline_is_a_setting(db, users):
    original = settings()
    set_settings(original.model_copy(update={"feedback_deadline_working_days": 5}))
    try:
        fb = do(db, feedback.file_feedback, unit_code="TS-PP", content="Ghế chờ hỏng", sender_name="Hồ Thị Lan",
                now=vn(2025, 6, 2, 9, 0))
    finally:
        set_settings(original)
    assert fb.due_at == vn(2025, 6, 9, 17, 0)              # 3, 4, 5, 6, 9 June


# --- work files ---------------------------------------------------------------------------------------

def test_work_files(db, users):
    at = vn(2025, 5, 12, 9, 0)
    row = do(db, workfiles.record_work_file, unit_code="TS-PP", electronic=True, title="Kế hoạch CCHC 2025",
             created_at=vn(2025, 5, 10, 8, 0), actor=users["pp.ld"], now=at)
    assert (db.get(WorkFile, row.id).electronic, db.get(WorkFile, row.id).recorded_by_id) == (True, users["pp.ld"].id)
    # The district's staff keep its departments' and communes' files; a commune's staff only its own.
    do(db, workfiles.record_work_file, unit_code="TS-TP", electronic=False, title="Sổ công văn đến",
       created_at=at, actor=users["ts.nv.gs"], now=at)
    for kwargs, error in ((dict(actor=users["pp.ld"], unit_code="TS-TV"), Forbidden),
                          (dict(title=" "), InvalidInput), (dict(created_at=vn(2025, 5, 13, 8, 0)), InvalidInput),
                          (dict(created_at=at.replace(tzinfo=None)), InvalidInput)):
        args = dict(unit_code="TS-PP", electronic=True, title="Hồ sơ", created_at=at, actor=users["pp.ld"], now=at)
        with pytest.raises(error):
            workfiles.record_work_file(db, **(args | kwargs))
        db.rollback()
    assert len(db.scalars(select(WorkFile)).all()) == 2


# --- the appointment without the extension -------------------------------------------------------------

def test_the_unextended_appointment_moves_with_pauses_only(db, users):
    d = receive(db, users)                                   # certified copy, due 24/4 17:00
    assert d.unextended_due_at is None
    do(db, cmd.extend, code=d.code, actor=users["pp.ld"], reason="Chờ xác minh", extra_working_days=1,
       now=vn(2025, 4, 24, 9, 30))
    d = cmd.get_dossier(db, d.code)
    assert (d.due_at, d.unextended_due_at) == (vn(2025, 4, 25, 17, 0), vn(2025, 4, 24, 17, 0))
    do(db, cmd.request_supplement, code=d.code, actor=users["pp.cv"], missing=["Bản chính"], note="Mờ",
       now=vn(2025, 4, 24, 10, 0))
    do(db, cmd.record_supplement, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 28, 8, 0))
    d = cmd.get_dossier(db, d.code)
    # Left at 10:00 on 24/4: 300 minutes to 24/4 17:00 (10:00–11:30, 13:30–17:00), 780 to the extended 25/4
    # 17:00. Resumed Mon 28/4 08:00: 300 → 28/4 15:00; 780 → 28/4 (420) + 29/4 07:00–11:30 (270) + 90 → 15:00.
    assert d.unextended_due_at == vn(2025, 4, 28, 15, 0)
    assert d.due_at == vn(2025, 4, 29, 15, 0)
    db.commit()
