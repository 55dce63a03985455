"""The dossier list, the dossier page (record, control sheet, documents, events, the procedure's BPMN
diagram) and its actions. Reads are engine.queries' with the signed-in user; each action checks the
dossier is visible, runs the same engine command as the JSON API with the version the page showed, and
commits. A failed action comes back as its own form with the message next to the field it concerns."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Callable, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import Now, Session, commit
from api.web.console import CurrentViewer, Viewer, field_errors, render
from engine import access, documents, org
from engine import dossiers as cmd
from engine.accountability import subtree_ids
from engine.catalog import procedure_names
from engine.config import settings
from engine.errors import InvalidInput, MotcuaError
from engine.models import DOSSIER_STATUSES, Step
from engine.queries import check_visible, dossier_detail, dossier_diagram, list_dossiers

router = APIRouter(include_in_schema=False)
# No control characters: no dossier code has them, and PostgreSQL refuses NUL in a query outright.
Code = Annotated[str, Path(max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Version = Annotated[int | None, Form(ge=1, le=2**31 - 1)]
Text = Annotated[str, Form(max_length=2000)]
Choices = Annotated[list[str], Form(max_length=50)]

# What the page says after an action succeeded (?done=…).
DONE_VI = {"claim": "Bạn đã nhận xử lý bước này.", "assign": "Đã phân công bước; người được giao đã được báo.",
           "complete": "Đã hoàn thành bước và chuyển bước tiếp theo.",
           "request_supplement": "Đã yêu cầu công dân bổ sung hồ sơ; thời hạn giải quyết tạm dừng.",
           "record_supplement": "Đã ghi nhận hồ sơ bổ sung; thời hạn giải quyết tính tiếp.",
           "refuse": "Đã đề xuất từ chối; hồ sơ chuyển lãnh đạo xem xét.",
           "transfer": "Đã chuyển bước sang đơn vị khác.", "extend": "Đã gia hạn và lập thư xin lỗi (mẫu 04).",
           "stop": "Đã dừng giải quyết hồ sơ.", "return": "Đã trả kết quả cho công dân."}
# Names of what the page lists, as the control sheet and the events call them.
LABELS = {
    "events": {"received": "Tiếp nhận hồ sơ", "step_claimed": "Nhận xử lý bước", "step_assigned": "Phân công bước",
               "step_completed": "Hoàn thành bước", "supplement_requested": "Yêu cầu bổ sung",
               "supplement_received": "Nhận hồ sơ bổ sung", "refusal_proposed": "Đề xuất từ chối",
               "transferred": "Chuyển đơn vị", "extended": "Gia hạn, thư xin lỗi", "stopped": "Dừng giải quyết",
               "returned": "Trả kết quả", "document_uploaded": "Nộp giấy tờ", "document_reused": "Dùng lại giấy tờ",
               "result_issued": "Ban hành kết quả điện tử", "payment_recorded": "Ghi nhận thanh toán",
               "step_warning": "Cảnh báo sắp đến hạn bước", "step_overdue": "Bước quá hạn",
               "dossier_warning": "Cảnh báo sắp đến hạn hồ sơ", "dossier_overdue": "Hồ sơ quá hạn",
               "deadlines_recomputed": "Tính lại thời hạn", "rated": "Công dân đánh giá",
               "feedback_filed": "Phản ánh, kiến nghị"},
    "sheet": {"handover": "Bàn giao", "transfer": "Chuyển phòng ban", "inter_agency": "Liên thông",
              "return": "Trả kết quả"},
    "resume": {"continue": "tính tiếp thời gian còn lại", "reset": "tính lại từ đầu"},
    "channel": documents.CHANNELS_VI,
    "outcome": {"granted": "Giải quyết", "refused": "Từ chối", "stopped": "Dừng giải quyết"},
}
# The form field an engine error is about, when the engine names none (shown next to that field).
FIELD_OF = {"decision_invalid": "decision", "use_request_supplement": "decision", "use_refuse": "decision",
            "supplement_details_missing": "missing", "refusal_reason_missing": "reason",
            "extension_reason_missing": "reason", "extension_not_later": "new_due", "extension_too_long": "new_due",
            "stop_reason_missing": "reason", "transfer_same_unit": "to_unit", "unknown_unit": "to_unit",
            "unknown_component": "components", "assignee_invalid": "assignee", "unknown_user": "assignee"}
STEP_ACTIONS = ("assign", "claim", "complete", "request_supplement", "refuse", "transfer", "record_supplement",
                "return")
# Step actions posted without the step: the engine finds the dossier's one supplement or return step.
DOSSIER_ROUTES = {"record_supplement": "supplement", "return": "return"}
# Decisions with their own action (complete_step refuses them): not offered in the completion form.
OWN_ACTION_DECISIONS = ("bo_sung", "tu_choi")


# --- the list ---------------------------------------------------------------------------------------

@router.get("/dossiers")
def dossier_list(request: Request, viewer: CurrentViewer, db: Session, now: Now,
                 status: Literal[("",) + DOSSIER_STATUSES] = "", procedure: str = Query("", max_length=32),
                 unit: str = Query("", max_length=64), late: Literal["", "yes", "no"] = "",
                 received_from: str = Query("", max_length=20), received_to: str = Query("", max_length=20),
                 due_before: str = Query("", max_length=20), cursor: str = Query("", max_length=200),
                 limit: int = Query(50, ge=1, le=200), moved: str = Query("", max_length=64)) -> HTMLResponse:
    filters = {"status": status, "procedure": procedure, "unit": unit, "late": late,
               "received_from": received_from, "received_to": received_to, "due_before": due_before}
    items, next_cursor, errors = [], None, {}
    try:
        page = list_dossiers(db, viewer.user, now=now, status=status or None, procedure=procedure or None,
                             unit=unit or None, late={"yes": True, "no": False}.get(late),
                             received_from=_date(received_from, "received_from"),
                             received_to=_date(received_to, "received_to"),
                             due_before=_end_of(_date(due_before, "due_before")), cursor=cursor or None, limit=limit)
        items, next_cursor = page.items, page.next_cursor
    except MotcuaError as exc:
        errors = _errors_of(exc, {"unknown_unit": "unit", "cursor_invalid": "_"})
    more = None
    if next_cursor:
        kept = {k: v for k, v in filters.items() if v}
        more = "/dossiers?" + urlencode({**kept, **({"limit": limit} if limit != 50 else {}), "cursor": next_cursor})
    return render(request, "dossier_list.html", viewer, status_code=422 if errors else 200, active="dossiers",
                  items=items, more=more, filters=filters, errors=errors, statuses=DOSSIER_STATUSES,
                  procedures=procedure_names(db).items(), units=_units_of(db, viewer), continued=bool(cursor),
                  moved=moved)


def _date(text: str, field: str) -> date | None:
    """dd/mm/yyyy as typed (the browser's own date picker would show its locale's order instead)."""
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        raise InvalidInput(f"Ngày '{text}' không hợp lệ; nhập theo dạng ngày/tháng/năm, ví dụ 24/04/2025",
                           code="date_invalid", data={"field": field})


def _end_of(day: date | None) -> datetime | None:
    """A due date before the day picked, that day included: before the next day's midnight (local time)."""
    return datetime.combine(day + timedelta(days=1), time.min, settings().tz) if day else None


def _units_of(db, viewer: Viewer) -> list[org.UnitInfo]:
    """The filter's choices: the viewer's agency and every unit under it."""
    ids = subtree_ids(db, org.agency_of(db, viewer.unit).id)
    return [u for u in org.all_units(db) if u.id in ids]


# --- the dossier page -------------------------------------------------------------------------------

@router.get("/dossiers/{code}")
def dossier_page(request: Request, code: Code, viewer: CurrentViewer, db: Session, now: Now,
                 done: str = Query("", max_length=32)) -> HTMLResponse:
    detail = dossier_detail(db, viewer.user, code, now=now)
    return render(request, "dossier.html", viewer, active="dossiers", done=DONE_VI.get(done),
                  **_page(db, detail))


@router.get("/dossiers/{code}/diagram.bpmn")
def diagram(code: Code, viewer: CurrentViewer, db: Session) -> Response:
    """The BPMN XML of the dossier's procedure version, for the viewer on the dossier page."""
    return Response(dossier_diagram(db, viewer.user, code), media_type="application/xml",
                    headers={"Cache-Control": "private, max-age=300"})


@router.get("/documents/{document_id}")
def document(document_id: RowId, viewer: CurrentViewer, db: Session, now: Now, download: bool = False) -> Response:
    """A document of a dossier the viewer can see (else 404), checked against its hash and signature:
    inline in the browser's PDF viewer, or as a download."""
    access.visible_document(db, actor=viewer.user, document_id=document_id)
    served = documents.download_url(db, document_id=document_id, actor=viewer.user, now=now)
    if served.url:
        return RedirectResponse(served.url, status_code=307)
    name = served.document.name if served.document.name.lower().endswith(".pdf") else f"{served.document.name}.pdf"
    return Response(served.data, media_type="application/pdf",
                    headers={"Content-Disposition": _disposition("attachment" if download else "inline", name),
                             "Cache-Control": "no-store"})


def _disposition(kind: str, filename: str) -> str:
    """An ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _page(db, detail: dict[str, Any]) -> dict[str, Any]:
    """What dossier.html shows besides the detail itself."""
    steps = detail["steps"]
    current = {s["step"] for s in steps if s["state"] == "ready"}
    done = {s["step"] for s in steps if s["state"] == "completed"} - current
    return {"d": detail, "citizen_id": _masked(detail["applicant"].get("citizen_id", "")),
            "unit_names": {u.code: u.name for u in org.all_units(db)},
            "component_names": {c["code"]: c["name"] for c in detail["procedure"]["components"]},
            "forms": documents.dossier_forms(received_at=detail["received_at"],
                                             event_kinds={e["kind"] for e in detail["events"]},
                                             extended=bool(detail["extension"])),
            "markers": {"done": sorted(done), "current": sorted(current),
                        "open": detail["status"] not in ("returned", "refused", "stopped")},
            "action_forms": _action_forms(detail, _assignees(db, detail)), "units": org.all_units(db),
            "labels": LABELS, "errors_for": {}, "values_for": {}}


def _masked(citizen_id: str) -> str:
    return "•" * max(len(citizen_id) - 4, 0) + citizen_id[-4:]


def _assignees(db, detail: dict[str, Any]) -> dict[int, list[tuple[str, str]]]:
    """For each step the viewer may assign, the officials it may go to: (username, name)."""
    return {s["id"]: [(u.username, u.full_name) for u in cmd.assignees(db, db.get(Step, s["id"]))]
            for s in detail["steps"] if "assign" in s["actions"]}


def _action_forms(detail: dict[str, Any], assignees: dict[int, list[tuple[str, str]]]) -> list[dict[str, Any]]:
    """One form per action the viewer may take now: the step actions on the step they concern, then
    the dossier's own (extend, stop)."""
    forms, base = [], f"/dossiers/{quote(detail['code'])}"
    components = detail["procedure"]["components"]
    # Form 02 lists the missing papers by name; recording the supplement names the components by code.
    options = {"request_supplement": [(c["name"], f"{c['code']} — {c['name']}") for c in components],
               "record_supplement": [(c["code"], f"{c['code']} — {c['name']}") for c in components]}
    for step in detail["steps"]:
        for action in (a for a in STEP_ACTIONS if a in step["actions"]):
            choices = assignees.get(step["id"]) if action == "assign" else options.get(action)
            form = {"key": f"{action}-{step['id']}", "action": action, "step": step,
                    "url": f"{base}/steps/{step['id']}/{action.replace('_', '-')}", "options": choices,
                    "decisions": {k: v for k, v in step["decisions"].items() if k not in OWN_ACTION_DECISIONS}}
            if action in DOSSIER_ROUTES:
                form |= {"key": action, "url": f"{base}/{DOSSIER_ROUTES[action]}"}
            forms.append(form)
    for action in ("extend", "stop"):
        if action in detail["actions"]:
            forms.append({"key": action, "action": action, "step": None, "url": f"{base}/{action}"})
    return forms


# --- actions ----------------------------------------------------------------------------------------

@router.post("/dossiers/{code}/steps/{step_id}/assign")
def assign(request: Request, code: Code, step_id: RowId, viewer: CurrentViewer, db: Session, now: Now,
           assignee: Annotated[str, Form(max_length=64)] = "", expected_version: Version = None) -> Response:
    values = {"assignee": assignee, "expected_version": expected_version}

    def run():
        if not assignee:
            raise InvalidInput("Chọn người được phân công", code="assignee_missing", data={"field": "assignee"})
        cmd.assign(db, code=code, actor=viewer.user, assignee=org.user_by_username(db, assignee), step_id=step_id,
                   now=now, expected_version=expected_version)
    return _act(request, db, viewer, now, code, "assign", f"assign-{step_id}", values, run)


@router.post("/dossiers/{code}/steps/{step_id}/claim")
def claim(request: Request, code: Code, step_id: RowId, viewer: CurrentViewer, db: Session, now: Now,
          expected_version: Version = None) -> Response:
    return _act(request, db, viewer, now, code, "claim", f"claim-{step_id}", {"expected_version": expected_version},
                lambda: cmd.claim(db, code=code, actor=viewer.user, step_id=step_id, now=now,
                                  expected_version=expected_version))


@router.post("/dossiers/{code}/steps/{step_id}/complete")
def complete(request: Request, code: Code, step_id: RowId, viewer: CurrentViewer, db: Session, now: Now,
             decision: Annotated[str, Form(max_length=32)] = "", note: Text = "",
             expected_version: Version = None) -> Response:
    values = {"decision": decision, "note": note, "expected_version": expected_version}
    return _act(request, db, viewer, now, code, "complete", f"complete-{step_id}", values,
                lambda: cmd.complete_step(db, code=code, actor=viewer.user, decision=decision or None,
                                          note=note.strip() or None, step_id=step_id, now=now,
                                          expected_version=expected_version))


@router.post("/dossiers/{code}/steps/{step_id}/request-supplement")
def request_supplement(request: Request, code: Code, step_id: RowId, viewer: CurrentViewer, db: Session, now: Now,
                       missing: Choices = [], missing_other: Text = "", note: Text = "",
                       expected_version: Version = None) -> Response:
    values = {"missing": missing, "missing_other": missing_other, "note": note, "expected_version": expected_version}
    # The components ticked and any other papers typed one a line: what form 02 lists.
    wanted = [*missing, *(line.strip() for line in missing_other.splitlines() if line.strip())]
    return _act(request, db, viewer, now, code, "request_supplement", f"request_supplement-{step_id}", values,
                lambda: cmd.request_supplement(db, code=code, actor=viewer.user, missing=wanted, note=note.strip(),
                                               step_id=step_id, now=now, expected_version=expected_version))


@router.post("/dossiers/{code}/steps/{step_id}/refuse")
def refuse(request: Request, code: Code, step_id: RowId, viewer: CurrentViewer, db: Session, now: Now,
           reason: Text = "", expected_version: Version = None) -> Response:
    values = {"reason": reason, "expected_version": expected_version}
    return _act(request, db, viewer, now, code, "refuse", f"refuse-{step_id}", values,
                lambda: cmd.refuse(db, code=code, actor=viewer.user, reason=reason.strip(), step_id=step_id,
                                   now=now, expected_version=expected_version))


@router.post("/dossiers/{code}/steps/{step_id}/transfer")
def transfer(request: Request, code: Code, step_id: RowId, viewer: CurrentViewer, db: Session, now: Now,
             to_unit: Annotated[str, Form(max_length=64)] = "", note: Text = "",
             expected_version: Version = None) -> Response:
    values = {"to_unit": to_unit, "note": note, "expected_version": expected_version}

    def run():
        if not to_unit:
            raise InvalidInput("Chọn đơn vị nhận", code="transfer_unit_missing", data={"field": "to_unit"})
        cmd.transfer(db, code=code, actor=viewer.user, to_unit=to_unit, note=note.strip() or None,
                     step_id=step_id, now=now, expected_version=expected_version)
    return _act(request, db, viewer, now, code, "transfer", f"transfer-{step_id}", values, run)


@router.post("/dossiers/{code}/supplement")
def record_supplement(request: Request, code: Code, viewer: CurrentViewer, db: Session, now: Now,
                      components: Choices = [], note: Text = "", expected_version: Version = None) -> Response:
    values = {"components": components, "note": note, "expected_version": expected_version}
    return _act(request, db, viewer, now, code, "record_supplement", "record_supplement", values,
                lambda: cmd.record_supplement(db, code=code, actor=viewer.user, components=components,
                                              note=note.strip() or None, now=now,
                                              expected_version=expected_version))


@router.post("/dossiers/{code}/extend")
def extend(request: Request, code: Code, viewer: CurrentViewer, db: Session, now: Now, reason: Text = "",
           new_due: Annotated[str, Form(max_length=40)] = "",
           extra_working_days: Annotated[str, Form(max_length=5)] = "", expected_version: Version = None) -> Response:
    values = {"reason": reason, "new_due": new_due, "extra_working_days": extra_working_days,
              "expected_version": expected_version}
    return _act(request, db, viewer, now, code, "extend", "extend", values,
                lambda: cmd.extend(db, code=code, actor=viewer.user, reason=reason.strip(),
                                   new_due=_local_datetime(new_due, "new_due"),
                                   extra_working_days=_positive(extra_working_days, "extra_working_days"),
                                   now=now, expected_version=expected_version))


@router.post("/dossiers/{code}/stop")
def stop(request: Request, code: Code, viewer: CurrentViewer, db: Session, now: Now, reason: Text = "",
         expected_version: Version = None) -> Response:
    values = {"reason": reason, "expected_version": expected_version}
    return _act(request, db, viewer, now, code, "stop", "stop", values,
                lambda: cmd.stop(db, code=code, actor=viewer.user, reason=reason.strip(), now=now,
                                 expected_version=expected_version))


@router.post("/dossiers/{code}/return")
def return_result(request: Request, code: Code, viewer: CurrentViewer, db: Session, now: Now, note: Text = "",
                  expected_version: Version = None) -> Response:
    values = {"note": note, "expected_version": expected_version}
    return _act(request, db, viewer, now, code, "return", "return", values,
                lambda: cmd.return_result(db, code=code, actor=viewer.user, note=note.strip() or None, now=now,
                                          expected_version=expected_version))


def _local_datetime(text: str, field: str) -> datetime | None:
    """dd/mm/yyyy HH:MM as typed, a local time in the configured zone."""
    text = " ".join(text.split())
    if not text:
        return None
    try:
        return datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=settings().tz)
    except ValueError:
        raise InvalidInput(f"Ngày giờ '{text}' không hợp lệ; nhập theo dạng ngày/tháng/năm giờ:phút, ví dụ "
                           "05/05/2025 17:00", code="datetime_invalid", data={"field": field})


def _positive(text: str, field: str) -> int | None:
    if not text.strip():
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise InvalidInput("Số ngày làm việc phải là số nguyên dương", code="number_invalid", data={"field": field})
    return int(text)


def _act(request: Request, db, viewer: Viewer, now: datetime, code: str, action: str, key: str,
         values: dict[str, Any], command: Callable[[], Any]) -> Response:
    """Visibility first (a foreign dossier is the same 404 page as a missing one), then the command in
    this request's transaction, then commit. An engine error comes back at the action's form."""
    check_visible(db, viewer.user, code)
    try:
        command()
        commit(db)
    except MotcuaError as exc:
        db.rollback()
        return _failed(request, db, viewer, now, code, key, values, exc)
    return _succeeded(request, db, viewer, code, action)


def _succeeded(request: Request, db, viewer: Viewer, code: str, action: str) -> Response:
    url = f"/dossiers/{quote(code)}?done={action}"
    try:
        check_visible(db, viewer.user, code)
    except MotcuaError:     # transferred to another department: no longer this unit's dossier
        url = f"/dossiers?moved={quote(code)}"
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": url})     # htmx loads the page afresh
    return RedirectResponse(url, status_code=303)


def _failed(request: Request, db, viewer: Viewer, now: datetime, code: str, key: str, values: dict[str, Any],
            exc: MotcuaError) -> Response:
    """The action's form again with the message next to its field, as a fragment for htmx or in the whole
    page for a plain post. If the action is no longer offered (someone else acted), just the message."""
    detail = dossier_detail(db, viewer.user, code, now=now)
    context = _page(db, detail) | {"errors_for": {key: _errors_of(exc, FIELD_OF)}, "values_for": {key: values}}
    if not request.headers.get("HX-Request"):
        return render(request, "dossier.html", viewer, status_code=exc.status, active="dossiers", done=None,
                      failed=exc if not _offered(context, key) else None, **context)
    form = next((f for f in context["action_forms"] if f["key"] == key), None)
    if form is None:
        return render(request, "_error.html", viewer, status_code=exc.status, error=exc)
    return render(request, "_dossier_action.html", viewer, status_code=exc.status, form=form, **context)


def _offered(context: dict[str, Any], key: str) -> bool:
    return any(f["key"] == key for f in context["action_forms"])


def _errors_of(exc: MotcuaError, fields: dict[str, str]) -> dict[str, str]:
    errors = field_errors(exc)
    if "_" in errors and exc.code in fields:
        return {fields[exc.code]: exc.message}
    return errors
