"""The lifecycle commands of a dossier. Each command is one transaction's worth of work on a session the
caller commits: load the dossier (version-checked), drive the workflow, update the projection (status,
steps, deadlines), append hash-chained events and control-sheet rows. Nothing here commits."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from engine import accountability, catalog, notify, org, sla, workflow
from engine.calendar import WorkingCalendar
from engine.catalog import ProcedureRules
from engine.config import settings
from engine.errors import (Conflict, Forbidden, Inadmissible, IncompleteDossier, InvalidInput, MotcuaError,
                           NotFound)
from engine.events import new_event
from engine.models import CodeCounter, ControlSheetRow, Dossier, Pause, ProcedureVersion, Step, User
from engine.records import Record, load, save, save_versioned

D, S, P, C = Dossier.__table__, Step.__table__, Pause.__table__, ControlSheetRow.__table__
# The statements a command reads with, built once (bound parameters keep SQLAlchemy's compiled cache hot).
DOSSIER_WITH_OPEN_STEPS = (
    select(D, S).select_from(D.outerjoin(S, and_(S.c.dossier_id == D.c.id, S.c.state == "ready")))
    .where(D.c.code == bindparam("code")).order_by(S.c.id))
STEP_BY_ID = select(S).where(S.c.id == bindparam("id"))
DOSSIER_BY_ID = select(D).where(D.c.id == bindparam("id"))
PAUSES_OF = select(P).where(P.c.dossier_id == bindparam("dossier_id")).order_by(P.c.id)
OPEN_PAUSE = select(P).where(P.c.dossier_id == bindparam("dossier_id"), P.c.ended_at.is_(None))

CITIZEN_ID = re.compile(r"^\d{12}$")
PHONE = re.compile(r"^\+?\d{9,12}$")
ROLE_NAMES = {"counter": "cán bộ một cửa", "specialist": "chuyên viên", "leader": "lãnh đạo",
              "supervisor": "giám sát", "admin": "quản trị"}

_rules_cache: dict[str, ProcedureRules] = {}


def rules_of(version: ProcedureVersion) -> ProcedureRules:
    """Versions are immutable and content-addressed, so parsed rules are cached by content hash."""
    rules = _rules_cache.get(version.sha256)
    if rules is None:
        rules = _rules_cache[version.sha256] = ProcedureRules(version)
    return rules


@dataclass(frozen=True)
class VersionInfo:
    id: int
    xml_sha256: str
    rules: ProcedureRules


_versions: dict[tuple[str, int], VersionInfo] = {}


def version_info(db: Session, version_id: int) -> VersionInfo:
    """What a command needs of a procedure version, loaded once per process (the spec cache included)."""
    key = (str(db.get_bind().url), version_id)
    info = _versions.get(key)
    if info is None:
        row = catalog.get_version(db, version_id)
        workflow.ensure_spec(row.xml_sha256, row.spec_json)
        info = _versions[key] = VersionInfo(row.id, row.xml_sha256, rules_of(row))
    return info


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- input checks -----------------------------------------------------------------------------------

def check_applicant(applicant: dict[str, Any]) -> dict[str, Any]:
    name = str(applicant.get("full_name", "")).strip()
    if not name:
        raise InvalidInput("Thiếu họ tên người nộp hồ sơ (full_name)", code="applicant_name_missing")
    cid = str(applicant.get("citizen_id", "")).strip()
    if not CITIZEN_ID.match(cid):
        raise InvalidInput(f"Số CCCD/định danh cá nhân phải gồm đúng 12 chữ số (đã nhập {len(cid)} ký tự)",
                           code="citizen_id_invalid")
    phone = str(applicant.get("phone") or "").replace(" ", "")
    if phone and not PHONE.match(phone):
        raise InvalidInput("Số điện thoại không hợp lệ: chỉ gồm 9–12 chữ số", code="phone_invalid")
    clean = {"full_name": name, "citizen_id": cid}
    for key in ("phone", "email", "address"):
        if applicant.get(key):
            clean[key] = str(applicant[key]).strip()
    if phone:
        clean["phone"] = phone
    return clean


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{what} phải có múi giờ (ví dụ 2025-04-24T09:00+07:00)", code="naive_datetime")
    return value


# --- dossier codes ----------------------------------------------------------------------------------

LOOKUP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"     # no 0/O, 1/I: read aloud and typed from paper


def new_lookup_code() -> str:
    return "".join(secrets.choice(LOOKUP_ALPHABET) for _ in range(8))


def next_code(db: Session, agency: str, received: datetime) -> str:
    """`<agency code>-YYMMDD-NNNN`, serial per agency per local day. The upsert takes the counter's row
    lock until commit, so concurrent intakes at one agency get distinct serials."""
    day = received.astimezone(settings().tz).date()
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(CodeCounter).values(agency_code=agency, day=day, last=1)
    stmt = stmt.on_conflict_do_update(index_elements=["agency_code", "day"],
                                      set_={"last": CodeCounter.last + 1}).returning(CodeCounter.last)
    serial = db.execute(stmt).scalar_one()
    return settings().dossier_code_format.format(agency=agency, date=day, serial=serial)


# --- receive ----------------------------------------------------------------------------------------

@dataclass
class Received:
    dossier: Record
    receipt: dict[str, Any]


def receive(db: Session, *, actor: User, procedure_code: str, applicant: dict[str, Any],
            components: list[str], channel: str = "counter", handling_unit: str | None = None,
            now: datetime | None = None) -> Received:
    """Check a dossier at intake. Complete: it gets a code, an appointment and a receipt (form 01).
    Incomplete: IncompleteDossier carrying the form 02 data. Outside this unit's competence or a
    procedure not in force: Inadmissible carrying the form 03 data. Nothing is written unless received."""
    now = _aware(now or utcnow(), "Thời điểm tiếp nhận")
    if actor.role != "counter" or not actor.unit.one_stop or not actor.active:
        raise Forbidden("Chỉ cán bộ Bộ phận Một cửa được tiếp nhận hồ sơ", code="not_counter_officer")
    if channel not in ("counter", "post", "online"):
        raise InvalidInput("Kênh tiếp nhận phải là counter, post hoặc online", code="channel_invalid")
    applicant = check_applicant(applicant)
    tz = settings().tz
    version = catalog.version_for(db, procedure_code, now.astimezone(tz).date())
    rules = version_info(db, version.id).rules     # and the spec is in the cache
    receiving = org.unit(db, actor.unit_id)
    agency = org.agency_of(db, receiving)
    if agency.level not in rules.levels:
        raise Inadmissible(
            f"Thủ tục {rules.code} không thuộc thẩm quyền tiếp nhận của {agency.name}",
            code="outside_competence", data=_form03(rules, applicant, agency,
                                                    f"Thủ tục không thuộc thẩm quyền của {agency.name}"))
    presented = _check_components(rules, components, applicant)
    handling = _handling_unit(db, receiving, handling_unit, version.field)

    cal = sla.calendar_of(receiving)
    due, budget = sla.appointment(cal, rules, now)
    warn = sla.warn_time(cal, now, budget, sla.warning_minutes(cal, rules))
    code = next_code(db, org.agency_code(db, receiving), now)

    wf = workflow.new_workflow(version.xml_sha256)
    wf.do_engine_steps()
    dossier = Record(D, dict(
        code=code, procedure_version_id=version.id, receiving_unit_id=receiving.id, handling_unit_id=handling.id,
        received_by_id=actor.id, status="processing", channel=channel, applicant=applicant,
        components=presented, received_at=now, due_at=due, warn_at=warn, budget_minutes=budget,
        original_due_at=due, paused_at=None, supplement_count=0, extended_at=None, extension=None,
        finished_at=None, outcome=None, next_fire_at=None, warned_at=None, overdue_at=None, workflow_state="",
        last_event_seq=0, last_event_hash="", lookup_code=new_lookup_code(), version=1, id=None), new=True)
    run = Command(db, dossier, [], wf, rules, now)
    intake = next((t for t in workflow.ready_user_tasks(wf) if t.task_spec.bpmn_id == "tiep_nhan"), None)
    if intake is None:
        raise MotcuaError(f"Quy trình {rules.code} không bắt đầu bằng bước tiếp nhận", code="bad_diagram")
    run.sync(actor)                      # the intake step appears, held by the receiving officer
    run.complete(intake, actor, decision=None, note="Tiếp nhận hồ sơ")
    run.event("received", actor, {
        "procedure": rules.code, "procedure_version": version.version, "channel": channel,
        "components": presented, "appointment": due.isoformat(), "handling_unit": handling.code})
    run.notify_citizen("received", received=now, appointment=due)
    run.save()
    return Received(dossier, _receipt(dossier, rules, receiving))


def _handling_unit(db: Session, receiving: org.UnitInfo, code: str | None, field: str) -> org.UnitInfo:
    """The competent department, or the one the counter names — which must belong to the same agency."""
    if not code:
        return org.handling_unit_for(db, receiving, field)
    chosen = org.unit_by_code(db, code)
    if org.agency_of(db, chosen).id != org.agency_of(db, receiving).id:
        raise InvalidInput(f"Đơn vị {code} không thuộc cơ quan tiếp nhận; hồ sơ liên thông được chuyển sau khi "
                           "tiếp nhận", code="handling_unit_foreign")
    return chosen


def _check_components(rules: ProcedureRules, given: list[str], applicant: dict) -> list[str]:
    known = {c["code"]: c for c in rules.components}
    unknown = [c for c in given if c not in known]
    if unknown:
        raise InvalidInput(f"Thủ tục {rules.code} không có thành phần hồ sơ {', '.join(unknown)}",
                           code="unknown_component", data={"unknown": unknown, "known": list(known)})
    missing = [c for c in rules.components if c.get("required") and c["code"] not in given]
    if missing:
        names = "; ".join(c["name"] for c in missing)
        raise IncompleteDossier(f"Hồ sơ chưa đủ thành phần: {names}", data={
            "form": "02", "procedure": {"code": rules.code, "name": rules.name},
            "applicant": {"full_name": applicant["full_name"]},
            "missing": [{"code": c["code"], "name": c["name"]} for c in missing],
            "guidance": "Đề nghị bổ sung các thành phần hồ sơ còn thiếu nêu trên."})
    return list(dict.fromkeys(given))


def _form03(rules: ProcedureRules, applicant: dict, agency: org.UnitInfo, reason: str) -> dict[str, Any]:
    return {"form": "03", "procedure": {"code": rules.code, "name": rules.name},
            "applicant": {"full_name": applicant["full_name"]}, "agency": agency.name, "reason": reason}


def receipt_data(db: Session, dossier: Dossier) -> dict[str, Any]:
    """Form 01 (receipt and appointment) content."""
    return _receipt(dossier, version_info(db, dossier.procedure_version_id).rules,
                    org.unit(db, dossier.receiving_unit_id))


def _receipt(dossier: Dossier | Record, rules: ProcedureRules, receiving: org.UnitInfo) -> dict[str, Any]:
    tz = settings().tz
    names = {c["code"]: c["name"] for c in rules.components}
    return {"form": "01", "code": dossier.code, "lookup_code": dossier.lookup_code,
            "procedure": {"code": rules.code, "name": rules.name},
            "applicant": {k: dossier.applicant.get(k) for k in ("full_name", "citizen_id", "address", "phone")},
            "components": [{"code": c, "name": names.get(c, c)} for c in dossier.components],
            "received_at": dossier.received_at.astimezone(tz).isoformat(),
            "appointment": dossier.due_at.astimezone(tz).isoformat(),
            "unit": receiving.name, "fee": rules.fee}


# --- loading and acting -----------------------------------------------------------------------------

def get_dossier(db: Session, code: str, *, expected_version: int | None = None) -> Dossier:
    """A dossier with all its steps, for reading."""
    # populate_existing: commands write with Core statements, so never trust an identity-map copy.
    dossier = db.scalar(select(Dossier).where(Dossier.code == code).options(selectinload(Dossier.steps))
                        .execution_options(populate_existing=True))
    if dossier is None:
        raise NotFound(f"Không tìm thấy hồ sơ {code}", code="dossier_not_found")
    _check_version(dossier, expected_version)
    return dossier


def _check_version(dossier: Dossier, expected_version: int | None) -> None:
    if expected_version is not None and dossier.version != expected_version:
        raise Conflict(f"Hồ sơ {dossier.code} vừa được người khác cập nhật (phiên bản {dossier.version}, "
                       f"bạn đang xem {expected_version}); hãy tải lại", code="version_conflict")


class Command:
    """One command's work on one dossier: drive the workflow, bring the projection up to date, and
    write it all in `save()`: the dossier's version-checked update first, then the rows it added.

    Other engine modules that change a dossier use it the same way:
        run = Command.load(db, code, now, expected_version)
        ...                                   # change run.dossier (a Record), add rows to run.written
        run.event("kind", actor, {...})
        run.save()
    """

    def __init__(self, db: Session, dossier: Record, open_steps: list[Record], wf, rules: ProcedureRules,
                 now: datetime):
        self.db, self.dossier, self.wf, self.rules, self.now = db, dossier, wf, rules, now
        self.conn = db.connection()
        self.open = open_steps
        self.written: list[Record] = []     # events, control-sheet rows, pauses
        self._calendars: dict[int, WorkingCalendar] = {}
        # What request_supplement knows and the pause row records (the pause starts inside sync).
        self._pending_note: str | None = None
        self._pending_missing: list[str] = []

    @classmethod
    def load(cls, db: Session, code: str, now: datetime | None, expected_version: int | None) -> Command:
        """The dossier and its open steps; the version's rules and spec come from the cache."""
        rows = db.connection().execute(DOSSIER_WITH_OPEN_STEPS, {"code": code}).all()
        if not rows:
            raise NotFound(f"Không tìm thấy hồ sơ {code}", code="dossier_not_found")
        dossier = Record(D, {c.name: rows[0]._mapping[c] for c in D.c})
        steps = [Record(S, {c.name: row._mapping[c] for c in S.c}) for row in rows if row._mapping[S.c.id] is not None]
        _check_version(dossier, expected_version)
        if dossier.status in ("returned", "refused", "stopped"):
            raise Conflict(f"Hồ sơ {code} đã kết thúc ({dossier.status}); không thể thao tác thêm",
                           code="dossier_finished")
        info = version_info(db, dossier.procedure_version_id)
        now = _aware(now or utcnow(), "Thời điểm")
        return cls(db, dossier, steps, workflow.restore(dossier.workflow_state), info.rules, now)

    @classmethod
    def load_record(cls, db: Session, dossier_id: int, now: datetime) -> Command:
        """The dossier row alone, finished or not, to append audit events to its chain (no workflow)."""
        found = load(db.connection(), D, DOSSIER_BY_ID, {"id": dossier_id})
        if not found:
            raise NotFound(f"Không tìm thấy hồ sơ {dossier_id}", code="dossier_not_found")
        return cls(db, found[0], [], None, None, _aware(now, "Thời điểm"))

    def save(self) -> None:
        d = self.dossier
        if self.wf is not None:
            self._set_timers()
        if d.is_new:
            save(self.conn, d)
        elif not save_versioned(self.conn, d):     # someone else's command on this dossier committed first
            raise Conflict(f"Hồ sơ {d.code} vừa được người khác cập nhật; hãy tải lại và thử lại",
                           code="version_conflict")
        # What the caller may answer with (the new version for the client's next expected_version)
        # without reading the row again: the dossiers saved in this session.
        self.db.info.setdefault("saved_dossiers", {})[d.code] = d
        for record in [*self.open, *self.written]:
            if getattr(record, "dossier_id", None) is None:
                record.dossier_id = d.id
            save(self.conn, record)

    def _set_timers(self) -> None:
        """Open deadlines fire their warning, then their overdue; paused, finished and closed ones don't."""
        d = self.dossier
        running = d.paused_at is None and d.finished_at is None
        d.next_fire_at = sla.next_fire(d.warn_at, d.due_at, d.warned_at, d.overdue_at) if running else None
        for step in self.open:
            step.next_fire_at = sla.next_fire(step.warn_at, step.due_at, step.warned_at, step.overdue_at) \
                if step.state == "ready" else None

    def unit(self, unit_id: int) -> org.UnitInfo:
        return org.unit(self.db, unit_id)

    def cal(self, unit: org.UnitInfo) -> WorkingCalendar:
        if unit.id not in self._calendars:
            self._calendars[unit.id] = sla.calendar_of(unit)
        return self._calendars[unit.id]

    # steps ------------------------------------------------------------------------------------------
    def open_steps(self) -> list[Record]:
        return [s for s in self.open if s.state == "ready"]

    def step(self, step_id: int | None, actor: User, kinds: tuple[str | None, ...] | None = None) -> Record:
        """The ready step the command acts on: the one given, or the single one the actor may act on."""
        candidates = self.open_steps()
        if kinds is not None:
            candidates = [s for s in candidates if self.rules.step(s.bpmn_id).get("kind") in kinds]
        if step_id is not None:
            found = next((s for s in self.open if s.id == step_id), None) or \
                next(iter(load(self.conn, S, STEP_BY_ID, {"id": step_id})), None)
            if found is None or found.dossier_id != self.dossier.id:
                raise NotFound(f"Hồ sơ {self.dossier.code} không có bước {step_id}", code="step_not_found")
            if found.state != "ready" or found not in candidates:
                raise Conflict(f"Bước '{found.name}' của hồ sơ {self.dossier.code} không ở trạng thái chờ "
                               "xử lý cho thao tác này", code="step_not_ready")
            return found
        mine = [s for s in candidates if s.role == actor.role and s.unit_id == actor.unit_id]
        if len(mine) == 1:
            return mine[0]
        if not candidates:
            raise Conflict(f"Hồ sơ {self.dossier.code} không có bước nào chờ thao tác này",
                           code="step_not_ready")
        if not mine:
            raise Forbidden(f"Bước đang chờ của hồ sơ {self.dossier.code} không thuộc quyền của bạn",
                            code="step_not_yours")
        raise InvalidInput("Hồ sơ có nhiều bước đang chờ; hãy chỉ rõ bước (step_id)", code="step_ambiguous")

    def check_actor(self, step: Record, actor: User) -> None:
        if not actor.active:
            raise Forbidden("Tài khoản đã bị khóa", code="user_disabled")
        if actor.role != step.role or actor.unit_id != step.unit_id:
            raise Forbidden(f"Bước '{step.name}' do {ROLE_NAMES.get(step.role, step.role)} của đơn vị "
                            f"được giao xử lý, không phải của bạn", code="step_not_yours")
        if step.assignee_id not in (None, actor.id):
            raise Forbidden(f"Bước '{step.name}' đã được giao cho người khác", code="step_assigned_to_other")

    def task_of(self, step: Record):
        for task in workflow.ready_user_tasks(self.wf):
            if str(task.id) == step.task_id:
                return task
        raise Conflict(f"Bước '{step.name}' không còn chờ xử lý", code="step_not_ready")

    def complete(self, task, actor: User, *, decision: str | None, note: str | None) -> Record:
        """Run one user task with the official's decision and hand over to whatever comes next."""
        step = next(s for s in self.open_steps() if s.task_id == str(task.id))
        decisions = self.rules.step(step.bpmn_id).get("decisions") or {}
        if decisions and decision not in decisions:
            raise InvalidInput(f"Bước '{step.name}' cần một quyết định trong: "
                               + ", ".join(f"{k} ({v})" for k, v in decisions.items()),
                               code="decision_invalid", data={"decisions": decisions})
        if not decisions and decision is not None:
            raise InvalidInput(f"Bước '{step.name}' không nhận quyết định", code="decision_invalid")
        if decision is not None:
            task.data[step.bpmn_id] = decision
        try:
            task.run()
            self.wf.do_engine_steps()
        except MotcuaError:
            raise
        except Exception as exc:     # a gateway or script failed: name the element, keep nothing
            raise _workflow_error(exc) from exc
        cal = self.cal(self.unit(step.unit_id))
        step.state, step.finished_at = "completed", self.now
        step.completed_by_id, step.assignee_id = actor.id, step.assignee_id or actor.id
        step.decision, step.note = decision, note
        step.timing = sla.timing(self.now, step.due_at, cal) if step.bpmn_id != "tiep_nhan" else "on_time"
        if step.overdue_at is not None:      # it has an accountability record: say how late it finished
            entry = accountability.finished_entry(self.conn, step, self.now, self.unit(step.unit_id))
            if entry is not None:
                self.written.append(entry)
        new = self.sync(actor, completed=step)
        self._handover(step, actor, new)
        return step

    def sync(self, actor: User | None, completed: Record | None = None) -> list[Record]:
        """Make the open step rows match the workflow's ready user tasks; move the clock and status.
        The clock moves first: a step that starts as the dossier resumes gets its share of the new time."""
        ready = {str(t.id): t for t in workflow.ready_user_tasks(self.wf)}
        for step in self.open_steps():
            if step.task_id not in ready:
                step.state, step.finished_at = "cancelled", self.now
        self._update_clock_and_status(actor, {self.rules.step(t.task_spec.bpmn_id).get("kind")
                                              for t in ready.values()}, completed)
        known = {s.task_id for s in self.open_steps()}
        new = [self._new_step(t) for tid, t in ready.items() if tid not in known]
        self.dossier.workflow_state = workflow.dump(self.wf)
        return new

    def _new_step(self, task) -> Record:
        spec = task.task_spec
        rules_step = self.rules.step(spec.bpmn_id)
        unit = self._step_unit(rules_step.get("unit", "handling"))
        due, warn = sla.step_deadline(self.cal(unit), self.rules, spec.bpmn_id, self.now,
                                      self.dossier.budget_minutes, self.dossier.due_at)
        step = Record(S, dict(
            dossier_id=self.dossier.id, task_id=str(task.id), bpmn_id=spec.bpmn_id,
            name=spec.bpmn_name or spec.bpmn_id, role=workflow.LANE_ROLES.get(spec.lane, "specialist"),
            unit_id=unit.id, assignee_id=None, state="ready", started_at=self.now, due_at=due, warn_at=warn,
            finished_at=None, completed_by_id=None, decision=None, note=None, timing=None, next_fire_at=None,
            warned_at=None, overdue_at=None), new=True)
        self.open.append(step)
        return step

    def _step_unit(self, kind: str) -> org.UnitInfo:
        if kind == "counter":
            return self.unit(self.dossier.receiving_unit_id)
        if kind == "approver":
            return org.approver_unit_for(self.db, self.unit(self.dossier.handling_unit_id))
        return self.unit(self.dossier.handling_unit_id)

    def _update_clock_and_status(self, actor: User | None, kinds: set[str | None], completed: Record | None) -> None:
        d = self.dossier
        if self.wf.completed:
            refused = completed is not None and self.rules.step(completed.bpmn_id).get("kind") == "return_refusal"
            d.status, d.outcome, d.finished_at = ("refused", "refused", self.now) if refused else \
                ("returned", "granted", self.now)
            return
        if "supplement" in kinds:
            if d.paused_at is None:
                self._pause(actor)
            d.status = "waiting_supplement"
        else:
            if d.paused_at is not None:
                self._resume()
            status = "result_ready" if kinds & {"return", "return_refusal"} else "processing"
            if status == "result_ready" and d.status != "result_ready":
                self.notify_citizen("result_ready")
            d.status = status

    # the clock -----------------------------------------------------------------------------------------
    def _pause(self, actor: User | None) -> None:
        d = self.dossier
        if d.supplement_count >= settings().max_supplement_rounds:
            raise Conflict(f"Hồ sơ {d.code} đã yêu cầu bổ sung {d.supplement_count} lần, vượt giới hạn",
                           code="too_many_supplements")
        cal = self.cal(self.unit(d.receiving_unit_id))
        d.paused_at = self.now
        d.supplement_count += 1
        self.written.append(Record(P, dict(
            dossier_id=d.id, started_at=self.now, ended_at=None, reason=self._pending_note or "",
            requested_by_id=actor.id if actor else d.received_by_id,
            remaining_minutes=sla.remaining_minutes(cal, self.now, d.due_at), resume_mode=self.rules.resume,
            missing=self._pending_missing), new=True))

    def open_pause(self) -> Record:
        pause = load(self.conn, P, OPEN_PAUSE, {"dossier_id": self.dossier.id})[0]
        self.written.append(pause)
        return pause

    def _resume(self) -> None:
        d = self.dossier
        pause = self.open_pause()
        cal = self.cal(self.unit(d.receiving_unit_id))
        due, budget = sla.resumed_due(cal, self.rules, self.now, pause.remaining_minutes, d.due_at)
        pause.ended_at = self.now
        if budget is not None:
            d.budget_minutes = budget
        d.due_at = due
        d.warn_at = sla.warn_time(cal, self.now, max(cal.working_minutes_between(self.now, due), 0),
                                  sla.warning_minutes(cal, self.rules))
        d.paused_at = None
        if d.unextended_due_at is not None:    # the appointment without the extension moves too (indicators)
            left = sla.remaining_minutes(cal, pause.started_at, d.unextended_due_at)
            d.unextended_due_at = sla.resumed_due(cal, self.rules, self.now, left, d.unextended_due_at)[0]

    def _handover(self, step: Record, actor: User, new: list[Record]) -> None:
        receiver = new[0] if new else None
        kind = "return" if self.wf.completed else "handover"
        self.sheet_row(kind, step.name, actor, giver_unit_id=step.unit_id,
                       receiver_unit_id=receiver.unit_id if receiver else None,
                       receiver_step=receiver.name if receiver else None, step_due_at=step.due_at,
                       timing=step.timing, note=step.note)

    def sheet_row(self, kind: str, step_name: str, actor: User, **values) -> None:
        self.written.append(Record(C, dict(dossier_id=self.dossier.id, at=self.now, kind=kind, step_name=step_name,
                                           giver_id=actor.id, **values), new=True))

    def event(self, kind: str, actor: User, data: dict[str, Any]) -> None:
        self.written.append(new_event(self.dossier, kind, actor.id, self.now, data))

    def notify_citizen(self, kind: str, **fields: Any) -> None:
        self.written += notify.to_citizen(self.dossier, kind, now=self.now, procedure=self.rules.name, **fields)


def _workflow_error(exc: Exception) -> MotcuaError:
    """SpiffWorkflow wraps what a gateway or script raised; name the element and keep the sandbox's
    verdict (a 422: the diagram asks for something not allowed) apart from other failures (a 500)."""
    task = getattr(exc, "task", None)
    element = task.task_spec.bpmn_id if task is not None else "?"
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, MotcuaError):
        cause = cause.__cause__ or cause.__context__
    err = MotcuaError(f"Lỗi khi chạy phần tử {element} của quy trình: {cause or exc}",
                      code=cause.code if cause else "workflow_error", data={"element": element})
    err.status = 422 if cause else 500
    return err


# --- commands ---------------------------------------------------------------------------------------

def claim(db: Session, *, code: str, actor: User, step_id: int | None = None, now: datetime | None = None,
          expected_version: int | None = None) -> Record:
    run = Command.load(db, code, now, expected_version)
    step = run.step(step_id, actor)
    run.check_actor(step, actor)
    step.assignee_id = actor.id
    run.event("step_claimed", actor, {"step": step.bpmn_id, "step_id": step.id})
    run.save()
    return step


def may_assign(actor: User, step: Step) -> bool:
    """A leader of the step's unit gives any of its steps to one official; the counter its own steps."""
    return actor.unit_id == step.unit_id and (actor.role == "leader" or actor.role == step.role == "counter")


def assignees(db: Session, step: Step) -> list[User]:
    """Who a step may be given to: the active officials of its role in its unit."""
    return list(db.scalars(select(User).where(User.unit_id == step.unit_id, User.role == step.role, User.active)
                           .order_by(User.full_name)))


def assign(db: Session, *, code: str, actor: User, assignee: User, step_id: int | None = None,
           now: datetime | None = None, expected_version: int | None = None) -> Record:
    """A leader (or the counter, for counter steps) of the step's unit gives it to one official."""
    run = Command.load(db, code, now, expected_version)
    candidates = run.open_steps()
    step = next((s for s in candidates if s.id == step_id), None) if step_id is not None else \
        (candidates[0] if len(candidates) == 1 else None)
    if step is None:
        raise InvalidInput("Hãy chỉ rõ bước đang chờ cần phân công (step_id)", code="step_ambiguous")
    if not may_assign(actor, step):
        raise Forbidden("Chỉ lãnh đạo đơn vị xử lý bước này được phân công", code="cannot_assign")
    if assignee.unit_id != step.unit_id or assignee.role != step.role or not assignee.active:
        raise InvalidInput(f"{assignee.full_name} không phải {ROLE_NAMES.get(step.role)} của đơn vị xử lý "
                           "bước này", code="assignee_invalid")
    step.assignee_id = assignee.id
    run.event("step_assigned", actor, {"step": step.bpmn_id, "step_id": step.id, "assignee": assignee.username})
    run.written += notify.to_official(assignee.email, "step_assigned", dossier_id=run.dossier.id, now=run.now,
                                      key=f"{code}:assigned:{run.dossier.last_event_seq}", code=code,
                                      step=step.name, due=step.due_at)
    run.save()
    return step


def complete_step(db: Session, *, code: str, actor: User, decision: str | None = None, note: str | None = None,
                  step_id: int | None = None, now: datetime | None = None,
                  expected_version: int | None = None) -> Record:
    run = Command.load(db, code, now, expected_version)
    step = run.step(step_id, actor, kinds=(None,))
    run.check_actor(step, actor)
    if decision == "bo_sung":
        raise InvalidInput("Dùng thao tác 'yêu cầu bổ sung' để yêu cầu công dân bổ sung hồ sơ",
                           code="use_request_supplement")
    if decision == "tu_choi":
        raise InvalidInput("Dùng thao tác 'từ chối' để từ chối hồ sơ (cần nêu lý do)", code="use_refuse")
    run.complete(run.task_of(step), actor, decision=decision, note=note)
    run.event("step_completed", actor, {"step": step.bpmn_id, "decision": decision, "note": note,
                                        "timing": step.timing})
    run.save()
    return step


def request_supplement(db: Session, *, code: str, actor: User, missing: list[str], note: str,
                       step_id: int | None = None, now: datetime | None = None,
                       expected_version: int | None = None) -> dict[str, Any]:
    """The step holder asks the citizen for more papers: the clock pauses. Returns form 02 data."""
    run = Command.load(db, code, now, expected_version)
    step = run.step(step_id, actor, kinds=(None,))
    run.check_actor(step, actor)
    if "bo_sung" not in (run.rules.step(step.bpmn_id).get("decisions") or {}):
        raise Conflict(f"Ở bước '{step.name}' không thể yêu cầu bổ sung hồ sơ", code="supplement_not_allowed")
    if not missing or not (note or "").strip():
        raise InvalidInput("Yêu cầu bổ sung phải nêu các giấy tờ cần bổ sung (missing) và lý do (note)",
                           code="supplement_details_missing")
    run._pending_note, run._pending_missing = note, list(missing)
    run.complete(run.task_of(step), actor, decision="bo_sung", note=note)
    form = {"form": "02", "code": code, "procedure": {"code": run.rules.code, "name": run.rules.name},
            "applicant": {"full_name": run.dossier.applicant["full_name"]}, "missing": list(missing),
            "reason": note, "requested_at": run.now.isoformat(), "unit": run.unit(run.dossier.handling_unit_id).name}
    run.event("supplement_requested", actor, {"step": step.bpmn_id, "missing": list(missing), "note": note})
    run.notify_citizen("supplement_requested", missing="; ".join(missing), reason=note)
    run.save()
    return form


def record_supplement(db: Session, *, code: str, actor: User, components: list[str] | None = None,
                      note: str | None = None, now: datetime | None = None,
                      expected_version: int | None = None) -> Record:
    """The citizen brought the papers: the counter records it and the clock resumes (continue or reset)."""
    run = Command.load(db, code, now, expected_version)
    if run.dossier.status != "waiting_supplement":
        raise Conflict(f"Hồ sơ {code} không ở trạng thái chờ bổ sung", code="not_waiting_supplement")
    step = run.step(None, actor, kinds=("supplement",))
    run.check_actor(step, actor)
    known = {c["code"] for c in run.rules.components}
    unknown = [c for c in components or [] if c not in known]
    if unknown:
        raise InvalidInput(f"Thủ tục không có thành phần hồ sơ {', '.join(unknown)}", code="unknown_component")
    if components:
        run.dossier.components = list(dict.fromkeys([*run.dossier.components, *components]))
    run.complete(run.task_of(step), actor, decision=None, note=note)
    run.event("supplement_received", actor, {"components": components or [], "note": note,
                                             "resume": run.rules.resume,
                                             "appointment": run.dossier.due_at.isoformat()})
    run.save()
    return run.dossier


def refuse(db: Session, *, code: str, actor: User, reason: str, step_id: int | None = None,
           now: datetime | None = None, expected_version: int | None = None) -> dict[str, Any]:
    """Propose refusal from a step that offers it; the leader approves and the counter returns the
    refusal notice (form 03). Returns form 03 data."""
    run = Command.load(db, code, now, expected_version)
    step = run.step(step_id, actor, kinds=(None,))
    run.check_actor(step, actor)
    if "tu_choi" not in (run.rules.step(step.bpmn_id).get("decisions") or {}):
        raise Conflict(f"Ở bước '{step.name}' không thể từ chối hồ sơ", code="refusal_not_allowed")
    if not (reason or "").strip():
        raise InvalidInput("Từ chối hồ sơ phải nêu rõ lý do", code="refusal_reason_missing")
    run.complete(run.task_of(step), actor, decision="tu_choi", note=reason)
    run.event("refusal_proposed", actor, {"step": step.bpmn_id, "reason": reason})
    run.save()
    return _form03(run.rules, run.dossier.applicant, run.unit(run.dossier.handling_unit_id), reason) | {"code": code}


def return_result(db: Session, *, code: str, actor: User, note: str | None = None, now: datetime | None = None,
                  expected_version: int | None = None) -> Record:
    run = Command.load(db, code, now, expected_version)
    step = run.step(None, actor, kinds=("return", "return_refusal"))
    run.check_actor(step, actor)
    run.complete(run.task_of(step), actor, decision=None, note=note)
    run.event("returned", actor, {"outcome": run.dossier.outcome, "note": note,
                                  "on_time": run.dossier.finished_at <= run.dossier.due_at})
    run.save()
    return run.dossier


def extend(db: Session, *, code: str, actor: User, reason: str, new_due: datetime | None = None,
           extra_working_days: int | None = None, now: datetime | None = None,
           expected_version: int | None = None) -> dict[str, Any]:
    """Once per dossier: the head of the handling unit apologises and sets a new appointment (form 04)."""
    run = Command.load(db, code, now, expected_version)
    d = run.dossier
    if d.extended_at is not None:
        raise Conflict(f"Hồ sơ {code} đã được gia hạn một lần; không được gia hạn lần thứ hai",
                       code="already_extended")
    heads = {d.handling_unit_id, org.agency_of(db, run.unit(d.handling_unit_id)).id}
    if actor.role != "leader" or actor.unit_id not in heads:
        raise Forbidden("Chỉ lãnh đạo đơn vị giải quyết hồ sơ được ký thư xin lỗi và hẹn lại", code="cannot_extend")
    if not (reason or "").strip():
        raise InvalidInput("Thư xin lỗi phải nêu lý do chậm trễ", code="extension_reason_missing")
    cal = run.cal(run.unit(d.receiving_unit_id))
    if new_due is None:
        days = extra_working_days or run.rules.extension_max_days or 1
        new_due = cal.add_working_days(d.due_at, int(days))
    new_due = _aware(new_due, "Ngày hẹn mới")
    if new_due <= d.due_at:
        raise InvalidInput("Ngày hẹn mới phải sau ngày hẹn hiện tại", code="extension_not_later")
    if run.rules.extension_max_days is not None and \
            cal.working_minutes_between(d.due_at, new_due) > run.rules.extension_max_days * cal.minutes_per_day:
        raise InvalidInput(f"Thủ tục chỉ cho gia hạn tối đa {run.rules.extension_max_days} ngày làm việc",
                           code="extension_too_long")
    letter = {"form": "04", "code": code, "applicant": {"full_name": d.applicant["full_name"]},
              "reason": reason, "previous_appointment": d.due_at.isoformat(),
              "new_appointment": new_due.isoformat(), "signed_by": actor.full_name,
              "unit": run.unit(actor.unit_id).name, "issued_at": run.now.isoformat()}
    d.extension = letter
    d.extended_at = run.now
    d.unextended_due_at = d.due_at      # the on-time indicator keeps comparing with this one
    d.due_at = new_due
    d.warn_at = None
    run.event("extended", actor, letter)
    run.notify_citizen("extended", reason=reason, appointment=new_due)
    run.save()
    return letter


def stop(db: Session, *, code: str, actor: User, reason: str, now: datetime | None = None,
         expected_version: int | None = None) -> dict[str, Any]:
    """At the citizen's request (Circular 03/2025 stop notice): the workflow is cancelled."""
    run = Command.load(db, code, now, expected_version)
    d = run.dossier
    # The counter where it was received, or a leader of the unit handling it (or of its agency).
    leaders_units = {d.handling_unit_id, org.agency_of(db, run.unit(d.handling_unit_id)).id}
    if not ((actor.role == "counter" and actor.unit_id == d.receiving_unit_id) or
            (actor.role == "leader" and actor.unit_id in leaders_units)):
        raise Forbidden("Chỉ cán bộ một cửa nơi tiếp nhận hoặc lãnh đạo đơn vị giải quyết được dừng xử lý hồ sơ",
                        code="cannot_stop")
    if not (reason or "").strip():
        raise InvalidInput("Phải ghi rõ lý do dừng theo đề nghị của công dân", code="stop_reason_missing")
    run.wf.cancel()
    for step in run.open_steps():
        step.state, step.finished_at = "cancelled", run.now
    if d.paused_at is not None:
        run.open_pause().ended_at = run.now
        d.paused_at = None
    d.status, d.outcome, d.finished_at = "stopped", "stopped", run.now
    d.workflow_state = workflow.dump(run.wf)
    notice = {"form": "05", "code": code, "applicant": {"full_name": d.applicant["full_name"]},
              "reason": reason, "stopped_at": run.now.isoformat(), "unit": run.unit(d.receiving_unit_id).name}
    run.event("stopped", actor, notice)
    run.save()
    return notice


def transfer(db: Session, *, code: str, actor: User, to_unit: str, note: str | None = None,
             step_id: int | None = None, now: datetime | None = None,
             expected_version: int | None = None) -> Record:
    """Hand the current step to another department of the same agency (it becomes the handling unit)
    or, inter-agency (liên thông), to another agency for this step only."""
    run = Command.load(db, code, now, expected_version)
    step = run.step(step_id, actor, kinds=(None,))
    run.check_actor(step, actor)
    target = org.unit_by_code(db, to_unit)
    if target.id == step.unit_id:
        raise InvalidInput("Đơn vị nhận trùng với đơn vị đang xử lý", code="transfer_same_unit")
    inter_agency = org.agency_of(db, target).id != org.agency_of(db, run.unit(step.unit_id)).id
    giver_unit = step.unit_id
    step.unit_id, step.assignee_id = target.id, None
    if not inter_agency and step.role != "counter":
        run.dossier.handling_unit_id = target.id
    run.sheet_row("inter_agency" if inter_agency else "transfer", step.name, actor, giver_unit_id=giver_unit,
                  receiver_unit_id=target.id, receiver_step=step.name, step_due_at=step.due_at, note=note)
    run.event("transferred", actor, {"step": step.bpmn_id, "to_unit": target.code, "inter_agency": inter_agency,
                                     "note": note})
    run.save()
    return step


def step_actions(dossier: Dossier, user: User) -> dict[int, list[str]]:
    """For each ready step this user may act on, what they may do on it (the console's forms post
    the step's id, so a dossier with two ready steps is never ambiguous)."""
    if dossier.status in ("returned", "refused", "stopped"):
        return {}
    rules = rules_of(dossier.procedure_version)
    found: dict[int, list[str]] = {}
    for step in (s for s in dossier.steps if s.state == "ready"):
        actions = {"assign"} if may_assign(user, step) else set()
        if user.role == step.role and user.unit_id == step.unit_id and step.assignee_id in (None, user.id):
            actions |= _handler_actions(rules.step(step.bpmn_id), step)
        if actions:
            found[step.id] = sorted(actions)
    return found


def _handler_actions(rule: dict, step: Step) -> set[str]:
    """What the official handling a ready step may do on it."""
    kind, decisions = rule.get("kind"), rule.get("decisions") or {}
    if kind == "supplement":
        return {"record_supplement"}
    if kind in ("return", "return_refusal"):
        return {"return"}
    actions = {"complete", "transfer"}
    if step.assignee_id is None:
        actions.add("claim")
    if "bo_sung" in decisions:
        actions.add("request_supplement")
    if "tu_choi" in decisions:
        actions.add("refuse")
    return actions


def available_actions(dossier: Dossier, user: User) -> list[str]:
    """What this user may do on this dossier now (the console shows exactly these)."""
    if dossier.status in ("returned", "refused", "stopped"):
        return []
    actions: set[str] = set().union(*step_actions(dossier, user).values())
    if user.role == "leader" and dossier.extended_at is None:
        actions.add("extend")
    if user.role in ("counter", "leader"):
        actions.add("stop")
    return sorted(actions)


# --- recomputing deadlines after a calendar change ---------------------------------------------------

def recompute_deadlines(db: Session, *, code: str, reason: str, now: datetime) -> dict[str, Any] | None:
    """Replay the dossier's clock log (receipt, pauses, extension) on today's calendar and, where the
    appointment or an open step's deadline moved, write the new times and an event saying why.
    Timers that already fired stay fired. Returns what changed, or None."""
    run = Command.load(db, code, now, None)
    d, rules = run.dossier, run.rules
    cal = run.cal(run.unit(d.receiving_unit_id))
    pauses = load(run.conn, P, PAUSES_OF, {"dossier_id": d.id})
    due, budget, clock_start = _replayed_due(cal, rules, d, pauses)
    changes: dict[str, Any] = {}
    if due != d.due_at:
        changes["appointment"] = {"from": _iso(d.due_at), "to": _iso(due)}
        d.due_at, d.budget_minutes = due, budget
        if d.extended_at is None:
            d.warn_at = sla.warn_time(cal, clock_start, max(cal.working_minutes_between(clock_start, due), 0),
                                      sla.warning_minutes(cal, rules))
    for step in run.open_steps():
        step_due, step_warn = sla.step_deadline(run.cal(run.unit(step.unit_id)), rules, step.bpmn_id,
                                                step.started_at, d.budget_minutes, d.due_at)
        if step_due != step.due_at:
            changes.setdefault("steps", []).append({"step": step.bpmn_id, "from": _iso(step.due_at),
                                                    "to": _iso(step_due)})
            step.due_at, step.warn_at = step_due, step_warn
    if not changes:
        return None
    if pauses and pauses[-1].ended_at is None:     # the open pause keeps the minutes left on the new clock
        pauses[-1].remaining_minutes = sla.remaining_minutes(cal, pauses[-1].started_at, d.due_at)
        run.written.append(pauses[-1])
    run.written.append(new_event(d, "deadlines_recomputed", None, now, {"reason": reason, **changes}))
    run.save()
    return {"code": code, **changes}


def _iso(value: datetime | None) -> str | None:
    """Times in events and forms: local time with its offset."""
    return value.astimezone(settings().tz).isoformat() if value else None


def _replayed_due(cal: WorkingCalendar, rules: ProcedureRules, d: Record, pauses: list[Record]
                  ) -> tuple[datetime, int, datetime]:
    """(appointment, working minutes granted, start of the running clock segment)."""
    if d.extended_at is not None:          # a date the head of unit signed: not the calendar's to move
        return d.due_at, d.budget_minutes, d.extended_at
    due, budget = sla.appointment(cal, rules, d.received_at)
    start = d.received_at
    for pause in pauses:
        if pause.ended_at is None:
            break
        left = sla.remaining_minutes(cal, pause.started_at, due)
        new_due, new_budget = sla.resumed_due(cal, rules, pause.ended_at, left, due)
        due, budget, start = new_due, new_budget if new_budget is not None else budget, pause.ended_at
    return due, budget, start


def recompute_open(db_factory, *, reason: str, now: datetime) -> list[dict[str, Any]]:
    """Every open dossier, each in its own transaction (a conflict on one leaves the others done)."""
    with db_factory() as db:
        codes = list(db.scalars(select(D.c.code).where(D.c.finished_at.is_(None)).order_by(D.c.id)))
    changed = []
    for code in codes:
        with db_factory() as db, db.begin():
            result = recompute_deadlines(db, code=code, reason=reason, now=now)
        if result:
            changed.append(result)
    return changed
