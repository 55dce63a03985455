"""Reports built on the indicators: the periodic report (month, quarter, 6 months, year) as JSON, Excel and
PDF, the ranking of units, and the tracking book (sổ theo dõi hồ sơ) as Excel beside its PDF form.

All figures come from engine.kpi.indicators; this module only lays them out, with Vietnamese headings.
PDF text is set in the forms' Vietnamese-capable font (storage.forms.font_family)."""
from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy.orm import Session

from engine import documents, org
from engine.config import settings
from engine.errors import MotcuaError
from engine.kpi import INDICATORS, IndicatorRow, Targets, indicators, load_targets, period_bounds, period_label
from storage import forms

TITLE = "Báo cáo kết quả giải quyết thủ tục hành chính và chỉ số phục vụ người dân, doanh nghiệp"
SHEETS = {"summary": "Tổng hợp", "unit": "Theo đơn vị", "field": "Theo lĩnh vực", "procedure": "Theo thủ tục",
          "ranking": "Xếp hạng"}
BOOK_COLUMNS = ("STT", "Mã hồ sơ", "Tên thủ tục", "Người nộp", "Địa chỉ", "Nhận hồ sơ", "Hẹn trả",
                "Chuyển xử lý", "Có kết quả", "Trả kết quả", "Ghi chú")


# --- ranking ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ranked:
    rank: int | None            # None: no figures to rank on
    row: IndicatorRow
    score: float | None         # mean share of the targets reached, in percent (each share capped at 100)
    targets_met: int
    targets_with_data: int


def rank_units(rows: list[IndicatorRow], *, level: str | None = None) -> list[Ranked]:
    """Rank the sub-units of the first row's unit (rows as given by indicators(group_by="unit")): its
    direct sub-units, or with `level` every unit below it of that level. Score: the mean, over the
    indicators that have both figures and a target, of the share of the target reached (capped at 100%);
    ties share a rank and are ordered by on-time rate, then code."""
    root = rows[0].group
    chosen = [r for r in rows[1:] if (r.level == level if level else r.parent == root)]
    scored = [(r, *_score(r)) for r in chosen]
    scored.sort(key=lambda s: (s[1] is None, -(s[1] or 0), -(s[0].values["on_time"].percent or 0), s[0].group))
    ranked, previous, rank = [], None, 0
    for i, (row, score, met, with_data) in enumerate(scored, 1):
        if score is not None and score != previous:
            rank, previous = i, score
        ranked.append(Ranked(rank if score is not None else None, row, score, met, with_data))
    return ranked


def _score(row: IndicatorRow) -> tuple[float | None, int, int]:
    shares = [min(v.percent / v.target, 1.0) for v in row.values.values()
              if v.percent is not None and v.target]
    met = sum(1 for v in row.values.values() if v.met)
    return (round(100 * sum(shares) / len(shares), 2) if shares else None), met, len(shares)


def ranking(db: Session, *, unit_code: str, start: date, end: date, level: str | None = None) -> list[Ranked]:
    return rank_units(indicators(db, unit_code=unit_code, start=start, end=end, group_by="unit"), level=level)


# --- the periodic report ------------------------------------------------------------------------------

@dataclass
class KpiReport:
    unit: org.UnitInfo
    period: str
    label: str
    start: date
    end: date                   # exclusive
    generated_at: datetime
    targets: Targets
    by_unit: list[IndicatorRow]
    by_field: list[IndicatorRow]
    by_procedure: list[IndicatorRow]
    ranking: list[Ranked]

    @property
    def whole(self) -> IndicatorRow:
        return self.by_unit[0]

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)


def kpi_report(db: Session, *, unit_code: str, period: str, now: datetime) -> KpiReport:
    """Everything the periodic report shows: the unit (with its sub-units) against the targets, by unit,
    field and procedure, and the ranking of its direct sub-units."""
    start, end = period_bounds(period)
    unit = org.unit_by_code(db, unit_code)
    targets = load_targets(start.year)
    by_unit = indicators(db, unit_code=unit_code, start=start, end=end, group_by="unit", targets=targets)
    return KpiReport(unit, period.strip().upper(), period_label(period), start, end, now, targets, by_unit,
                     indicators(db, unit_code=unit_code, start=start, end=end, group_by="field", targets=targets),
                     indicators(db, unit_code=unit_code, start=start, end=end, group_by="procedure", targets=targets),
                     rank_units(by_unit))


def report_dict(report: KpiReport) -> dict[str, Any]:
    """The report as JSON-ready data (what `motcua report kpi --format json` prints)."""
    return {
        "unit": {"code": report.unit.code, "name": report.unit.name, "level": report.unit.level},
        "period": {"code": report.period, "label": report.label, "start": report.start.isoformat(),
                   "end": report.end.isoformat(), "last_day": report.last_day.isoformat()},
        "generated_at": report.generated_at.astimezone(settings().tz).isoformat(),
        "targets": {"year": report.targets.year, "source": report.targets.source},
        "definitions": [{"key": s.key, "name": s.name, "formula": s.formula} for s in INDICATORS],
        "indicators": report.whole.as_dict()["indicators"],
        "by_unit": [r.as_dict() for r in report.by_unit],
        "by_field": [r.as_dict() for r in report.by_field],
        "by_procedure": [r.as_dict() for r in report.by_procedure],
        "ranking": [{"rank": r.rank, "unit": r.row.group, "name": r.row.label, "score": r.score,
                     "targets_met": r.targets_met, "targets_with_data": r.targets_with_data} for r in report.ranking],
    }


def assessment(value) -> str:
    """Đạt / Chưa đạt, or why there is no verdict."""
    if value.denominator == 0:
        return "Không có số liệu"
    if value.target is None:
        return "Chưa có mục tiêu"
    return "Đạt" if value.met else "Chưa đạt"


def _period_line(report: KpiReport) -> str:
    return f"Kỳ báo cáo: {report.label} (từ ngày {report.start:%d/%m/%Y} đến ngày {report.last_day:%d/%m/%Y})"


def _targets_line(report: KpiReport) -> str:
    t = report.targets
    return f"Mục tiêu: {t.source or 'tệp mục tiêu'} (năm {t.year})" if t.year else "Mục tiêu: chưa có cho năm này"


# --- Excel --------------------------------------------------------------------------------------------

BOLD = Font(bold=True)
HEAD_FILL = PatternFill("solid", fgColor="DDDDDD")
THIN = Side(style="thin", color="888888")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="top")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)


def report_xlsx(report: KpiReport) -> bytes:
    """The periodic report as an Excel workbook: summary, by unit, by field, by procedure, ranking."""
    wb = Workbook()
    _summary_sheet(wb.active, report)
    _rows_sheet(wb.create_sheet(SHEETS["unit"]), report, report.by_unit, ("Mã đơn vị", "Tên đơn vị"),
                lambda r: (r.group, r.label))
    _rows_sheet(wb.create_sheet(SHEETS["field"]), report, report.by_field, ("Lĩnh vực",), lambda r: (r.group,))
    _rows_sheet(wb.create_sheet(SHEETS["procedure"]), report, report.by_procedure, ("Mã thủ tục", "Tên thủ tục"),
                lambda r: (r.group, r.label))
    _ranking_sheet(wb.create_sheet(SHEETS["ranking"]), report)
    return _save(wb)


def _heading(ws, report: KpiReport, title: str, width: int) -> int:
    """Title lines on top of a sheet; returns the next free row."""
    lines = [(title.upper(), Font(bold=True, size=13)), (f"Đơn vị: {report.unit.name} (gồm các đơn vị trực thuộc)", None),
             (_period_line(report), None), (_targets_line(report), Font(italic=True))]
    for i, (text, font) in enumerate(lines, 1):
        ws.cell(row=i, column=1, value=text).font = font or Font()
        ws.merge_cells(start_row=i, start_column=1, end_row=i, end_column=max(width, 1))
    return len(lines) + 2


def _header_row(ws, row: int, titles: list[str]) -> None:
    for col, title in enumerate(titles, 1):
        cell = ws.cell(row=row, column=col, value=title)
        cell.font, cell.fill, cell.border, cell.alignment = BOLD, HEAD_FILL, BOX, CENTER


def _percent_cell(ws, row: int, col: int, numerator: int, denominator: int):
    cell = ws.cell(row=row, column=col, value=numerator / denominator if denominator else None)
    cell.number_format = "0.0%"
    return cell


def _summary_sheet(ws, report: KpiReport) -> None:
    ws.title = SHEETS["summary"]
    titles = ["STT", "Chỉ số", "Công thức", "Tử số", "Mẫu số", "Kết quả", "Mục tiêu", "Đánh giá"]
    row = _heading(ws, report, TITLE, len(titles))
    _header_row(ws, row, titles)
    for i, spec in enumerate(INDICATORS, 1):
        v = report.whole.values[spec.key]
        r = row + i
        for col, value in enumerate((i, spec.name, spec.formula, v.numerator, v.denominator), 1):
            ws.cell(row=r, column=col, value=value)
        _percent_cell(ws, r, 6, v.numerator, v.denominator)
        target = ws.cell(row=r, column=7, value=None if v.target is None else v.target / 100)
        target.number_format = "0%"
        ws.cell(row=r, column=8, value=assessment(v))
        for col in range(1, 9):
            ws.cell(row=r, column=col).border, ws.cell(row=r, column=col).alignment = BOX, WRAP
    for col, width in zip("ABCDEFGH", (5, 38, 60, 10, 10, 10, 10, 16)):
        ws.column_dimensions[col].width = width


def _rows_sheet(ws, report: KpiReport, rows: list[IndicatorRow], lead: tuple[str, ...], lead_values) -> None:
    """One row per unit / field / procedure; per indicator three columns: numerator, denominator, rate."""
    width = len(lead) + 3 * len(INDICATORS)
    top = _heading(ws, report, TITLE, min(width, 12))
    for col, title in enumerate(lead, 1):
        ws.merge_cells(start_row=top, start_column=col, end_row=top + 1, end_column=col)
    _header_row(ws, top, [*lead, *[""] * (3 * len(INDICATORS))])
    for i, spec in enumerate(INDICATORS):
        first = len(lead) + 3 * i + 1
        ws.cell(row=top, column=first, value=spec.name)
        ws.merge_cells(start_row=top, start_column=first, end_row=top, end_column=first + 2)
        for j, sub in enumerate(("Tử số", "Mẫu số", "Tỷ lệ")):
            cell = ws.cell(row=top + 1, column=first + j, value=sub)
            cell.font, cell.fill, cell.border, cell.alignment = BOLD, HEAD_FILL, BOX, CENTER
    for r, item in enumerate(rows, top + 2):
        for col, value in enumerate(lead_values(item), 1):
            ws.cell(row=r, column=col, value=value)
        for i, spec in enumerate(INDICATORS):
            v = item.values[spec.key]
            first = len(lead) + 3 * i + 1
            ws.cell(row=r, column=first, value=v.numerator)
            ws.cell(row=r, column=first + 1, value=v.denominator)
            _percent_cell(ws, r, first + 2, v.numerator, v.denominator)
    ws.freeze_panes = ws.cell(row=top + 2, column=len(lead) + 1)
    for col in range(1, width + 1):
        ws.column_dimensions[get_column_letter(col)].width = 40 if col == len(lead) else 11


def _ranking_sheet(ws, report: KpiReport) -> None:
    titles = ["Hạng", "Mã đơn vị", "Tên đơn vị", "Điểm (%)", "Số chỉ số đạt mục tiêu", "Số chỉ số có số liệu",
              *[s.name for s in INDICATORS]]
    row = _heading(ws, report, f"Xếp hạng các đơn vị trực thuộc {report.unit.name}", 8)
    _header_row(ws, row, titles)
    for r, ranked in enumerate(report.ranking, row + 1):
        values = [ranked.rank, ranked.row.group, ranked.row.label, ranked.score, ranked.targets_met,
                  ranked.targets_with_data]
        for col, value in enumerate(values, 1):
            ws.cell(row=r, column=col, value=value)
        for i, spec in enumerate(INDICATORS, len(values) + 1):
            v = ranked.row.values[spec.key]
            _percent_cell(ws, r, i, v.numerator, v.denominator)
    for col in range(1, len(titles) + 1):
        ws.column_dimensions[get_column_letter(col)].width = 40 if col == 3 else 14


def _save(wb: Workbook) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- the tracking book as Excel -------------------------------------------------------------------------

def tracking_book_xlsx(db: Session, *, unit_code: str, start: date, end: date, now: datetime) -> bytes:
    """The tracking book of a receiving unit for the days start..end (local, both included), with the same
    rows as its PDF form (engine.documents.render_tracking_book)."""
    unit = org.unit_by_code(db, unit_code)
    # The PDF form's own data, so that both list exactly the same dossiers.
    data = documents.tracking_book_rows(db, unit.id, unit.name, start, end)
    circular = documents.forms_set(datetime.combine(start, datetime.min.time(), settings().tz))
    number = next(n for n, kind in forms.FORM_SETS[circular].items() if kind == "tracking_book")
    wb = Workbook()
    ws = wb.active
    ws.title = forms.TITLES["tracking_book"]
    lines = [forms.TITLES["tracking_book"].upper(),
             f"Mẫu số {number} ban hành kèm theo {forms.CIRCULARS[circular]}",
             f"Đơn vị: {unit.name}; từ ngày {start:%d/%m/%Y} đến ngày {end:%d/%m/%Y}",
             f"Lập lúc {now.astimezone(settings().tz):%H:%M ngày %d/%m/%Y}"]
    for i, text in enumerate(lines, 1):
        ws.cell(row=i, column=1, value=text).font = Font(bold=i == 1, size=13 if i == 1 else 11)
        ws.merge_cells(start_row=i, start_column=1, end_row=i, end_column=len(BOOK_COLUMNS))
    top = len(lines) + 2
    _header_row(ws, top, list(BOOK_COLUMNS))
    for n, r in enumerate(data["rows"], 1):
        values = [n, r["code"], r["procedure"], r["applicant"], r["address"], _excel_time(r["received_at"]),
                  _excel_time(r["appointment"]), r["handling_unit"], _excel_time(r["result_at"]),
                  _excel_time(r["returned_at"]), r["note"]]
        for col, value in enumerate(values, 1):
            cell = ws.cell(row=top + n, column=col, value=value)
            cell.border, cell.alignment = BOX, WRAP
            if isinstance(value, datetime):
                cell.number_format = "dd/mm/yyyy hh:mm"
    for col, width in zip(range(1, len(BOOK_COLUMNS) + 1), (5, 26, 40, 22, 22, 16, 16, 28, 16, 16, 16)):
        ws.column_dimensions[get_column_letter(col)].width = width
    return _save(wb)


def _excel_time(value: str | None) -> datetime | None:
    """Excel has no time zones: local time, as the book prints it."""
    return datetime.fromisoformat(value).replace(tzinfo=None) if value else None


# --- PDF ------------------------------------------------------------------------------------------------

def report_pdf(report: KpiReport) -> bytes:
    """The periodic report as PDF (A4 landscape): the unit against the targets, by sub-unit, by field,
    and the ranking."""
    try:
        style = _pdf_styles()
    except forms.FontMissing as exc:
        err = MotcuaError(f"Không có phông chữ tiếng Việt để in báo cáo: {exc}", code="fonts_missing")
        err.status = 500
        raise err from exc
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm, title=TITLE, author="motcua", invariant=1)
    w = doc.width
    head = Table([[[_p(report.unit.name.upper(), style["bold_center"])],
                   [_p("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", style["bold_center"]),
                    _p("Độc lập - Tự do - Hạnh phúc", style["bold_center"])]]], colWidths=[w * 0.4, w * 0.6])
    story = [head, Spacer(1, 4 * mm), _p(TITLE.upper(), style["title"]), _p(_period_line(report), style["center"]),
             _p(_targets_line(report), style["italic_center"]), Spacer(1, 4 * mm),
             _p("I. Kết quả so với mục tiêu (gồm các đơn vị trực thuộc)", style["section"]),
             _grid([["STT", "Chỉ số", "Tử số / Mẫu số", "Kết quả", "Mục tiêu", "Đánh giá"]] +
                   [[str(i), s.name, f"{v.numerator:,} / {v.denominator:,}".replace(",", "."), _pct(v.numerator, v.denominator),
                     "" if v.target is None else f"{v.target:g}%", assessment(v)]
                    for i, s in enumerate(INDICATORS, 1) for v in [report.whole.values[s.key]]],
                   [w * f for f in (0.05, 0.43, 0.16, 0.1, 0.1, 0.16)], style),
             Spacer(1, 4 * mm)]
    short = ["Đúng hạn", "Trực tuyến", "Số hóa", "KQ điện tử", "Tái sử dụng", "TT trực tuyến", "PAKN đúng hạn",
             "Hài lòng", "HSCV điện tử"]
    for title, rows in (("II. Theo đơn vị", report.by_unit), ("III. Theo lĩnh vực", report.by_field)):
        story += [_p(title, style["section"]),
                  _grid([["Đơn vị" if rows is report.by_unit else "Lĩnh vực", *short]] +
                        [[r.label, *(_pct(r.values[s.key].numerator, r.values[s.key].denominator) for s in INDICATORS)]
                         for r in rows], [w * 0.28] + [w * 0.08] * len(INDICATORS), style),
                  Spacer(1, 4 * mm)]
    story += [_p(f"IV. Xếp hạng các đơn vị trực thuộc {report.unit.name}", style["section"]),
              _grid([["Hạng", "Đơn vị", "Điểm (%)", "Số chỉ số đạt mục tiêu"]] +
                    [[str(r.rank or "–"), r.row.label, "" if r.score is None else f"{r.score:.1f}".replace(".", ","),
                      f"{r.targets_met}/{r.targets_with_data}"] for r in report.ranking],
                    [w * f for f in (0.08, 0.52, 0.15, 0.25)], style),
              Spacer(1, 3 * mm),
              _p(f"Lập lúc {report.generated_at.astimezone(settings().tz):%H:%M ngày %d/%m/%Y} bởi motcua; "
                 "công thức các chỉ số: xem bảng tính Excel của cùng báo cáo.", style["small"])]
    doc.build(story)
    return out.getvalue()


def _pct(numerator: int, denominator: int) -> str:
    return f"{100 * numerator / denominator:.1f}%".replace(".", ",") if denominator else "–"


def _pdf_styles() -> dict[str, ParagraphStyle]:
    f = forms.font_family()       # a serif with every Vietnamese letter, embedded in the PDF
    base = ParagraphStyle("base", fontName=f, fontSize=10, leading=12.5)
    return {"base": base, "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=10),
            "small": ParagraphStyle("small", parent=base, fontSize=8.5, leading=10),
            "center": ParagraphStyle("center", parent=base, alignment=TA_CENTER),
            "italic_center": ParagraphStyle("ic", parent=base, fontName=f + "-Italic", alignment=TA_CENTER),
            "bold_center": ParagraphStyle("bc", parent=base, fontName=f + "-Bold", alignment=TA_CENTER),
            "title": ParagraphStyle("title", parent=base, fontName=f + "-Bold", fontSize=13, leading=17,
                                    alignment=TA_CENTER),
            "section": ParagraphStyle("section", parent=base, fontName=f + "-Bold", fontSize=11, leading=15,
                                      spaceAfter=2, keepWithNext=1)}


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    # NFC: the font has the precomposed letters; decomposed input would print loose accents.
    return Paragraph(escape(unicodedata.normalize("NFC", str(text if text is not None else ""))), style)


def _grid(rows: list[list[Any]], widths: list[float], style: dict[str, ParagraphStyle]) -> Table:
    table = Table([[_p(c, style["cell"]) for c in row] for row in rows], colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.93, 0.93, 0.93))]))
    return table
