"""Official one-stop forms as PDF, rendered from plain dicts (this module knows nothing of dossiers).

Two sets, by legal text: Circular 01/2018/TT-VPCP (forms 01–06) and Circular 03/2025/TT-VPCP (01–07,
with a stop notice as 05). The caller picks the set; `render(circular, number, data)` draws the form.
Vietnamese text needs a font with its precomposed letters: Liberation Serif 2.x (Debian's
fonts-liberation2; the fonts-liberation of Debian 12 is 1.07 and lacks them), else DejaVu Serif, looked
up on disk at run time, checked for every Vietnamese letter, and embedded (subset) in the PDF.

Dates come in as ISO 8601 strings already in local time (the caller converts); they are printed as
`HH:MM ngày DD/MM/YYYY`."""
from __future__ import annotations

import io
import unicodedata
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import qrcode
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

# number -> kind, per legal text.
FORM_SETS: dict[str, dict[str, str]] = {
    "01/2018": {"01": "receipt", "02": "supplement", "03": "refusal", "04": "apology", "05": "control_sheet",
                "06": "tracking_book"},
    "03/2025": {"01": "receipt", "02": "supplement", "03": "refusal", "04": "apology", "05": "stop",
                "06": "control_sheet", "07": "tracking_book"},
}
CIRCULARS = {"01/2018": "Thông tư số 01/2018/TT-VPCP", "03/2025": "Thông tư số 03/2025/TT-VPCP"}
# Titles as printed. The 03/2025 wording of 04 and 05 follows the domain notes' description of those
# forms (unconfirmed against the gazette text).
TITLES = {
    "receipt": "Giấy tiếp nhận hồ sơ và hẹn trả kết quả",
    "supplement": "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
    "refusal": "Phiếu từ chối tiếp nhận giải quyết hồ sơ",
    "apology": "Phiếu xin lỗi và hẹn lại ngày trả kết quả",
    "stop": "Phiếu thông báo dừng giải quyết hồ sơ",
    "control_sheet": "Phiếu kiểm soát quá trình giải quyết hồ sơ",
    "tracking_book": "Sổ theo dõi hồ sơ",
}
TITLES_2025 = {"apology": "Phiếu xin lỗi và đề nghị gia hạn thời gian giải quyết hồ sơ"}
TIMING = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn", None: ""}

FONT_FAMILIES = (
    ("LiberationSerif", ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf", "LiberationSerif-Italic.ttf")),
    ("DejaVuSerif", ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf")),
)
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")


class FontMissing(RuntimeError):
    pass


# --- fonts and styles -------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def font_family() -> str:
    """Register the first serif family on disk that has every Vietnamese letter; return its name.
    (Debian 12's fonts-liberation is Liberation 1.07, without them; fonts-liberation2 has them.)"""
    for family, files in FONT_FAMILIES:
        fonts = [_font_with_vietnamese(name) for name in files]
        if all(fonts):
            names = [f"{family}{suffix}" for suffix in ("", "-Bold", "-Italic")]
            for name, path in zip(names, fonts):
                pdfmetrics.registerFont(TTFont(name, str(path)))
            pdfmetrics.registerFontFamily(names[0], normal=names[0], bold=names[1], italic=names[2],
                                          boldItalic=names[1])
            return names[0]
    raise FontMissing("no serif font with Vietnamese letters: install Debian's fonts-liberation2 "
                      "(Liberation 2.x) or fonts-dejavu-core")


VIETNAMESE = "ẠẢẤẦẨẪẬẮẰẲẴẶẸẺẼẾỀỂỄỆỈỊỌỎỐỒỔỖỘỚỜỞỠỢỤỦỨỪỬỮỰỲỴỶỸĂÂĐÊÔƠƯạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹăâđêôơư"


def _font_with_vietnamese(file_name: str) -> Path | None:
    for root in FONT_DIRS:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob(file_name)):
            try:
                glyphs = TTFont("probe", str(path)).face.charToGlyph
            except Exception:       # an unreadable font file is simply not a candidate
                continue
            if all(ord(ch) in glyphs for ch in VIETNAMESE):
                return path
    return None


@lru_cache(maxsize=None)
def _styles() -> dict[str, ParagraphStyle]:
    f = font_family()
    base = ParagraphStyle("base", fontName=f, fontSize=12, leading=15.5)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=10, leading=12.5),
        "cell": ParagraphStyle("cell", parent=base, fontSize=9.5, leading=11.5),
        "center": ParagraphStyle("center", parent=base, alignment=TA_CENTER),
        "bold_center": ParagraphStyle("bold_center", parent=base, fontName=f + "-Bold", alignment=TA_CENTER),
        "title": ParagraphStyle("title", parent=base, fontName=f + "-Bold", fontSize=14, leading=18,
                                alignment=TA_CENTER, spaceBefore=6),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontName=f + "-Italic", fontSize=10, leading=12,
                                   alignment=TA_CENTER),
        "right": ParagraphStyle("right", parent=base, fontName=f + "-Italic", alignment=TA_RIGHT),
    }


def _p(text: Any, style: str = "base") -> Paragraph:
    # NFC: the font has the precomposed letters (ấ, ộ...); decomposed input would print loose accents.
    return Paragraph(escape(unicodedata.normalize("NFC", str(text if text is not None else ""))), _styles()[style])


def _rich(markup: str, style: str = "base") -> Paragraph:
    """A paragraph with <b>/<i> markup; the caller escapes the values it puts in."""
    return Paragraph(unicodedata.normalize("NFC", markup), _styles()[style])


def _v(value: Any) -> str:
    return escape(unicodedata.normalize("NFC", str(value if value not in (None, "") else "…")))


def when(value: str | datetime | date | None) -> str:
    """`09:00 ngày 24/04/2025` from an ISO string (already local time); a date prints as `24/04/2025`."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return f"{value:%H:%M} ngày {value:%d/%m/%Y}"
    return f"{value:%d/%m/%Y}"


def _dated_line(place: str | None, on: str | None) -> Paragraph:
    day = datetime.fromisoformat(on) if on else None
    text = f"{place or '…'}, ngày {day:%d} tháng {day:%m} năm {day:%Y}" if day else \
        f"{place or '…'}, ngày … tháng … năm …"
    return _p(text, "right")


# --- the page frame ---------------------------------------------------------------------------------

def qr_payload(dossier_code: str, procedure_code: str, applicant_id: str, *, base_url: str) -> str:
    """What the receipt's QR code carries: Circular 01/2023 asks for at least the dossier code, the
    procedure code and the applicant's ID; as a link to the lookup page, a phone camera opens the status."""
    query = urlencode({"MaHoSo": dossier_code, "MaTTHC": procedure_code, "SoDinhDanh": applicant_id})
    return f"{base_url.rstrip('/')}/tra-cuu?{query}"


def _qr_image(payload: str, size: float) -> Image:
    png = io.BytesIO()
    qrcode.make(payload, box_size=8, border=2).save(png, "PNG")
    png.seek(0)
    return Image(png, width=size, height=size)


def _header(data: dict[str, Any], width: float) -> Table:
    unit = _rich(f"<b>{_v((data.get('unit') or '').upper())}</b>", "center")
    code = data.get("code")
    left = [unit, _p(f"Mã hồ sơ: {code}" if code else "", "center")]
    right = [_rich("<b>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</b>", "center"),
             _rich("<b>Độc lập - Tự do - Hạnh phúc</b>", "center")]
    table = Table([[left, right]], colWidths=[width * 0.42, width * 0.58])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _title(circular: str, number: str, kind: str) -> list:
    title = (TITLES_2025 if circular == "03/2025" else {}).get(kind, TITLES[kind])
    return [Spacer(1, 4 * mm), _p(title.upper(), "title"),
            _p(f"Mẫu số {number} — {title} (ban hành kèm theo {CIRCULARS[circular]})", "subtitle"),
            Spacer(1, 4 * mm)]


def _signatures(left: tuple[str, str | None] | None, right: tuple[str, str | None]) -> Table:
    def block(role_name):
        if role_name is None:
            return ""
        role, name = role_name
        return [_rich(f"<b>{_v(role)}</b>", "center"), _p("(Ký và ghi rõ họ tên)", "subtitle"),
                Spacer(1, 16 * mm), _rich(f"<b>{_v(name)}</b>" if name else "", "center")]
    table = Table([[block(left), block(right)]], colWidths=["50%", "50%"])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _grid(rows: list[list[Any]], widths: list[float], header_rows: int = 1) -> Table:
    cells = [[c if isinstance(c, Paragraph) else _p(c, "cell") for c in row] for row in rows]
    table = Table(cells, colWidths=widths, repeatRows=header_rows)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.Color(0.93, 0.93, 0.93)),
    ]))
    return table


def _applicant_lines(applicant: dict[str, Any]) -> list:
    return [_p(f"Ông/bà: {applicant.get('full_name') or '…'}"),
            _p(f"Số định danh cá nhân (CCCD): {applicant.get('citizen_id') or '…'}"),
            _p(f"Địa chỉ: {applicant.get('address') or '…'}"),
            _p(f"Số điện thoại: {applicant.get('phone') or '…'}")]


def _procedure_line(data: dict[str, Any]) -> Paragraph:
    proc = data.get("procedure") or {}
    return _p(f"Nội dung yêu cầu giải quyết: {proc.get('name', '…')} (mã thủ tục {proc.get('code', '…')})")


# --- the forms --------------------------------------------------------------------------------------

def _receipt(data: dict[str, Any], width: float) -> list:
    comps = [["STT", "Tên giấy tờ", "Hình thức"]] + [
        [str(i), c.get("name") or c.get("code"), c.get("source") or "Bản giấy / bản điện tử"]
        for i, c in enumerate(data.get("components") or [], 1)]
    fee = data.get("fee") or {}
    fee_text = (f"{fee.get('amount'):,} đồng".replace(",", ".") + (f"/{fee['unit']}" if fee.get("unit") else "")
                if fee.get("amount") else "Không thu phí")
    story = [
        _p(f"{data.get('unit') or 'Bộ phận Một cửa'} tiếp nhận hồ sơ của:"), *_applicant_lines(data.get("applicant") or {}),
        _procedure_line(data),
        _p("1. Thành phần hồ sơ nộp gồm:"), _grid(comps, [12 * mm, width - 62 * mm, 50 * mm]),
        _p("2. Số lượng hồ sơ: 01 bộ"),
        _p(f"3. Thời gian giải quyết hồ sơ theo quy định: {data.get('time_limit') or '…'}"),
        _p(f"4. Thời gian nhận hồ sơ: {when(data.get('received_at'))}"),
        _p(f"5. Thời gian trả kết quả giải quyết hồ sơ: {when(data.get('appointment'))}"),
        _p(f"6. Phí, lệ phí: {fee_text}" + (f" ({fee['note']})" if fee.get("note") else "")),
        _p(f"7. Hình thức nộp: {data.get('channel') or 'trực tiếp'}; nhận kết quả tại {data.get('unit') or '…'}"),
        Spacer(1, 3 * mm),
    ]
    qr = data.get("qr")
    if qr:
        code_table = Table([[_qr_image(qr, 30 * mm), _p("Quét mã QR để tra cứu tình trạng hồ sơ (mã hồ sơ, mã "
                                                       "thủ tục, số định danh người nộp).", "small")]],
                           colWidths=[34 * mm, width - 34 * mm])
        code_table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
        story.append(code_table)
    story.append(_signatures(("NGƯỜI NỘP HỒ SƠ", (data.get("applicant") or {}).get("full_name")),
                             ("NGƯỜI TIẾP NHẬN HỒ SƠ", data.get("officer"))))
    return story


def _supplement(data: dict[str, Any], width: float) -> list:
    missing = data.get("missing") or []
    rows = [["STT", "Giấy tờ cần bổ sung, hoàn thiện"]] + [
        [str(i), m.get("name", m.get("code")) if isinstance(m, dict) else m] for i, m in enumerate(missing, 1)]
    return [
        _p(f"{data.get('unit') or 'Cơ quan giải quyết'} đề nghị ông/bà "
           f"{(data.get('applicant') or {}).get('full_name') or '…'} bổ sung, hoàn thiện hồ sơ:"),
        _procedure_line(data),
        _p(f"Lý do: {data.get('reason') or data.get('guidance') or '…'}"),
        _grid(rows, [12 * mm, width - 12 * mm]),
        _p("Thời gian chờ bổ sung không tính vào thời hạn giải quyết hồ sơ."),
        _p(f"Thời điểm yêu cầu: {when(data.get('requested_at'))}"),
        _signatures(None, ("NGƯỜI HƯỚNG DẪN", data.get("officer"))),
    ]


def _refusal(data: dict[str, Any], width: float) -> list:
    return [
        _p(f"{data.get('unit') or data.get('agency') or 'Cơ quan'} xin thông báo với ông/bà "
           f"{(data.get('applicant') or {}).get('full_name') or '…'}:"),
        _procedure_line(data),
        _p(f"Hồ sơ không được tiếp nhận, giải quyết với lý do: {data.get('reason') or '…'}"),
        _p("Xin thông báo để ông/bà được biết và thực hiện."),
        _signatures(None, ("NGƯỜI TIẾP NHẬN HỒ SƠ", data.get("officer"))),
    ]


def _apology(data: dict[str, Any], width: float) -> list:
    return [
        _p(f"{data.get('unit') or 'Cơ quan giải quyết'} tiếp nhận hồ sơ của ông/bà "
           f"{(data.get('applicant') or {}).get('full_name') or '…'}, mã hồ sơ {data.get('code') or '…'}."),
        _p(f"Ngày hẹn trả kết quả: {when(data.get('previous_appointment'))}."),
        _p(f"Việc trả kết quả chậm so với thời hạn quy định. Lý do: {data.get('reason') or '…'}"),
        _p(f"Xin lỗi ông/bà và hẹn lại thời gian trả kết quả vào {when(data.get('new_appointment'))}."),
        _signatures(None, ("THỦ TRƯỞNG CƠ QUAN, ĐƠN VỊ", data.get("signed_by"))),
    ]


def _stop(data: dict[str, Any], width: float) -> list:
    return [
        _p(f"Theo đề nghị của ông/bà {(data.get('applicant') or {}).get('full_name') or '…'}, "
           f"{data.get('unit') or 'cơ quan'} dừng giải quyết hồ sơ mã {data.get('code') or '…'}."),
        _procedure_line(data),
        _p(f"Lý do: {data.get('reason') or '…'}"),
        _p(f"Thời điểm dừng: {when(data.get('stopped_at'))}"),
        _signatures(("NGƯỜI ĐỀ NGHỊ", (data.get("applicant") or {}).get("full_name")),
                    ("NGƯỜI TIẾP NHẬN", data.get("officer"))),
    ]


def _control_sheet(data: dict[str, Any], width: float) -> list:
    rows = [["STT", "Bên giao (người, đơn vị)", "Bên nhận (đơn vị, bước)", "Thời gian giao, nhận",
             "Hạn của bước", "Kết quả (trước hạn / đúng hạn / quá hạn)", "Ghi chú"]]
    for i, r in enumerate(data.get("rows") or [], 1):
        rows.append([str(i), f"{r.get('giver') or ''} — {r.get('giver_unit') or ''}",
                     f"{r.get('receiver_unit') or ''}" + (f" — {r['receiver_step']}" if r.get("receiver_step") else ""),
                     when(r.get("at")), when(r.get("step_due_at")), TIMING.get(r.get("timing"), r.get("timing")),
                     r.get("note") or r.get("step_name") or ""])
    w = width / 100
    return [
        _p(f"Mã hồ sơ: {data.get('code')}. Người nộp: {(data.get('applicant') or {}).get('full_name') or '…'}"),
        _procedure_line(data),
        _p(f"Tiếp nhận: {when(data.get('received_at'))}; hẹn trả: {when(data.get('appointment'))}"),
        Spacer(1, 2 * mm),
        _grid(rows, [w * 5, w * 20, w * 20, w * 13, w * 13, w * 12, w * 17]),
    ]


def _tracking_book(data: dict[str, Any], width: float) -> list:
    rows = [["STT", "Mã hồ sơ", "Tên thủ tục", "Người nộp, địa chỉ", "Nhận hồ sơ", "Hẹn trả", "Chuyển xử lý",
             "Có kết quả", "Trả kết quả", "Ghi chú"]]
    for i, r in enumerate(data.get("rows") or [], 1):
        rows.append([str(i), r.get("code"), r.get("procedure"), f"{r.get('applicant') or ''}, {r.get('address') or ''}",
                     when(r.get("received_at")), when(r.get("appointment")), r.get("handling_unit") or "",
                     when(r.get("result_at")), when(r.get("returned_at")), r.get("note") or ""])
    w = width / 100
    return [_p(f"Đơn vị: {data.get('unit') or '…'}; từ {when(data.get('period_from'))} đến {when(data.get('period_to'))}"),
            Spacer(1, 2 * mm),
            _grid(rows, [w * 4, w * 17, w * 14, w * 14, w * 9, w * 9, w * 10, w * 8, w * 8, w * 7])]


BUILDERS: dict[str, Callable[[dict[str, Any], float], list]] = {
    "receipt": _receipt, "supplement": _supplement, "refusal": _refusal, "apology": _apology, "stop": _stop,
    "control_sheet": _control_sheet, "tracking_book": _tracking_book,
}
WIDE = ("control_sheet", "tracking_book")


def render(circular: str, number: str, data: dict[str, Any]) -> bytes:
    """Form `number` of the set of `circular` ("01/2018" or "03/2025") as PDF bytes."""
    if circular not in FORM_SETS:
        raise KeyError(f"unknown form set {circular!r}")
    kind = FORM_SETS[circular].get(number)
    if kind is None:
        raise KeyError(f"form set {circular} has no form {number!r}")
    pagesize = landscape(A4) if kind in WIDE else A4
    return _build(pagesize, f"Mẫu {number} {TITLES[kind]} {data.get('code') or ''}".strip(),
                  lambda width: [_header(data, width), _dated_line(data.get("place"), data.get("issued_at")),
                                 *_title(circular, number, kind), *BUILDERS[kind](data, width)])


def render_result(data: dict[str, Any]) -> bytes:
    """An electronic result document (to be signed): what was decided, for whom, by which unit."""
    def story(width):
        proc = data.get("procedure") or {}
        return [_header(data, width), _dated_line(data.get("place"), data.get("issued_at")),
                Spacer(1, 6 * mm), _p("KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH", "title"),
                _p(f"Số: {data.get('name') or '…'}", "center"), Spacer(1, 4 * mm),
                _p(f"Thủ tục: {proc.get('name', '…')} (mã {proc.get('code', '…')})"),
                _p(f"Kết quả: {data.get('result') or '…'}"),
                *_applicant_lines(data.get("applicant") or {}),
                _p(f"Mã hồ sơ: {data.get('code') or '…'}; tiếp nhận {when(data.get('received_at'))}"),
                Spacer(1, 4 * mm),
                _p("Văn bản điện tử được ký số bởi đơn vị giải quyết; chữ ký số được kiểm tra khi tải về.", "small"),
                _signatures(None, (data.get("signer_title") or "THỦ TRƯỞNG ĐƠN VỊ", data.get("signed_by")))]
    return _build(A4, f"{data.get('name') or 'Kết quả'}", story)


def _build(pagesize, title: str, story_of: Callable[[float], list]) -> bytes:
    out = io.BytesIO()
    # invariant: no creation time or random ID in the file, so the same data gives the same bytes.
    doc = SimpleDocTemplate(out, pagesize=pagesize, leftMargin=20 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, title=title, author="motcua", invariant=1)
    doc.build(story_of(doc.width))
    return out.getvalue()
