"""Reports over the hand-built quarter (tests/kpi_world.py; its figures are worked out in tests/test_kpi.py):
the Excel workbook re-opened with openpyxl, the PDF read back with pypdf, the ranking, the tracking book,
and `motcua report` (exit codes, JSON output)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import date, datetime

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from pypdf import PdfReader

from engine import documents, reports
from engine.cli import main
from tests.conftest import vn

pytest_plugins = ["tests.kpi_world"]     # the world and s fixtures

NOW = vn(2025, 7, 2, 8, 0)




@pytest.fixture(scope="module")
def report(s):
    made = reports.kpi_report(s, unit_code="TS", period="2025-Q2", now=NOW)
    s.rollback()
    return made


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


# --- ranking ------------------------------------------------------------------------------------------

def test_ranking_of_the_sub_units(report):
    # Score = mean over indicators with figures and a target of min(rate / target, 1), in percent:
    #   TS-NV   internal 4/5 = 80% of 80%                                          → 100
    #   TS-PP   on time 5/8 of 98, online 1/10 of 70, digitized 4/10 of 90, e-result 2/7 of 100, reuse 1/10 of 60,
    #           payment 2/8 of 100, feedback 2/2 → 1, satisfaction 2/3 of 95, internal 3/4 of 60 → 1
    #   TS-TV   on time 1, online 1, digitized 0, e-result 0, reuse 0, payment 1, feedback 0, satisfaction 0,
    #           internal 1/2 of 60                                                  → (3 + 5/6) / 9
    #   TS-KTHT online 0, digitized 0, reuse 0, payment 1                           → 25
    pp = (5 / 8 / .98 + 1 / 10 / .7 + 4 / 10 / .9 + 2 / 7 + 1 / 10 / .6 + 2 / 8 + 1 + 2 / 3 / .95 + 1) / 9 * 100
    tv = (3 + 5 / 6) / 9 * 100
    ranked = [(r.rank, r.row.group, r.score) for r in report.ranking]
    assert [r[:2] for r in ranked[:4]] == [(1, "TS-NV"), (2, "TS-PP"), (3, "TS-TV"), (4, "TS-KTHT")]
    assert [r[2] for r in ranked[:4]] == [100, pytest.approx(pp, abs=0.01), pytest.approx(tv, abs=0.01), 25]
    # Units without figures are listed last, unranked.
    assert {r[1] for r in ranked[4:]} == {"TS-VP", "TS-TP", "TS-TCKH", "TS-VHTT"} and all(r[0] is None for r in ranked[4:])
    assert report.ranking[1].targets_met == 2 and report.ranking[1].targets_with_data == 9     # feedback, internal
    # By level: the two communes only.
    communes = reports.rank_units(report.by_unit, level="commune")
    assert [(r.rank, r.row.group) for r in communes] == [(1, "TS-PP"), (2, "TS-TV")]


# --- Excel --------------------------------------------------------------------------------------------

def test_excel_workbook(report):
    wb = load_workbook(io.BytesIO(reports.report_xlsx(report)))
    assert wb.sheetnames == ["Tổng hợp", "Theo đơn vị", "Theo lĩnh vực", "Theo thủ tục", "Xếp hạng"]
    summary = wb["Tổng hợp"]
    assert summary["A1"].value.startswith("BÁO CÁO KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH")
    assert "Ủy ban nhân dân huyện Tây Sơn" in summary["A2"].value
    assert summary["A3"].value == "Kỳ báo cáo: Quý II năm 2025 (từ ngày 01/04/2025 đến ngày 30/06/2025)"
    header = [c.value for c in summary[6]]
    assert header == ["STT", "Chỉ số", "Công thức", "Tử số", "Mẫu số", "Kết quả", "Mục tiêu", "Đánh giá"]
    lines = {row[1]: row for row in summary.iter_rows(min_row=7, max_row=15, values_only=True)}
    on_time = lines["Tỷ lệ hồ sơ giải quyết đúng hạn"]
    assert on_time[3:] == (6, 9, pytest.approx(6 / 9), pytest.approx(0.98), "Chưa đạt")
    assert lines["Tỷ lệ hồ sơ tiếp nhận trực tuyến"][3:6] == (2, 12, pytest.approx(2 / 12))
    assert lines["Tỷ lệ phản ánh, kiến nghị được xử lý đúng hạn"][3:5] == (2, 3)
    assert lines["Tỷ lệ hài lòng"][3:5] == (2, 4)
    assert lines["Tỷ lệ hồ sơ công việc tạo lập điện tử"][3:] == (8, 11, pytest.approx(8 / 11), pytest.approx(0.8),
                                                                  "Chưa đạt")
    assert summary.cell(row=9, column=6).number_format == "0.0%"

    units = wb["Theo đơn vị"]
    assert [units.cell(row=6, column=c).value for c in (1, 2, 3)] == ["Mã đơn vị", "Tên đơn vị",
                                                                         "Tỷ lệ hồ sơ giải quyết đúng hạn"]
    assert [units.cell(row=7, column=c).value for c in (3, 4, 5)] == ["Tử số", "Mẫu số", "Tỷ lệ"]
    by_code = {row[0]: row for row in units.iter_rows(min_row=8, values_only=True)}
    assert by_code["TS-PP"][1] == "Ủy ban nhân dân thị trấn Phú Phong"
    assert by_code["TS-PP"][2:5] == (5, 8, pytest.approx(5 / 8))
    assert by_code["TS-TCKH"][2:5] == (0, 0, None)
    assert list(by_code)[0] == "TS" and by_code["TS"][2:5] == (6, 9, pytest.approx(6 / 9))

    fields = {row[0]: row for row in wb["Theo lĩnh vực"].iter_rows(min_row=8, values_only=True)}
    assert set(fields) == {"Chứng thực", "Hộ tịch", "Hoạt động xây dựng"} and fields["Chứng thực"][1:4] == (4, 6, pytest.approx(4 / 6))
    procedures = {row[0]: row for row in wb["Theo thủ tục"].iter_rows(min_row=8, values_only=True)}
    assert procedures["2.000884"][2:5] == (1, 1, 1)
    ranking = list(wb["Xếp hạng"].iter_rows(min_row=6, values_only=True))
    assert ranking[0][:6] == ("Hạng", "Mã đơn vị", "Tên đơn vị", "Điểm (%)", "Số chỉ số đạt mục tiêu",
                              "Số chỉ số có số liệu")
    assert [r[:2] for r in ranking[1:3]] == [(1, "TS-NV"), (2, "TS-PP")]


# --- PDF ----------------------------------------------------------------------------------------------

def test_pdf_report_has_vietnamese_headings(report):
    text = pdf_text(reports.report_pdf(report))
    for heading in ("BÁO CÁO KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                    "Quý II năm 2025", "Tỷ lệ hồ sơ giải quyết đúng hạn", "Tỷ lệ hài lòng", "Theo lĩnh vực",
                    "Xếp hạng các đơn vị trực thuộc", "Ủy ban nhân dân thị trấn Phú Phong", "Chưa đạt"):
        assert heading in text, heading
    assert "66,7%" in text and "6 / 9" in text


# --- tracking book ------------------------------------------------------------------------------------

def test_tracking_book_excel_matches_its_pdf(s, world):
    data = reports.tracking_book_xlsx(s, unit_code="TS-PP", start=date(2025, 4, 1), end=date(2025, 6, 30), now=NOW)
    ws = load_workbook(io.BytesIO(data))["Sổ theo dõi hồ sơ"]
    assert ws["A1"].value == "SỔ THEO DÕI HỒ SƠ"
    assert ws["A2"].value == "Mẫu số 06 ban hành kèm theo Thông tư số 01/2018/TT-VPCP"
    header = [c.value for c in ws[6]]
    assert header == ["STT", "Mã hồ sơ", "Tên thủ tục", "Người nộp", "Địa chỉ", "Nhận hồ sơ", "Hẹn trả",
                      "Chuyển xử lý", "Có kết quả", "Trả kết quả", "Ghi chú"]
    rows = list(ws.iter_rows(min_row=7, values_only=True))
    # Received at Phú Phong in Q2: A B C D E F G H M N (K was received in March, I and J elsewhere).
    codes = {world.codes[k] for k in "ABCDEFGHMN"}
    assert {r[1] for r in rows} == codes and [r[0] for r in rows] == list(range(1, 11))
    first = next(r for r in rows if r[1] == world.codes["A"])
    assert first[5] == datetime(2025, 4, 24, 9, 0) and first[6] == datetime(2025, 4, 24, 17, 0)
    assert first[9] == datetime(2025, 4, 24, 10, 30) and first[10] == "Đã trả kết quả"
    assert next(r for r in rows if r[1] == world.codes["G"])[10] == "Dừng giải quyết"
    pdf = pdf_text(documents.render_tracking_book(s, unit_code="TS-PP", start=date(2025, 4, 1), end=date(2025, 6, 30),
                                                  now=NOW))
    assert all(code in pdf.replace("\n", "") for code in codes)
    s.rollback()


# --- the command line ---------------------------------------------------------------------------------

def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_kpi_json(world):
    r = cli("report", "kpi", "--unit", "TS", "--period", "2025-q2", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["period"] == {"code": "2025-Q2", "label": "Quý II năm 2025", "start": "2025-04-01",
                              "end": "2025-07-01", "last_day": "2025-06-30"}
    assert data["indicators"]["on_time"] == {"numerator": 6, "denominator": 9, "percent": 66.67, "target": 98.0,
                                             "met": False}
    assert data["indicators"]["internal_electronic"]["denominator"] == 11
    pp = next(u for u in data["by_unit"] if u["group"] == "TS-PP")
    assert pp["parent"] == "TS" and pp["indicators"]["satisfaction"]["numerator"] == 2
    assert [f["group"] for f in data["by_field"]] == ["Chứng thực", "Hoạt động xây dựng", "Hộ tịch"]
    assert data["ranking"][0]["unit"] == "TS-NV" and data["definitions"][0]["key"] == "on_time"


def test_cli_kpi_files(world, tmp_path):
    xlsx, pdf = tmp_path / "q2.xlsx", tmp_path / "q2.pdf"
    assert cli("report", "kpi", "--unit", "TS", "--period", "2025-Q2", "--format", "xlsx", "--out", str(xlsx)).exit_code == 0
    assert load_workbook(xlsx)["Tổng hợp"]["D7"].value == 6
    assert cli("report", "kpi", "--unit", "TS", "--period", "2025-H1", "--format", "pdf", "--out", str(pdf)).exit_code == 0
    assert "6 tháng đầu năm 2025" in pdf_text(pdf.read_bytes())
    book = tmp_path / "book.xlsx"
    assert cli("report", "book", "--unit", "TS-PP", "--period", "2025-04", "--out", str(book)).exit_code == 0
    assert load_workbook(book).active.max_row == 6 + 10
    r = cli("report", "ranking", "--unit", "TS", "--period", "2025-Q2")
    assert r.exit_code == 0 and "Phòng Nội vụ" in r.output and "Phú Phong" in r.output


def test_cli_bad_usage_exits_2(world):
    r = cli("report", "kpi", "--unit", "TS", "--period", "2025-Q5")
    assert r.exit_code == 2 and "2025-H1" in r.output and "2025-06" in r.output and "2025-Q1" in r.output
    r = cli("report", "kpi", "--unit", "TS", "--period", "2025-Q2", "--format", "docx")
    assert r.exit_code == 2 and "xlsx" in r.output and "pdf" in r.output and "json" in r.output
    assert cli("report", "kpi", "--unit", "KHONG-CO", "--period", "2025-Q2").exit_code == 2
    assert cli("report", "book", "--unit", "TS-PP", "--period", "quý 2").exit_code == 2


def test_cli_as_a_process(world, db_url, tmp_path):
    """The installed entry point, run as an operator would, on the test database."""
    r = subprocess.run([sys.executable, "-m", "engine.cli", "report", "kpi", "--unit", "TS-PP", "--period", "2025-Q2"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "MOTCUA_DATABASE_URL": db_url, "MOTCUA_DATA_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["indicators"]["on_time"]["numerator"] == 5
