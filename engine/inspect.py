"""`motcua dossier show`: everything about one dossier, for a person at a terminal."""
from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import settings
from engine.dossiers import get_dossier, rules_of
from engine.models import ControlSheetRow, Event, Pause, Unit, User

STATUS_VI = {"processing": "đang giải quyết", "waiting_supplement": "chờ bổ sung", "result_ready": "chờ trả kết quả",
             "returned": "đã trả kết quả", "refused": "đã từ chối", "stopped": "đã dừng"}
TIMING_VI = {"early": "trước hạn", "on_time": "đúng hạn", "late": "quá hạn", None: ""}


def _t(value: datetime | None) -> str:
    return value.astimezone(settings().tz).strftime("%d/%m/%Y %H:%M") if value else ""


def render_dossier(db: Session, code: str, out: Console) -> None:
    d = get_dossier(db, code)
    rules = rules_of(d.procedure_version)
    names = _names(db)
    out.print(f"[bold]Hồ sơ {d.code}[/bold]  —  {rules.code} {rules.name} (phiên bản {d.procedure_version.version})")
    out.print(f"Người nộp: {d.applicant['full_name']}  CCCD: {mask_id(d.applicant['citizen_id'])}  "
              f"Kênh: {d.channel}")
    out.print(f"Trạng thái: [bold]{STATUS_VI.get(d.status, d.status)}[/bold]   Tiếp nhận: {_t(d.received_at)}   "
              f"Hẹn trả: {_t(d.due_at)}" + (f" (hẹn ban đầu {_t(d.original_due_at)})" if d.extended_at else "")
              + (f"   Kết thúc: {_t(d.finished_at)}" if d.finished_at else ""))
    out.print(f"Đơn vị tiếp nhận: {d.receiving_unit.name}   Đơn vị giải quyết: {d.handling_unit.name}")
    for step in (s for s in d.steps if s.state == "ready"):
        holder = names["user"].get(step.assignee_id, "(chưa nhận)")
        out.print(f"Bước hiện tại: {step.name} — {names['unit'][step.unit_id]} — {holder} — hạn {_t(step.due_at)}")

    steps = Table(title="Các bước và hạn xử lý")
    for col in ("#", "Bước", "Đơn vị", "Người xử lý", "Bắt đầu", "Hạn", "Hoàn thành", "Quyết định", "Kết quả"):
        steps.add_column(col)
    for s in d.steps:
        steps.add_row(str(s.id), s.name, names["unit"][s.unit_id], names["user"].get(s.completed_by_id or s.assignee_id, ""),
                      _t(s.started_at), _t(s.due_at), _t(s.finished_at), s.decision or "",
                      TIMING_VI.get(s.timing, s.timing) if s.state == "completed" else s.state)
    out.print(steps)

    pauses = db.scalars(select(Pause).where(Pause.dossier_id == d.id).order_by(Pause.id)).all()
    if pauses:
        table = Table(title="Tạm dừng (chờ bổ sung)")
        for col in ("Từ", "Đến", "Phút làm việc còn lại", "Lý do"):
            table.add_column(col)
        for p in pauses:
            table.add_row(_t(p.started_at), _t(p.ended_at) or "(đang chờ)", str(p.remaining_minutes), p.reason)
        out.print(table)

    sheet = Table(title="Phiếu kiểm soát quá trình giải quyết hồ sơ")
    for col in ("Thời gian", "Bên giao", "Bên nhận", "Bước", "Hạn bước", "Kết quả", "Ghi chú"):
        sheet.add_column(col)
    for r in db.scalars(select(ControlSheetRow).where(ControlSheetRow.dossier_id == d.id).order_by(ControlSheetRow.id)):
        giver = f"{names['user'].get(r.giver_id, '')} ({names['unit'][r.giver_unit_id]})"
        receiver = names["unit"].get(r.receiver_unit_id, "công dân") if r.receiver_unit_id else "công dân"
        sheet.add_row(_t(r.at), giver, receiver, r.step_name, _t(r.step_due_at), TIMING_VI.get(r.timing, ""),
                      r.note or "")
    out.print(sheet)

    events = Table(title="Sự kiện (chuỗi băm)")
    for col in ("#", "Thời gian", "Loại", "Người", "Băm"):
        events.add_column(col)
    for e in db.scalars(select(Event).where(Event.dossier_id == d.id).order_by(Event.seq)):
        events.add_row(str(e.seq), _t(e.at), e.kind, names["user"].get(e.actor_id, ""), e.hash[:12])
    out.print(events)


def _names(db: Session) -> dict[str, dict]:
    return {"unit": dict(db.execute(select(Unit.id, Unit.name)).all()),
            "user": dict(db.execute(select(User.id, User.full_name)).all())}


def mask_id(value: str) -> str:
    """Personal data is masked wherever it is printed: keep the last 4 digits only."""
    return "*" * max(len(value) - 4, 0) + value[-4:]
