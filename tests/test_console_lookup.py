"""The citizen's lookup page (/tra-cuu): public, for a phone; reached from the receipt's QR link or by
typing the dossier code and the last 4 digits of the ID (or the lookup code). It shows status,
appointment, dates and what is missing — never the applicant's name or ID — answers a wrong secret as a
missing dossier, shares the API's per-client limit, and takes the satisfaction rating once returned."""
from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select

from engine import documents
from engine import dossiers as cmd
from engine.config import settings
from engine.models import Rating
from tests.browser_support import unlabelled_controls
from tests.conftest import vn

pytest_plugins = ["tests.api_support", "tests.browser_support"]

HUONG = {"full_name": "Nguyễn Thị Hướng", "citizen_id": "052190001234", "phone": "0905123456"}
COPY = "2.000815"           # Chứng thực bản sao: Phú Phong's counter → pp.cv → pp.ld → returned the same day
PHONE = {"width": 390, "height": 844}
NOT_FOUND = "Không tìm thấy hồ sơ với mã và thông tin đã nhập"


@pytest.fixture
def public(app):
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def received(db, users) -> cmd.Received:
    r = cmd.receive(db, actor=users["pp.motcua"], procedure_code=COPY, applicant=HUONG, components=["TP1"],
                    now=vn(2025, 4, 24, 9, 0))
    db.commit()
    return r


def returned(db, users) -> cmd.Received:
    r = received(db, users)
    code = r.dossier.code
    cmd.complete_step(db, code=code, actor=users["pp.cv"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    cmd.complete_step(db, code=code, actor=users["pp.ld"], decision="dong_y", now=vn(2025, 4, 24, 10, 0))
    cmd.return_result(db, code=code, actor=users["pp.motcua"], now=vn(2025, 4, 24, 10, 30))
    db.commit()
    return r


def waiting_for_papers(db, users) -> str:
    code = received(db, users).dossier.code
    cmd.request_supplement(db, code=code, actor=users["pp.cv"], missing=["Bản chính giấy khai sinh"],
                           note="Bản sao bị mờ", now=vn(2025, 4, 24, 9, 30))
    db.commit()
    return code


def qr_link(db, code: str) -> str:
    """The link the receipt's QR code carries, read back from the printed form."""
    zxingcpp = pytest.importorskip("zxingcpp")
    pdf = documents.render_form(db, code=code, form="01", now=vn(2025, 4, 24, 9, 1))
    [link] = [b.text for image in PdfReader(io.BytesIO(pdf)).pages[0].images
              for b in zxingcpp.read_barcodes(image.image)]
    return link


def ratings(db) -> list[Rating]:
    db.rollback()
    return list(db.scalars(select(Rating)))


def shown(html: str) -> str:
    """The visible text of the page's main part (hidden form fields are not shown)."""
    main = html[html.index("<main"):]
    return re.sub(r"<input[^>]*type=\"hidden\"[^>]*>", "", main)


# --- the server's rules -------------------------------------------------------------------------------

def test_the_form_is_public(public):
    r = public.get("/tra-cuu")
    assert r.status_code == 200 and "Tra cứu tình trạng hồ sơ" in r.text
    assert 'name="MaHoSo"' in r.text and 'name="XacThuc"' in r.text and "Đăng xuất" not in r.text


def test_the_qr_link_shows_the_status_and_nothing_personal(public, db, users):
    code = received(db, users).dossier.code
    link = qr_link(db, code)
    assert link.startswith(settings().public_url + "/tra-cuu?")
    parts = urlsplit(link)
    r = public.get(f"{parts.path}?{parts.query}")
    assert r.status_code == 200
    page = shown(r.text)
    assert code in page and "Đang giải quyết" in page and "24/04/2025 17:00" in page and "24/04/2025 09:00" in page
    for personal in (HUONG["full_name"], HUONG["citizen_id"], HUONG["phone"], "1234"):
        assert personal not in page
    # The full ID must match: a QR link with another ID finds nothing.
    forged = public.get("/tra-cuu", params={"MaHoSo": code, "SoDinhDanh": "052190009999"})
    assert forged.status_code == 404 and NOT_FOUND in forged.text and "Đang giải quyết" not in forged.text


def test_last_four_digits_or_the_lookup_code(public, db, users):
    r = received(db, users)
    code, lookup_code = r.dossier.code, r.receipt["lookup_code"]
    by_digits = public.get("/tra-cuu", params={"MaHoSo": code, "XacThuc": "1234"})
    assert by_digits.status_code == 200 and 'data-testid="status"' in by_digits.text
    by_code = public.get("/tra-cuu", params={"MaHoSo": f" {code} ", "XacThuc": lookup_code.lower()})
    assert by_code.status_code == 200 and "Đang giải quyết" in by_code.text


def test_a_wrong_secret_answers_as_a_missing_dossier(public, db, users):
    code = received(db, users).dossier.code
    wrong = public.get("/tra-cuu", params={"MaHoSo": code, "XacThuc": "9999"})
    missing = public.get("/tra-cuu", params={"MaHoSo": "000.35.08.X01-250424-9999", "XacThuc": "1234"})
    assert wrong.status_code == missing.status_code == 404
    assert NOT_FOUND in wrong.text and NOT_FOUND in missing.text
    assert 'data-testid="status"' not in wrong.text
    blank = public.get("/tra-cuu", params={"MaHoSo": code, "XacThuc": ""})
    assert blank.status_code == 422 and 'id="secret-error"' in blank.text and "4 số cuối CCCD" in blank.text
    no_code = public.get("/tra-cuu", params={"MaHoSo": "", "XacThuc": "1234"})
    assert no_code.status_code == 422 and 'id="code-error"' in no_code.text and "Nhập mã hồ sơ" in no_code.text


def test_what_is_missing_is_shown_while_waiting_for_papers(public, db, users):
    code = waiting_for_papers(db, users)
    r = public.get("/tra-cuu", params={"MaHoSo": code, "XacThuc": "1234"})
    assert "Chờ bổ sung" in r.text and "Bản chính giấy khai sinh" in r.text
    assert "Bản sao bị mờ" not in r.text                  # the officer's note is not for the public page


def test_the_page_and_the_api_share_one_limit_per_client(public, db, users):
    code = received(db, users).dossier.code
    for _ in range(29):
        assert public.get("/api/lookup", params={"code": "X", "id_last4": "0000"}).status_code == 404
    blocked = public.get("/tra-cuu", params={"MaHoSo": code, "XacThuc": "1234"})
    assert blocked.status_code == 429 and "Tra cứu quá nhiều lần" in blocked.text
    assert "Đang giải quyết" not in blocked.text
    assert public.post("/tra-cuu/danh-gia", data={"code": code, "secret": "1234",
                                                   "rating": "satisfied"}).status_code == 429


def test_rating_after_return_once_with_the_secret(public, db, users):
    code = returned(db, users).dossier.code
    page = public.get("/tra-cuu", params={"MaHoSo": code, "XacThuc": "1234"})
    assert "Đã trả kết quả" in page.text and 'action="/tra-cuu/danh-gia"' in page.text
    assert 'name="csrf"' not in page.text                  # public: the secret and the limit protect it
    wrong = public.post("/tra-cuu/danh-gia", data={"code": code, "secret": "9999", "rating": "satisfied"})
    assert wrong.status_code == 404 and NOT_FOUND in wrong.text and ratings(db) == []
    none = public.post("/tra-cuu/danh-gia", data={"code": code, "secret": "1234"})
    assert none.status_code == 422 and "Chọn một mức đánh giá" in none.text and ratings(db) == []
    bad = public.post("/tra-cuu/danh-gia", data={"code": code, "secret": "1234", "rating": "tuyet_voi"})
    assert bad.status_code == 422 and ratings(db) == []
    ok = public.post("/tra-cuu/danh-gia", data={"code": code, "secret": "1234", "rating": "normal",
                                                "comment": "Cán bộ hướng dẫn tận tình"})
    assert ok.status_code == 200 and "Cảm ơn ông/bà đã đánh giá" in ok.text
    [rating] = ratings(db)
    assert (rating.rating, rating.via, rating.comment, rating.actor_id) == \
        ("normal", "lookup", "Cán bộ hướng dẫn tận tình", None)
    again = public.post("/tra-cuu/danh-gia", data={"code": code, "secret": "1234", "rating": "satisfied"})
    assert again.status_code == 409 and "đã được đánh giá" in again.text and len(ratings(db)) == 1


def test_no_rating_before_the_result_is_returned(public, db, users):
    code = received(db, users).dossier.code
    page = public.get("/tra-cuu", params={"MaHoSo": code, "XacThuc": "1234"})
    assert 'action="/tra-cuu/danh-gia"' not in page.text
    early = public.post("/tra-cuu/danh-gia", data={"code": code, "secret": "1234", "rating": "satisfied"})
    assert early.status_code == 409 and "chưa trả kết quả" in early.text and ratings(db) == []


def test_a_rating_from_the_qr_link_does_not_put_the_full_id_in_the_page(public, db, users):
    code = returned(db, users).dossier.code
    r = public.get("/tra-cuu", params={"MaHoSo": code, "SoDinhDanh": HUONG["citizen_id"]})
    assert r.status_code == 200 and 'action="/tra-cuu/danh-gia"' in r.text
    assert HUONG["citizen_id"] not in r.text


def test_the_request_log_keeps_the_path_not_the_query_with_the_id(public, db, users, caplog):
    code = received(db, users).dossier.code
    with caplog.at_level("INFO", logger="motcua.api"):
        assert public.get("/tra-cuu", params={"MaHoSo": code, "SoDinhDanh": HUONG["citizen_id"]}).status_code == 200
    logged = [r for r in caplog.records if getattr(r, "path", None) == "/tra-cuu"]
    assert logged, "the request was not logged"
    for record in caplog.records:
        assert HUONG["citizen_id"] not in repr(vars(record)) and code not in repr(vars(record))


# --- on a phone ---------------------------------------------------------------------------------------

def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def look_up(page, code: str, secret: str) -> None:
    """Fill in the lookup form as a citizen would and send it."""
    page.get_by_label("Mã hồ sơ").fill(code)
    page.get_by_label("4 số cuối CCCD của người nộp, hoặc mã tra cứu").fill(secret)
    page.get_by_role("button", name="Tra cứu").click()


@pytest.mark.browser
def test_lookup_from_the_qr_link_on_a_phone(new_page, shot, db, users, live_server):
    code = waiting_for_papers(db, users)
    parts = urlsplit(qr_link(db, code))
    page = new_page(viewport=PHONE)
    page.goto(f"{parts.path}?{parts.query}")                 # as the phone camera opens it (on this server)
    assert page.get_by_test_id("status").inner_text() == "Chờ bổ sung"
    assert "Bản chính giấy khai sinh" in page.get_by_test_id("missing").inner_text()
    assert page.get_by_test_id("appointment").inner_text() == "24/04/2025 17:00"
    text = page.locator("main").inner_text()
    assert HUONG["full_name"] not in text and HUONG["citizen_id"] not in text
    assert fits_the_screen(page) and unlabelled_controls(page) == []
    shot(page, "qr")


@pytest.mark.browser
def test_lookup_with_a_wrong_secret_on_a_phone(new_page, shot, db, users):
    code = received(db, users).dossier.code
    page = new_page(viewport=PHONE)
    page.goto("/tra-cuu")
    assert unlabelled_controls(page) == []
    shot(page, "form")
    look_up(page, code, "9999")
    assert NOT_FOUND in page.get_by_role("alert").inner_text()
    assert page.get_by_test_id("result").count() == 0 and fits_the_screen(page)
    shot(page, "not-found")


@pytest.mark.browser
def test_rating_after_return_on_a_phone(new_page, shot, db, users):
    code = returned(db, users).dossier.code
    page = new_page(viewport=PHONE)
    page.goto("/tra-cuu")
    look_up(page, code, "1234")
    assert page.get_by_test_id("status").inner_text() == "Đã trả kết quả"
    assert unlabelled_controls(page) == [] and fits_the_screen(page)
    shot(page, "returned")
    page.get_by_label("Hài lòng", exact=True).check()
    page.get_by_label("Góp ý (không bắt buộc)").fill("Nhanh, đúng hẹn")
    page.get_by_role("button", name="Gửi đánh giá").click()
    assert "Cảm ơn" in page.get_by_test_id("rated").inner_text()
    shot(page, "rated")
    [rating] = ratings(db)
    assert (rating.rating, rating.via, rating.comment) == ("satisfied", "lookup", "Nhanh, đúng hẹn")
