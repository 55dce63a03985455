"""The supervisor's dashboard: for a unit (with the units under it) and a period, the late dossiers and the
accountability records with the review action, the officials with repeated late steps in the year, the
plan's indicators beside their targets, and the report downloads (Excel, PDF).

Who may see it is what the API's /api/audit/late and /officials allow: supervisors and admins, for a unit
of their scope (engine.access.overseen_unit; a unit outside it is the same 404 as one that does not exist).
Only supervisors review, as /api/audit/records/{id}/review. Every figure comes from the engine functions
those routes and `motcua report kpi` call; this module only lays them out."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import Now, Session, commit
from api.web.console import Viewer, field_errors, render, require_role, safe_next
from engine import access, kpi, org, reports
from engine import accountability as audit
from engine.config import settings
from engine.errors import InvalidInput, MotcuaError

router = APIRouter(include_in_schema=False)

OVERSEERS = ("supervisor", "admin")
UnitCode = Annotated[str | None, Query(max_length=64)]
PeriodCode = Annotated[str | None, Query(max_length=16)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
REPEATED = 2        # the seed plan's "late again repeatedly": two or more late steps in the year
OUTCOMES_VI = {"explained": "Đã giải trình", "accepted": "Chấp nhận lý do trễ hạn", "reminded": "Nhắc nhở",
               "disciplinary_proposal": "Đề nghị xem xét kỷ luật"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- the page ---------------------------------------------------------------------------------------

@router.get("/supervision")
def dashboard(request: Request, db: Session, now: Now, viewer: Viewer = require_role(*OVERSEERS),
              unit: UnitCode = None, period: PeriodCode = None) -> Response:
    home = access.overseen_unit(db, actor=viewer.user, code=None)
    target = access.overseen_unit(db, actor=viewer.user, code=unit or None)
    period = (period or current_quarter(now)).strip().upper()
    context: dict[str, Any] = dict(active="supervision", unit=target, period=period, units=unit_options(db, home),
                                   periods=period_choices(now), period_forms=kpi.PERIOD_FORMS,
                                   outcomes=OUTCOMES_VI)
    try:
        start, last = period_days(period)
    except InvalidInput as exc:
        return render(request, "supervision.html", viewer, status_code=exc.status, errors={"period": exc.message},
                      **context)
    return render(request, "supervision.html", viewer, errors={}, label=kpi.period_label(period), start=start,
                  last=last, **context, **figures(db, viewer, target, start, last, now))


def figures(db, viewer: Viewer, target: org.UnitInfo, start: date, last: date, now: datetime) -> dict[str, Any]:
    """What the dashboard shows for the unit and the local days [start, last]."""
    targets = kpi.load_targets(start.year)
    rows = kpi.indicators(db, unit_code=target.code, start=start, end=last + timedelta(days=1), group_by="unit",
                          targets=targets)
    officials = audit.officials_report(db, year=start.year, unit_code=target.code)
    return {
        "late": audit.late_dossiers(db, unit_code=target.code, start=start, end=last, now=now),
        "records": [with_state(r) for r in access.records(db, actor=viewer.user, unit=target.code, start=start,
                                                          end=last)],
        "officials": [o for o in officials if o.late_steps >= REPEATED],
        "year": start.year,
        "targets": targets,
        "indicators": indicator_view(rows[0]),
        "sub_units": [(r.label, bar(r.values["on_time"])) for r in rows if r.parent == target.code],
        "unit_name": lambda code: org.unit_by_code(db, code).name,
    }


def period_days(period: str) -> tuple[date, date]:
    """The first and last local day of a period, within the years the reports handle."""
    start, end = kpi.period_bounds(period)
    last = end - timedelta(days=1)
    access.period(start, last)
    return start, last


def current_quarter(now: datetime) -> str:
    local = now.astimezone(settings().tz)
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


def period_choices(now: datetime) -> list[tuple[str, str]]:
    """Suggestions for the period field: this year's and last year's quarters, halves and the years, this
    year's months; any other period in the accepted forms may be typed."""
    year = now.astimezone(settings().tz).year
    codes = [f"{y}{part}" for y in (year, year - 1)
             for part in ("-Q1", "-Q2", "-Q3", "-Q4", "-H1", "-H2", "")]
    codes += [f"{year}-{m:02d}" for m in range(1, 13)]
    return [(c, kpi.period_label(c)) for c in codes]


def unit_options(db, root: org.UnitInfo) -> list[tuple[org.UnitInfo, int]]:
    """The caller's unit and the units under it, depth first, with their depth (for indentation)."""
    found, stack = [], [(root, 0)]
    while stack:
        unit, depth = stack.pop()
        found.append((unit, depth))
        stack.extend((child, depth + 1) for child in reversed(org.children(db, unit)))
    return found


def with_state(record: dict[str, Any]) -> dict[str, Any]:
    """A record with where it stands, in words: the latest of its appended entries decides."""
    if record["review"]:
        state = "Đã xem xét"
    elif record["cause"]:
        state = "Đã giải trình, chờ xem xét"
    elif record["finished"]:
        state = "Đã xử lý xong, chờ giải trình"
    else:
        state = "Đang quá hạn, chưa xử lý xong"
    return {**record, "state": state}


# --- indicators -------------------------------------------------------------------------------------

def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%".replace(".", ",")


def bar(value: kpi.Indicator) -> dict[str, Any]:
    """One indicator as a bar: its width, where the target sits, and the same in words (the chart's text)."""
    return {"value": value, "percent": percent(value.percent), "width": min(value.percent or 0, 100),
            "target": None if value.target is None else f"{value.target:g}%", "target_at": value.target,
            "verdict": reports.assessment(value), "met": value.met}


def indicator_view(row: kpi.IndicatorRow) -> list[dict[str, Any]]:
    return [{"key": s.key, "name": s.name, "formula": s.formula, **bar(row.values[s.key])} for s in kpi.INDICATORS]


# --- report downloads -------------------------------------------------------------------------------

@router.get("/supervision/report.xlsx")
def report_xlsx(db: Session, now: Now, viewer: Viewer = require_role(*OVERSEERS), unit: UnitCode = None,
                period: PeriodCode = None) -> Response:
    report = kpi_report(db, viewer, unit, period, now)
    return download(reports.report_xlsx(report), XLSX, report, "xlsx")


@router.get("/supervision/report.pdf")
def report_pdf(db: Session, now: Now, viewer: Viewer = require_role(*OVERSEERS), unit: UnitCode = None,
               period: PeriodCode = None) -> Response:
    report = kpi_report(db, viewer, unit, period, now)
    return download(reports.report_pdf(report), "application/pdf", report, "pdf")


def kpi_report(db, viewer: Viewer, unit: str | None, period: str | None, now: datetime) -> reports.KpiReport:
    """The periodic report of a unit the caller oversees (the CLI's `report kpi`, scoped like the API)."""
    target = access.overseen_unit(db, actor=viewer.user, code=unit or None)
    period = (period or current_quarter(now)).strip().upper()
    period_days(period)
    return reports.kpi_report(db, unit_code=target.code, period=period, now=now)


def download(data: bytes, media_type: str, report: reports.KpiReport, ext: str) -> Response:
    name = f"bao-cao-chi-so-{report.unit.code}-{report.period}.{ext}"
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


# --- the review -------------------------------------------------------------------------------------

@router.post("/supervision/records/{record_id}/review")
def review(request: Request, record_id: RowId, db: Session, now: Now, viewer: Viewer = require_role("supervisor"),
           outcome: Annotated[str, Form(max_length=32)] = "", note: Annotated[str, Form(max_length=2000)] = "",
           back: Annotated[str, Form(max_length=500)] = "/supervision") -> Response:
    """The supervisor's review of a record. htmx gets the record's review cell back (with the outcome, or
    the form with its errors); a plain form post goes back to the dashboard."""
    access.record(db, actor=viewer.user, record_id=record_id)      # outside the scope: 404, as the API
    error: MotcuaError | None = None
    if not outcome:
        error = InvalidInput("Chọn kết quả xem xét", code="outcome_missing")
    else:
        try:
            audit.review(db, record_id=record_id, actor=viewer.user, outcome=outcome, note=note.strip() or None,
                         now=now)
            commit(db)
        except MotcuaError as exc:
            db.rollback()
            error = exc
    if not request.headers.get("HX-Request"):
        if error:
            raise error
        return RedirectResponse(f"{safe_next(back)}#record-{record_id}", status_code=303)
    record = access.record(db, actor=viewer.user, record_id=record_id)
    errors = review_errors(error) if error else {}
    return render(request, "_supervision_review.html", viewer, status_code=error.status if error else 200,
                  r=record, errors=errors, done=not error, chosen=outcome, note=note, back=back,
                  outcomes=OUTCOMES_VI)


def review_errors(exc: MotcuaError) -> dict[str, str]:
    if exc.code in ("outcome_missing", "outcome_invalid"):
        return {"outcome": exc.message}
    return field_errors(exc)
