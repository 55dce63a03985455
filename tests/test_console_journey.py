"""A dossier's whole journey through the console, as the people at a district centre live it: the counter
receives it on the intake page and prints the receipt; the specialist finds it in the inbox and appraises
it; the leader approves; the counter returns the result; the citizen scans the receipt's QR code on a phone
and sees it returned, then rates the service. Each person in their own browser session."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from engine import dossiers as cmd
from engine.models import Rating
from tests.api_support import PASSWORD
from tests.browser_support import save_pdf_page, unlabelled_controls
from tests.conftest import vn
from tests.test_console_dossier import act, markers
from tests.test_console_intake import choose_procedure, qr_codes

pytest_plugins = ["tests.api_support", "tests.browser_support"]

SIGNATURE = "2.000884"       # Chứng thực chữ ký: counter of TS-VP → Phòng Tư pháp (specialist, leader)
APPLICANT = {"full_name": "Trần Thị Bích Ngọc", "citizen_id": "052195006789"}
PHONE = {"width": 390, "height": 844}


def intake(page, shot) -> str:
    page.goto("/intake")
    choose_procedure(page, "chung thuc chu ky", SIGNATURE)
    page.get_by_label("Họ và tên").fill(APPLICANT["full_name"])
    page.get_by_label("Số CCCD / định danh cá nhân").fill(APPLICANT["citizen_id"])
    for component in ("TP1", "TP2"):
        page.locator(f'input[name="paper"][value="{component}"]').check()
    assert page.get_by_test_id("appointment").inner_text() == "24/04/2025 17:00"    # shown before saving
    shot(page, "intake")
    page.get_by_role("button", name="Tiếp nhận hồ sơ và in phiếu hẹn").click()
    page.wait_for_url("**/intake/received/**")
    shot(page, "receipt")
    return page.get_by_test_id("dossier-code").inner_text()


@pytest.mark.browser
def test_a_dossier_from_the_counter_to_the_citizen(db, api_clock, new_page, shot):
    api_clock.now = vn(2025, 4, 24, 9, 0)
    counter = new_page("ts.motcua")
    code = intake(counter, shot)
    receipt = counter.request.get(f"/dossiers/{code}/forms/01.pdf")
    [qr] = qr_codes(receipt.body())
    save_pdf_page(receipt.body(), "test_a_dossier_from_the_counter_to_the_citizen-receipt-pdf")

    api_clock.now += timedelta(minutes=20)     # within the counter's 30-minute idle limit
    specialist = new_page("ts.tp.cv")
    specialist.goto("/inbox")
    row = specialist.locator(f'tr:has(a:text-is("{code}"))')
    # A same-day procedure: its appraisal step is due this afternoon, so within one working day.
    assert "Đến hạn trong 1 ngày làm việc" in row.inner_text() and "14:36" in row.inner_text()
    assert "sla-due_soon" in row.get_attribute("class")
    shot(specialist, "inbox")
    row.get_by_role("link", name=code).click()
    specialist.wait_for_selector("#diagram[data-state]")
    assert markers(specialist)["current"] == ["tham_dinh"]
    complete = specialist.locator('section[data-action="complete"]')
    complete.get_by_label("Đạt yêu cầu").check()
    complete.get_by_label("Ghi chú, ý kiến xử lý").fill("Chữ ký đúng mẫu đã đăng ký")
    act(specialist, "complete")

    api_clock.now += timedelta(minutes=20)     # within the counter's 30-minute idle limit
    leader = new_page("ts.tp.ld")
    leader.goto("/inbox")
    leader.get_by_role("link", name=code).click()
    leader.wait_for_selector("#diagram[data-state]")
    leader.locator('section[data-action="complete"]').get_by_label("Đồng ý").check()
    act(leader, "complete")
    assert leader.get_by_test_id("status").inner_text() == "Chờ trả kết quả"

    api_clock.now += timedelta(minutes=20)     # within the counter's 30-minute idle limit
    counter.goto("/inbox")               # an hour idle: signed out, and back to the inbox after signing in
    assert "Phiên làm việc đã hết hạn" in counter.locator("main").inner_text()
    counter.get_by_label("Tên đăng nhập").fill("ts.motcua")
    counter.get_by_label("Mật khẩu").fill(PASSWORD)
    counter.get_by_role("button", name="Đăng nhập").click()
    counter.wait_for_url("**/inbox")
    counter.get_by_role("link", name=code).click()
    counter.wait_for_selector("#diagram[data-state]")
    act(counter, "return")
    assert counter.get_by_test_id("status").inner_text() == "Đã trả kết quả"
    assert markers(counter)["current"] == [] and "tra_kq" in markers(counter)["done"]
    shot(counter, "returned")
    assert cmd.get_dossier(db, code).status == "returned"
    db.rollback()

    citizen = new_page(viewport=PHONE)                 # no login: the QR code's link on a phone
    link = urlsplit(qr)
    citizen.goto(f"{link.path}?{link.query}")
    page_text = citizen.locator("main").inner_text()
    assert code in page_text and "Đã trả kết quả" in page_text
    assert APPLICANT["citizen_id"] not in citizen.content()           # nothing else disclosed
    assert APPLICANT["full_name"] not in citizen.content()
    assert unlabelled_controls(citizen) == []
    shot(citizen, "lookup-phone")
    citizen.get_by_label("Hài lòng", exact=True).check()
    citizen.get_by_role("button", name="Gửi đánh giá").click()
    citizen.get_by_test_id("rated").wait_for()
    db.rollback()                        # a fresh snapshot: the rating was written by the server's session
    assert [(r.rating, r.via) for r in db.query(Rating).all()] == [("satisfied", "lookup")]
