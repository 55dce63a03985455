"""Every official form of both sets, rendered for a sample dossier and read back with pypdf: the text
keeps its diacritics, the dossier code is there, and the receipt's QR code decodes."""
from __future__ import annotations

import io
import unicodedata

import pytest
from pypdf import PdfReader

from storage import forms

CODE = "000.35.08.X01-250424-0011"
APPLICANT = {"full_name": "Nguyễn Thị Hướng", "citizen_id": "052190001234", "address": "Thị trấn Phú Phong, Tây Sơn",
             "phone": "0905123456"}
PROCEDURE = {"code": "1.001193", "name": "Đăng ký khai sinh"}
SAMPLE = {
    "code": CODE, "procedure": PROCEDURE, "applicant": APPLICANT, "unit": "UBND thị trấn Phú Phong",
    "place": "Phú Phong", "issued_at": "2025-04-24T09:05:00+07:00",
    "received_at": "2025-04-24T09:00:00+07:00", "appointment": "2025-04-24T17:00:00+07:00",
    # 01
    "components": [{"code": "TP1", "name": "Tờ khai đăng ký khai sinh (theo mẫu)", "source": "Bản giấy"},
                   {"code": "TP2", "name": "Giấy chứng sinh", "source": "Tái sử dụng từ kho dữ liệu"}],
    "officer": "Lý Thị Thu", "fee": {"amount": 8000}, "channel": "trực tiếp", "time_limit": "Trong ngày",
    "qr": forms.qr_payload(CODE, "1.001193", "052190001234", base_url="https://motcua.example.gov.vn/"),
    # 02, 03, 04, 05 (stop)
    "missing": ["Giấy chứng sinh bản chính"], "reason": "Giấy chứng sinh bị tẩy xóa",
    "requested_at": "2025-04-24T10:00:00+07:00", "previous_appointment": "2025-04-24T17:00:00+07:00",
    "new_appointment": "2025-04-25T17:00:00+07:00", "signed_by": "Hồ Văn Tâm", "stopped_at": "2025-04-24T11:00:00+07:00",
    # control sheet
    "rows": [{"at": "2025-04-24T09:00:00+07:00", "giver": "Lý Thị Thu", "giver_unit": "Bộ phận Một cửa",
              "receiver_unit": "Công chức Tư pháp - Hộ tịch", "receiver_step": "Thẩm định",
              "step_due_at": "2025-04-24T15:00:00+07:00", "timing": "on_time", "step_name": "Tiếp nhận hồ sơ"}],
}
BOOK = {"unit": "UBND thị trấn Phú Phong", "period_from": "2025-04-24", "period_to": "2025-04-24",
        "rows": [{"code": CODE, "procedure": "Đăng ký khai sinh", "applicant": "Nguyễn Thị Hướng", "address": "Phú Phong",
                  "received_at": "2025-04-24T09:00:00+07:00", "appointment": "2025-04-24T17:00:00+07:00",
                  "handling_unit": "Tư pháp - Hộ tịch", "note": "Đang giải quyết"}]}
ALL_FORMS = [(circular, number) for circular, numbers in forms.FORM_SETS.items() for number in numbers]


def text_of(data: bytes) -> str:
    """The text with all whitespace removed, so that line and cell wrapping do not matter."""
    reader = PdfReader(io.BytesIO(data))
    return squash("".join(page.extract_text() for page in reader.pages))


def squash(text: str) -> str:
    return "".join(unicodedata.normalize("NFC", text).split())


@pytest.mark.parametrize("circular, number", ALL_FORMS, ids=[f"{c}-{n}" for c, n in ALL_FORMS])
def test_every_form_renders_with_diacritics(circular, number):
    kind = forms.FORM_SETS[circular][number]
    data = forms.render(circular, number, BOOK if kind == "tracking_book" else SAMPLE)
    text = text_of(data)
    title = (forms.TITLES_2025 if circular == "03/2025" else {}).get(kind, forms.TITLES[kind])
    for expected in (title, title.upper(), f"Mẫu số {number}", forms.CIRCULARS[circular], CODE, "Nguyễn Thị Hướng",
                     "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"):
        assert squash(expected) in text, expected


def test_receipt_fields_and_qr_code():
    data = forms.render("01/2018", "01", SAMPLE)
    text = text_of(data)
    assert squash("Giấy tiếp nhận hồ sơ và hẹn trả kết quả") in text
    for expected in ("052190001234", "Đăng ký khai sinh", "1.001193", "09:00 ngày 24/04/2025", "17:00 ngày 24/04/2025",
                     "Tờ khai đăng ký khai sinh", "Tái sử dụng từ kho dữ liệu", "Lý Thị Thu", "8.000 đồng"):
        assert squash(expected) in text, expected
    zxingcpp = pytest.importorskip("zxingcpp")
    images = PdfReader(io.BytesIO(data)).pages[0].images
    decoded = [b.text for image in images for b in zxingcpp.read_barcodes(image.image)]
    # A link to the lookup page that a phone camera opens, carrying what Circular 01/2023 asks for.
    assert decoded == [f"https://motcua.example.gov.vn/tra-cuu?MaHoSo={CODE}&MaTTHC=1.001193&SoDinhDanh=052190001234"]


def test_the_sets_differ_where_the_circulars_do():
    assert forms.FORM_SETS["01/2018"]["05"] == "control_sheet" and forms.FORM_SETS["03/2025"]["05"] == "stop"
    assert "07" not in forms.FORM_SETS["01/2018"] and forms.FORM_SETS["03/2025"]["07"] == "tracking_book"
    with pytest.raises(KeyError):
        forms.render("01/2018", "07", SAMPLE)
    with pytest.raises(KeyError):
        forms.render("02/2020", "01", SAMPLE)


def test_same_data_same_bytes_and_a_vietnamese_font():
    assert forms.render("03/2025", "01", SAMPLE) == forms.render("03/2025", "01", SAMPLE)
    assert forms.font_family() in ("LiberationSerif", "DejaVuSerif")


def test_result_document():
    text = text_of(forms.render_result({"code": CODE, "name": f"{CODE}-KQ1", "procedure": PROCEDURE,
                                        "result": "Giấy khai sinh (bản chính)", "applicant": APPLICANT,
                                        "unit": "UBND thị trấn Phú Phong", "signed_by": "Hồ Văn Tâm"}))
    for expected in (f"{CODE}-KQ1", "Giấy khai sinh (bản chính)", "Hồ Văn Tâm", "Đăng ký khai sinh"):
        assert squash(expected) in text, expected


def test_a_dossier_s_forms_are_dated_at_its_unit_s_place(db, users):
    """The place name (địa danh) comes from the organisation data, inherited by departments: a dossier
    received at the district office is dated 'Tây Sơn, ngày …', one at Phú Phong town 'Phú Phong, ngày …'."""
    from engine import dossiers as cmd
    from engine.documents import render_form
    from tests.conftest import vn
    applicant = {"full_name": "Nguyễn Văn An", "citizen_id": "052088004321"}
    for officer, place in (("ts.motcua", "Tây Sơn"), ("pp.motcua", "Phú Phong")):
        code = cmd.receive(db, actor=users[officer], procedure_code="2.000815", applicant=applicant,
                           components=["TP1"], now=vn(2025, 4, 24, 9, 0)).dossier.code
        assert squash(f"{place}, ngày 24 tháng 04 năm 2025") in text_of(render_form(db, code=code, form="01",
                                                                             now=vn(2025, 4, 24, 9, 5)))
    db.rollback()
