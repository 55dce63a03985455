"""The lifecycle commands over every procedure's paths. Each command restores the workflow from the
database and saves it again, and the session is emptied between commands (`fresh`), so every step is a
save/restore. Appointments are hand-computed in the comments (office hours of the sample units:
07:00–11:30 and 13:30–17:00)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import dossiers as cmd
from engine.errors import Conflict, Forbidden, Inadmissible, IncompleteDossier, InvalidInput, NotFound
from engine.events import verify_chain
from engine.models import CodeCounter, ControlSheetRow, Dossier, Event, Pause, Step
from tests.conftest import vn

APPLICANT = {"full_name": "Nguyễn Văn An", "citizen_id": "052088004321", "phone": "0905123456"}


def required(db, code: str) -> list[str]:
    from engine.catalog import version_for
    rules = cmd.rules_of(version_for(db, code, vn(2025, 4, 24, 9, 0).date()))
    return [c["code"] for c in rules.components if c.get("required")]


def fresh(db) -> None:
    """The boundary: commit the command's transaction and forget every loaded object."""
    db.commit()
    db.expunge_all()


def receive(db, users, code="2.000815", officer="pp.motcua", at=None, **kw) -> Dossier:
    d = cmd.receive(db, actor=users[officer], procedure_code=code, applicant=kw.pop("applicant", APPLICANT),
                    components=kw.pop("components", None) or required(db, code), now=at or vn(2025, 4, 24, 9, 0),
                    **kw).dossier
    code_ = d.code
    fresh(db)
    d = cmd.get_dossier(db, code_)
    db.commit()       # end the read: on SQLite an open transaction holds the write lock
    return d


def ready(db, code) -> list[str]:
    return [s.bpmn_id for s in cmd.get_dossier(db, code).steps if s.state == "ready"]


def sheet(db, code) -> list[ControlSheetRow]:
    d = cmd.get_dossier(db, code)
    return list(db.scalars(select(ControlSheetRow).where(ControlSheetRow.dossier_id == d.id)
                           .order_by(ControlSheetRow.id)))


def do(db, fn, **kw):
    result = fn(db, **kw)
    fresh(db)
    return result


# --- same-day procedures ----------------------------------------------------------------------------

def test_certified_copy_normal_path_same_day(db, users):
    # Thursday 24/4/2025 09:00, before the 15:00 cut-off: due 17:00 the same day.
    d = receive(db, users)
    assert d.code.startswith("000.35.08.X01-250424-")
    assert d.due_at == vn(2025, 4, 24, 17, 0)
    assert d.status == "processing" and ready(db, d.code) == ["tham_dinh"]
    do(db, cmd.complete_step, code=d.code, actor=users["pp.cv"], decision="dat", note="Đạt",
       now=vn(2025, 4, 24, 9, 30))
    assert ready(db, d.code) == ["phe_duyet"]
    do(db, cmd.complete_step, code=d.code, actor=users["pp.ld"], decision="dong_y", now=vn(2025, 4, 24, 10, 0))
    assert cmd.get_dossier(db, d.code).status == "result_ready"
    do(db, cmd.return_result, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 24, 10, 30))
    d = cmd.get_dossier(db, d.code)
    assert (d.status, d.outcome, d.finished_at) == ("returned", "granted", vn(2025, 4, 24, 10, 30))
    rows = sheet(db, d.code)
    assert [r.step_name for r in rows][0] == "Tiếp nhận hồ sơ"
    assert [r.kind for r in rows] == ["handover", "handover", "handover", "return"]
    assert all(r.timing in ("early", "on_time") for r in rows)
    kinds = list(db.scalars(select(Event.kind).where(Event.dossier_id == d.id).order_by(Event.seq)))
    assert kinds == ["received", "step_completed", "step_completed", "returned"]
    assert list(verify_chain(db)) == []


def test_cutoff_after_15h_and_on_a_swapped_day_off(db, users):
    # 15:00 exactly is after the cut-off: next working day, Friday 25/4/2025 17:00.
    assert receive(db, users, at=vn(2025, 4, 24, 15, 0)).due_at == vn(2025, 4, 25, 17, 0)
    # 14:59 is before it: the same day.
    assert receive(db, users, at=vn(2025, 4, 24, 14, 59)).due_at == vn(2025, 4, 24, 17, 0)
    # Online on Friday 2/5/2025 (a day off swapped with Saturday 26/4): Monday 5/5/2025.
    assert receive(db, users, at=vn(2025, 5, 2, 10, 0), channel="online").due_at == vn(2025, 5, 5, 17, 0)


def test_supplement_pauses_the_clock_and_continues(db, users):
    d = receive(db, users)                                  # due Thu 24/4/2025 17:00
    form = do(db, cmd.request_supplement, code=d.code, actor=users["pp.cv"], missing=["Bản chính"],
              note="Bản chính bị mờ", now=vn(2025, 4, 24, 10, 0))
    assert form["form"] == "02" and form["missing"] == ["Bản chính"]
    d = cmd.get_dossier(db, d.code)
    assert d.status == "waiting_supplement" and d.paused_at == vn(2025, 4, 24, 10, 0)
    assert ready(db, d.code) == ["cho_bo_sung"]
    pause = db.scalar(select(Pause).where(Pause.dossier_id == d.id))
    # Left at 10:00: 10:00–11:30 (90) + 13:30–17:00 (210) = 300 working minutes.
    assert pause.remaining_minutes == 300 and pause.reason == "Bản chính bị mờ"
    # The citizen comes back Monday 28/4 08:00: 300 minutes = 08:00–11:30 (210) + 13:30–15:00 (90).
    do(db, cmd.record_supplement, code=d.code, actor=users["pp.motcua"], note="Đã bổ sung",
       now=vn(2025, 4, 28, 8, 0))
    d = cmd.get_dossier(db, d.code)
    assert d.status == "processing" and d.paused_at is None and d.supplement_count == 1
    assert d.due_at == vn(2025, 4, 28, 15, 0)
    assert db.scalar(select(Pause.ended_at).where(Pause.dossier_id == d.id)) == vn(2025, 4, 28, 8, 0)
    assert ready(db, d.code) == ["tham_dinh"]
    do(db, cmd.complete_step, code=d.code, actor=users["pp.cv"], decision="dat", now=vn(2025, 4, 28, 9, 0))
    do(db, cmd.complete_step, code=d.code, actor=users["pp.ld"], decision="dong_y", now=vn(2025, 4, 28, 10, 0))
    do(db, cmd.return_result, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 28, 14, 0))
    d = cmd.get_dossier(db, d.code)
    assert d.status == "returned" and d.finished_at <= d.due_at


def test_supplement_only_when_waiting_for_one(db, users):
    d = receive(db, users)
    with pytest.raises(Conflict) as exc:
        cmd.record_supplement(db, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 24, 10, 0))
    assert exc.value.code == "not_waiting_supplement"
    db.rollback()
    with pytest.raises(InvalidInput):
        cmd.request_supplement(db, code=d.code, actor=users["pp.cv"], missing=[], note="",
                               now=vn(2025, 4, 24, 10, 0))
    db.rollback()
    with pytest.raises(InvalidInput) as exc:
        cmd.complete_step(db, code=d.code, actor=users["pp.cv"], decision="bo_sung", now=vn(2025, 4, 24, 10, 0))
    assert exc.value.code == "use_request_supplement"
    db.rollback()
    assert cmd.get_dossier(db, d.code).last_event_seq == 1


def test_refusal_is_approved_by_the_leader_and_returned(db, users):
    d = receive(db, users, code="1.001193")
    form = do(db, cmd.refuse, code=d.code, actor=users["pp.cv"], reason="Giấy chứng sinh không hợp lệ",
              now=vn(2025, 4, 24, 9, 30))
    assert form["form"] == "03" and form["reason"] == "Giấy chứng sinh không hợp lệ"
    assert ready(db, d.code) == ["phe_duyet"]
    do(db, cmd.complete_step, code=d.code, actor=users["pp.ld"], decision="dong_y", now=vn(2025, 4, 24, 10, 0))
    assert ready(db, d.code) == ["tra_tu_choi"]
    do(db, cmd.return_result, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 24, 10, 30))
    d = cmd.get_dossier(db, d.code)
    assert (d.status, d.outcome) == ("refused", "refused")


def test_leader_sends_back_to_appraisal(db, users):
    d = receive(db, users, code="2.000884")
    do(db, cmd.complete_step, code=d.code, actor=users["pp.cv"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    do(db, cmd.complete_step, code=d.code, actor=users["pp.ld"], decision="tra_lai", note="Xem lại chữ ký",
       now=vn(2025, 4, 24, 9, 45))
    assert ready(db, d.code) == ["tham_dinh"]
    steps = [(s.bpmn_id, s.decision) for s in cmd.get_dossier(db, d.code).steps if s.state == "completed"]
    assert steps == [("tiep_nhan", None), ("tham_dinh", "dat"), ("phe_duyet", "tra_lai")]


def test_marriage_verification_loop(db, users):
    d = receive(db, users, code="1.000894")
    do(db, cmd.complete_step, code=d.code, actor=users["pp.cv"], decision="xac_minh", now=vn(2025, 4, 24, 9, 30))
    assert ready(db, d.code) == ["xac_minh"]
    do(db, cmd.complete_step, code=d.code, actor=users["pp.cv"], note="Đã xác minh", now=vn(2025, 4, 24, 11, 0))
    assert ready(db, d.code) == ["tham_dinh"]


def test_stop_at_the_citizens_request(db, users):
    d = receive(db, users)
    notice = do(db, cmd.stop, code=d.code, actor=users["pp.motcua"], reason="Công dân rút hồ sơ",
                now=vn(2025, 4, 24, 9, 20))
    assert notice["form"] == "05"
    d = cmd.get_dossier(db, d.code)
    assert (d.status, d.outcome) == ("stopped", "stopped")
    assert all(s.state != "ready" for s in d.steps)
    with pytest.raises(Conflict) as exc:
        cmd.complete_step(db, code=d.code, actor=users["pp.cv"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    assert exc.value.code == "dossier_finished"


def test_late_step_is_marked_late_on_the_control_sheet(db, users):
    d = receive(db, users)
    # tham_dinh is due well before 17:00; done on Friday it is late, and so is the dossier.
    do(db, cmd.complete_step, code=d.code, actor=users["pp.cv"], decision="dat", now=vn(2025, 4, 25, 9, 0))
    do(db, cmd.complete_step, code=d.code, actor=users["pp.ld"], decision="dong_y", now=vn(2025, 4, 25, 9, 30))
    do(db, cmd.return_result, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 25, 10, 0))
    rows = sheet(db, d.code)
    assert rows[1].timing == "late"
    returned = db.scalar(select(Event).where(Event.kind == "returned"))
    assert returned.data["on_time"] is False


# --- the construction permit: several departments, inter-agency, extension, reset on supplement -----

def test_construction_permit_full_path(db, users):
    # 15 working days after Thu 24/4/2025: Fri 25, Sat 26 (worked swap), Mon 28, Tue 29 (30/4, 1/5 holidays,
    # Fri 2/5 swapped off), 5–9/5, 12–16/5, Mon 19/5 → due Mon 19/5/2025 17:00.
    d = receive(db, users, code="XD.GPXD.01", officer="ts.motcua", at=vn(2025, 4, 24, 9, 30))
    assert d.due_at == vn(2025, 5, 19, 17, 0)
    assert d.handling_unit.code == "TS-KTHT"
    do(db, cmd.claim, code=d.code, actor=users["ts.ktht.cv"], now=vn(2025, 4, 25, 8, 0))
    do(db, cmd.complete_step, code=d.code, actor=users["ts.ktht.cv"], decision="lay_y_kien",
       now=vn(2025, 4, 28, 9, 0))
    assert ready(db, d.code) == ["lay_y_kien_lien_thong"]
    do(db, cmd.transfer, code=d.code, actor=users["ts.ktht.cv"], to_unit="BD-SXD", note="Liên thông",
       now=vn(2025, 4, 28, 9, 30))
    rows = sheet(db, d.code)
    assert rows[-1].kind == "inter_agency"
    # The other agency's specialist now holds the step; the district department does not.
    with pytest.raises(Forbidden):
        cmd.complete_step(db, code=d.code, actor=users["ts.ktht.cv"], now=vn(2025, 4, 29, 9, 0))
    db.rollback()
    do(db, cmd.complete_step, code=d.code, actor=users["sxd.cv"], note="Thống nhất", now=vn(2025, 5, 6, 9, 0))
    d = cmd.get_dossier(db, d.code)
    assert d.handling_unit.code == "TS-KTHT" and ready(db, d.code) == ["tham_dinh"]
    # A supplement: the permit's clock restarts (resume: reset) from the day the papers arrive, Wed 14/5:
    # 15 working days after it → Wed 4/6/2025 17:00.
    do(db, cmd.request_supplement, code=d.code, actor=users["ts.ktht.cv"], missing=["Bản vẽ móng"],
       note="Thiếu bản vẽ móng", now=vn(2025, 5, 7, 9, 0))
    do(db, cmd.record_supplement, code=d.code, actor=users["ts.motcua"], now=vn(2025, 5, 14, 8, 0))
    d = cmd.get_dossier(db, d.code)
    assert d.due_at == vn(2025, 6, 4, 17, 0)
    # The appraisal restarts with its share of the new time: 25% of 14/5 08:00 → 4/6 17:00, i.e. of
    # 420 + 15 × 480 = 7620 working minutes, is 1905: 14/5 (420), 15/5, 16/5, 19/5 (3 × 480) and 45 minutes
    # of Tuesday 20/5 → 07:45.
    step = next(s for s in d.steps if s.state == "ready")
    assert (step.bpmn_id, step.due_at) == ("tham_dinh", vn(2025, 5, 20, 7, 45))
    do(db, cmd.complete_step, code=d.code, actor=users["ts.ktht.cv"], decision="dat", now=vn(2025, 5, 15, 9, 0))
    assert ready(db, d.code) == ["kiem_tra_hien_truong"]
    do(db, cmd.complete_step, code=d.code, actor=users["ts.ktht.cv"], now=vn(2025, 5, 20, 9, 0))
    do(db, cmd.complete_step, code=d.code, actor=users["ts.ktht.ld"], decision="dong_y", now=vn(2025, 5, 22, 9, 0))
    # The People's Committee's leader signs: a different unit from the handling department.
    step = next(s for s in cmd.get_dossier(db, d.code).steps if s.state == "ready")
    assert step.bpmn_id == "ky_giay_phep" and step.unit_id == users["ts.ubnd.ld"].unit_id
    letter = do(db, cmd.extend, code=d.code, actor=users["ts.ubnd.ld"], reason="Chờ họp thống nhất",
                extra_working_days=3, now=vn(2025, 6, 2, 9, 0))
    # Three working days after Wed 4/6: Thu 5, Fri 6, Mon 9/6/2025 17:00.
    assert letter["form"] == "04" and letter["new_appointment"] == vn(2025, 6, 9, 17, 0).isoformat()
    with pytest.raises(Conflict) as exc:
        cmd.extend(db, code=d.code, actor=users["ts.ubnd.ld"], reason="lần hai", extra_working_days=1,
                   now=vn(2025, 6, 3, 9, 0))
    assert exc.value.code == "already_extended"
    db.rollback()
    do(db, cmd.complete_step, code=d.code, actor=users["ts.ubnd.ld"], decision="dong_y", now=vn(2025, 6, 5, 9, 0))
    do(db, cmd.return_result, code=d.code, actor=users["ts.motcua"], now=vn(2025, 6, 6, 8, 0))
    d = cmd.get_dossier(db, d.code)
    assert d.status == "returned" and d.due_at == vn(2025, 6, 9, 17, 0)
    assert d.original_due_at == vn(2025, 5, 19, 17, 0)
    assert list(verify_chain(db, d.code)) == []


def test_transfer_to_another_department_changes_the_handling_unit(db, users):
    d = receive(db, users, code="2.000815", officer="ts.motcua")
    assert d.handling_unit.code == "TS-TP"
    do(db, cmd.transfer, code=d.code, actor=users["ts.tp.cv"], to_unit="TS-KTHT", now=vn(2025, 4, 24, 9, 30))
    d = cmd.get_dossier(db, d.code)
    assert d.handling_unit.code == "TS-KTHT"
    assert sheet(db, d.code)[-1].kind == "transfer"


# --- bad input: a clear error and nothing written ----------------------------------------------------

def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_bad_intake_writes_nothing(db, users):
    officer = users["pp.motcua"]
    at = vn(2025, 4, 24, 9, 0)
    with pytest.raises(NotFound) as exc:
        cmd.receive(db, actor=officer, procedure_code="9.999999", applicant=APPLICANT, components=[], now=at)
    assert exc.value.code == "unknown_procedure"
    db.rollback()
    with pytest.raises(IncompleteDossier) as exc:
        cmd.receive(db, actor=users["ts.motcua"], procedure_code="XD.GPXD.01", applicant=APPLICANT,
                    components=["TP1"], now=at)
    assert exc.value.data["form"] == "02"
    assert {m["code"] for m in exc.value.data["missing"]} == {"TP2", "TP3"}
    db.rollback()
    with pytest.raises(InvalidInput) as exc:
        cmd.receive(db, actor=officer, procedure_code="2.000815", applicant=dict(APPLICANT, citizen_id="12345"),
                    components=required(db, "2.000815"), now=at)
    assert exc.value.code == "citizen_id_invalid" and "12" in exc.value.message
    db.rollback()
    with pytest.raises(InvalidInput) as exc:
        cmd.receive(db, actor=officer, procedure_code="2.000815", applicant=APPLICANT,
                    components=[*required(db, "2.000815"), "TP99"], now=at)
    assert exc.value.code == "unknown_component"
    db.rollback()
    with pytest.raises(Forbidden):
        cmd.receive(db, actor=users["pp.cv"], procedure_code="2.000815", applicant=APPLICANT,
                    components=required(db, "2.000815"), now=at)
    db.rollback()
    assert (count(db, Dossier), count(db, Event), count(db, CodeCounter), count(db, Step)) == (0, 0, 0, 0)


def test_outside_competence_gets_form_03(db, users):
    # Birth registration is a commune procedure: the district counter cannot receive it.
    with pytest.raises(Inadmissible) as exc:
        cmd.receive(db, actor=users["ts.motcua"], procedure_code="1.001193", applicant=APPLICANT,
                    components=required(db, "1.001193"), now=vn(2025, 4, 24, 9, 0))
    assert exc.value.data["form"] == "03" and "thẩm quyền" in exc.value.data["reason"]
    db.rollback()
    assert count(db, Dossier) == 0


def test_acting_on_a_step_that_is_not_yours_or_not_ready(db, users):
    d = receive(db, users)
    with pytest.raises(Forbidden) as exc:          # a leader cannot do the specialist's step
        cmd.complete_step(db, code=d.code, actor=users["pp.ld"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    db.rollback()
    with pytest.raises(Forbidden):                 # another commune's specialist
        cmd.complete_step(db, code=d.code, actor=users["tv.cv"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    db.rollback()
    with pytest.raises(InvalidInput) as exc:       # a decision the step does not offer
        cmd.complete_step(db, code=d.code, actor=users["pp.cv"], decision="dong_y", now=vn(2025, 4, 24, 9, 30))
    assert exc.value.code == "decision_invalid"
    db.rollback()
    with pytest.raises(Conflict) as exc:           # returning before the result exists
        cmd.return_result(db, code=d.code, actor=users["pp.motcua"], now=vn(2025, 4, 24, 9, 30))
    assert exc.value.code == "step_not_ready"
    db.rollback()
    with pytest.raises(Conflict):                  # a stale version
        cmd.complete_step(db, code=d.code, actor=users["pp.cv"], decision="dat", expected_version=d.version - 1,
                          now=vn(2025, 4, 24, 9, 30))
    db.rollback()
    with pytest.raises(Forbidden):                 # only a leader signs the apology letter
        cmd.extend(db, code=d.code, actor=users["pp.cv"], reason="x", extra_working_days=1,
                   now=vn(2025, 4, 24, 9, 30))
    db.rollback()
    assert cmd.get_dossier(db, d.code).last_event_seq == 1


def test_claimed_step_belongs_to_its_claimant(db, users):
    d = receive(db, users, code="2.000815", officer="ts.motcua")
    do(db, cmd.claim, code=d.code, actor=users["ts.tp.cv"], now=vn(2025, 4, 24, 9, 10))
    with pytest.raises(Forbidden) as exc:
        cmd.complete_step(db, code=d.code, actor=users["ts.tp.cv2"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    assert exc.value.code == "step_assigned_to_other"
    db.rollback()
    do(db, cmd.assign, code=d.code, actor=users["ts.tp.ld"], assignee=users["ts.tp.cv2"], now=vn(2025, 4, 24, 9, 40))
    do(db, cmd.complete_step, code=d.code, actor=users["ts.tp.cv2"], decision="dat", now=vn(2025, 4, 24, 9, 50))
    assert ready(db, d.code) == ["phe_duyet"]


# --- dossier codes ----------------------------------------------------------------------------------

def test_codes_serial_per_agency_per_day(db, users):
    a = receive(db, users, at=vn(2025, 4, 24, 9, 0)).code
    b = receive(db, users, at=vn(2025, 4, 24, 9, 5)).code
    c = receive(db, users, officer="tv.motcua", at=vn(2025, 4, 24, 9, 5)).code
    e = receive(db, users, at=vn(2025, 4, 25, 9, 0)).code
    assert (a, b) == ("000.35.08.X01-250424-0001", "000.35.08.X01-250424-0002")
    assert c == "000.35.08.X02-250424-0001"
    assert e == "000.35.08.X01-250425-0001"
