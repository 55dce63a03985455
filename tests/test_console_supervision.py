"""The supervisor's dashboard: late dossiers and accountability records of a unit and period with the
review action, the officials with repeated late steps, the indicators beside their targets (charts and a
table) and the report downloads; scoped like the API (another area's supervisor sees nothing of Tây Sơn).

The data (Tây Sơn, first quarter of 2025; the clock the app sees: Tue 11/3/2025 09:00):
  A  certified copy received Tue 4/3 09:00, appraisal by Lê Thị Hoa (ts.tp.cv) finished 16:00, after its 14:36
     deadline (84 working minutes late); the approval went overdue at the next day's scan; still open.
  B  the same on Wed 5/3, the appraisal never finished: still overdue.
  C  received Thu 6/3 09:00, appraised, approved and returned by 10:30: on time.
So Hoa has two late steps in 2025 (listed among the officials with repeated late steps); A and B are late
dossiers; on-time rate 1/1 = 100% (target 98%: met), online rate 0/3 (target 70%: not met)."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from engine import dossiers as cmd
from engine.models import AccountabilityEntry, AccountabilityRecord, Step
from tests.browser_support import unlabelled_controls
from tests.conftest import vn
from tests.test_accountability import late_step
from tests.test_lifecycle import do, receive

pytest_plugins = ["tests.api_support", "tests.browser_support"]

PAGE = "/supervision?unit=TS&period=2025-Q1"


@pytest.fixture
def quarter(db, users, api_clock) -> dict:
    a = late_step(db, users, specialist="ts.tp.cv", day=(2025, 3, 4))
    b = late_step(db, users, specialist="ts.tp.cv", day=(2025, 3, 5), finish=False)
    c = receive(db, users, officer="ts.motcua", at=vn(2025, 3, 6, 9, 0)).code
    do(db, cmd.complete_step, code=c, actor=users["ts.tp.cv"], decision="dat", now=vn(2025, 3, 6, 9, 30))
    do(db, cmd.complete_step, code=c, actor=users["ts.tp.ld"], decision="dong_y", now=vn(2025, 3, 6, 10, 0))
    do(db, cmd.return_result, code=c, actor=users["ts.motcua"], now=vn(2025, 3, 6, 10, 30))
    api_clock.now = vn(2025, 3, 11, 9, 0)
    return {"a": a, "b": b, "c": c, "record": appraisal_record(db, a)}


def appraisal_record(db, code: str) -> int:
    """The record of the late appraisal step (the one Hoa held) of a dossier."""
    dossier = cmd.get_dossier(db, code)
    found = db.scalar(select(AccountabilityRecord.id).join(Step, Step.id == AccountabilityRecord.step_id)
                      .where(AccountabilityRecord.dossier_id == dossier.id, Step.bpmn_id == "tham_dinh"))
    db.commit()
    return found


def reviews(db) -> list[dict]:
    db.rollback()
    rows = db.scalars(select(AccountabilityEntry).where(AccountabilityEntry.kind == "review")).all()
    found = [dict(e.data, record_id=e.record_id) for e in rows]
    db.rollback()
    return found


@pytest.fixture
def web(console):
    """web(username) → a TestClient signed in to the console (tests/api_support.py), with .csrf set."""
    return console


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def htmx(html: str) -> dict[str, str]:
    """The headers htmx sends from a page: the CSRF token base.html puts on <body>, and HX-Request."""
    return {"HX-Request": "true", "X-CSRF-Token": csrf(html)}


# --- server side --------------------------------------------------------------------------------------

def test_the_dashboard_lists_late_dossiers_records_officials_and_indicators(web, quarter):
    r = web("ts.nv.gs").get(PAGE)
    assert r.status_code == 200
    html = r.text
    late = html.split('data-testid="late-dossiers"')[1].split("</table>")[0]
    assert quarter["a"] in late and quarter["b"] in late and quarter["c"] not in late
    records = html.split('data-testid="records"')[1].split("</table>")[0]
    assert "Lê Thị Hoa" in records and "1,40 giờ làm việc" in records and "Chưa xử lý xong" in records
    officials = html.split('data-testid="officials"')[1].split("</table>")[0]
    assert "Lê Thị Hoa" in officials and '<td class="num">2</td>' in officials
    assert "Phạm Quốc Bảo" not in officials
    on_time = re.search(r'<tr data-key="on_time">(.*?)</tr>', html, re.S).group(1)
    assert "100,0%" in on_time and "98%" in on_time and "Đạt" in on_time
    online = re.search(r'<tr data-key="online">(.*?)</tr>', html, re.S).group(1)
    assert "0,0%" in online and "70%" in online and "Chưa đạt" in online
    assert "Quý I năm 2025" in html and "Từ ngày 01/01/2025 đến ngày 31/03/2025" in html


def test_the_default_is_the_callers_agency_and_the_current_quarter(web, quarter):
    r = web("ts.nv.gs").get("/supervision")
    assert r.status_code == 200
    assert "Ủy ban nhân dân huyện Tây Sơn, Quý I năm 2025" in r.text
    assert '<option value="TS" selected>' in r.text and '<option value="TS-TV" >' in r.text   # and those under it


def test_a_unit_under_the_agency_shows_only_its_own(web, quarter):
    r = web("ts.nv.gs").get("/supervision?unit=TS-PP&period=2025-Q1")
    assert r.status_code == 200
    assert quarter["a"] not in r.text and "Không có hồ sơ trễ hạn trong kỳ" in r.text


def test_a_specialist_or_leader_gets_the_403_page(web, quarter):
    for user in ("ts.tp.cv", "ts.tp.ld"):
        client = web(user)
        for path in (PAGE, "/supervision/report.xlsx?unit=TS&period=2025-Q1"):
            r = client.get(path)
            assert r.status_code == 403 and "Không có quyền" in r.text, (user, path)


def test_another_areas_supervisor_sees_nothing_of_tay_son(web, db, quarter):
    gia_lai = web("gl.gs")
    own = gia_lai.get("/supervision?period=2025-Q1")
    assert own.status_code == 200 and quarter["a"] not in own.text and "Lê Thị Hoa" not in own.text
    missing = gia_lai.get("/supervision?unit=KHONG-CO&period=2025-Q1")
    for path in (PAGE, "/supervision/report.xlsx?unit=TS&period=2025-Q1",
                 "/supervision/report.pdf?unit=TS&period=2025-Q1"):
        r = gia_lai.get(path)
        # The same 404 page as for a unit that does not exist.
        assert r.status_code == 404 == missing.status_code, path
        assert "Không tìm thấy" in r.text and "Không có đơn vị mã TS" in r.text
    commune = web("xts.gs")
    assert commune.get(PAGE).status_code == 404
    r = commune.post(f"/supervision/records/{quarter['record']}/review", data={"outcome": "reminded"},
                     headers=htmx(commune.get("/supervision").text))
    assert r.status_code == 404 and reviews(db) == [], r.text


def test_a_bad_period_is_an_error_next_to_the_field(web, quarter):
    client = web("ts.nv.gs")
    r = client.get("/supervision?unit=TS&period=2025-Q5")
    assert r.status_code == 422
    assert 'id="period-error"' in r.text and "Kỳ báo cáo &#39;2025-Q5&#39; không hợp lệ" in r.text
    assert 'data-testid="late-dossiers"' not in r.text and 'aria-invalid="true"' in r.text
    assert "năm 2000–2100" in client.get("/supervision?period=1999").text
    download = client.get("/supervision/report.pdf?unit=TS&period=quy-1")
    assert download.status_code == 422 and "không hợp lệ" in download.text


def test_review_errors_come_back_next_to_the_form_and_write_nothing(web, db, quarter):
    client = web("ts.nv.gs")
    headers = htmx(client.get(PAGE).text)
    url = f"/supervision/records/{quarter['record']}/review"
    empty = client.post(url, data={"outcome": "", "note": "x"}, headers=headers)
    assert empty.status_code == 422 and "Chọn kết quả xem xét" in empty.text
    assert f'id="outcome-error-{quarter["record"]}"' in empty.text and "<details open>" in empty.text
    unknown = client.post(url, data={"outcome": "khen"}, headers=headers)
    assert unknown.status_code == 422 and "Kết quả xem xét phải là một trong" in unknown.text
    no_token = client.post(url, data={"outcome": "reminded"}, headers={"HX-Request": "true"})
    assert no_token.status_code == 403
    too_long = client.post(url, data={"outcome": "reminded", "note": "x" * 2001}, headers=headers)
    assert too_long.status_code == 422
    assert reviews(db) == []
    admin = web("ts.admin")
    assert admin.get(PAGE).status_code == 200             # admins oversee, but only supervisors review
    r = admin.post(url, data={"outcome": "reminded"}, headers=htmx(admin.get(PAGE).text))
    assert r.status_code == 403 and reviews(db) == []


def test_a_plain_form_review_is_written_and_goes_back_to_the_dashboard(web, db, quarter):
    client = web("ts.nv.gs")
    token = csrf(client.get(PAGE).text)                 # without JavaScript: the form's hidden field
    r = client.post(f"/supervision/records/{quarter['record']}/review",
                    data={"outcome": "accepted", "note": "Lý do khách quan", "back": PAGE, "csrf": token})
    assert r.status_code == 303 and r.headers["location"] == f"{PAGE}#record-{quarter['record']}"
    assert reviews(db) == [{"outcome": "accepted", "note": "Lý do khách quan", "record_id": quarter["record"]}]
    page = client.get(PAGE).text
    assert "Chấp nhận lý do trễ hạn" in page and "Đã xem xét" in page
    # An address of another site is not followed back.
    r = client.post(f"/supervision/records/{quarter['record']}/review",
                    data={"outcome": "reminded", "back": "//evil.example/", "csrf": token})
    assert r.headers["location"].startswith("/#record-")


# --- in the browser -----------------------------------------------------------------------------------

@pytest.mark.browser
def test_the_supervisor_reviews_a_late_step_in_the_browser(new_page, shot, db, quarter):
    page = new_page("ts.nv.gs")
    page.goto("/supervision")
    page.get_by_label("Đơn vị (gồm các đơn vị trực thuộc)").select_option("TS")
    page.get_by_label("Kỳ báo cáo").fill("2025-Q1")
    page.get_by_role("button", name="Xem").click()
    page.wait_for_load_state()
    assert "period=2025-Q1" in page.url
    late = page.get_by_test_id("late-dossiers")
    assert late.get_by_text(quarter["a"]).is_visible() and late.get_by_text(quarter["b"]).is_visible()
    assert unlabelled_controls(page) == []
    shot(page, "dashboard")

    row = page.locator(f"#record-{quarter['record']}")
    assert "Lê Thị Hoa" in row.inner_text() and "1,40 giờ làm việc" in row.inner_text()
    row.get_by_text("Xem xét", exact=True).click()
    row.get_by_label("Kết quả xem xét").select_option("reminded")
    row.get_by_label("Ghi chú").fill("Nhắc nhở lần 1: chậm thẩm định")
    page.once("dialog", lambda dialog: dialog.dismiss())          # changed their mind: nothing is sent
    row.get_by_role("button", name="Ghi kết quả").click()
    assert reviews(db) == []
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Ghi kết quả").click()
    row.get_by_role("status").wait_for()
    assert "Đã ghi kết quả xem xét" in row.inner_text()
    assert "Nhắc nhở" in row.get_by_test_id(f"review-{quarter['record']}").inner_text()
    assert reviews(db) == [{"outcome": "reminded", "note": "Nhắc nhở lần 1: chậm thẩm định",
                            "record_id": quarter["record"]}]
    shot(page, "reviewed")
    page.reload()
    assert "Đã xem xét" in page.locator(f"#record-{quarter['record']}").inner_text()


@pytest.mark.browser
def test_officials_indicators_and_downloads_in_the_browser(new_page, shot, quarter):
    import openpyxl
    import pypdf
    page = new_page("ts.nv.gs")
    page.goto(PAGE)
    officials = page.get_by_test_id("officials")
    hoa = officials.locator("tr", has_text="Lê Thị Hoa")
    assert hoa.locator("td.num").first.inner_text() == "2"

    table = page.get_by_test_id("indicators")
    on_time = table.locator('tr[data-key="on_time"]').inner_text()
    assert "100,0%" in on_time and "98%" in on_time and "Đạt" in on_time
    online = table.locator('tr[data-key="online"]')
    assert "Chưa đạt" in online.inner_text()
    assert online.locator(".verdict.unmet").evaluate("e => getComputedStyle(e).color") == "rgb(164, 22, 26)"
    chart = page.locator('.chart-row[data-key="on_time"]')
    assert chart.get_attribute("role") == "img"
    assert chart.get_attribute("aria-label") == "Tỷ lệ hồ sơ giải quyết đúng hạn: 100,0%, mục tiêu 98%, đạt"
    # The target mark sits at 98% of the track, the bar fills it.
    track = chart.locator(".bar-track").bounding_box()
    mark = chart.locator(".bar-target").bounding_box()
    assert abs((mark["x"] - track["x"]) / track["width"] - 0.98) < 0.02
    assert abs(chart.locator(".bar").bounding_box()["width"] - track["width"]) < 1
    shot(page, "indicators")

    with page.expect_download() as info:
        page.get_by_role("link", name="Tải báo cáo Excel").click()
    download = info.value
    assert download.suggested_filename == "bao-cao-chi-so-TS-2025-Q1.xlsx"
    with open(download.path(), "rb") as f:            # the saved file has no extension: read it as a stream
        book = openpyxl.load_workbook(f)
    summary = "\n".join(str(c.value) for row in book.worksheets[0].iter_rows() for c in row if c.value is not None)
    assert "Ủy ban nhân dân huyện Tây Sơn".upper() in summary.upper() and "Quý I năm 2025" in summary

    pdf = page.request.get(page.get_by_role("link", name="Tải báo cáo PDF").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.body())).pages)
    assert "Quý I năm 2025" in text and "Tỷ lệ hồ sơ giải quyết đúng hạn" in text


@pytest.mark.browser
def test_the_dashboard_is_usable_on_a_laptop_screen(new_page, shot, quarter):
    page = new_page("ts.nv.gs")
    page.goto(PAGE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"the page scrolls sideways at 1366 px ({width})"
    page.goto("/supervision?period=2025-Q9")
    assert page.get_by_role("alert").inner_text().startswith("Kỳ báo cáo '2025-Q9' không hợp lệ")
    assert page.get_by_label("Kỳ báo cáo").get_attribute("aria-invalid") == "true"
    shot(page, "bad-period")
