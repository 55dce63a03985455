"""The counter's intake page and the official-form route: the procedure finder, the citizen ID checked as
typed, the appointment before saving, the checklist with uploads and reuse from the data store, one
transaction on save (nothing written when anything is refused), forms 02/03 for an intake that is not
received, the receipt with its QR link, and who may see which form. TestClient for the server's rules,
Playwright (Debian's Chromium) for the page itself, including an intake done with the keyboard alone."""
from __future__ import annotations

import io
import re
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import func, select

from engine import documents, org
from engine import dossiers as cmd
from engine.models import CodeCounter, Document, Dossier, DossierDocument
from tests.browser_support import unlabelled_controls
from tests.conftest import vn
from tests.documents_support import javascript_pdf, make_pdf

pytest_plugins = ["tests.api_support", "tests.browser_support"]

HUONG = {"full_name": "Nguyễn Thị Hướng", "citizen_id": "052190001234"}
BIRTH = "1.001193"          # Đăng ký khai sinh: TP1, TP2 to digitize, TP4 shown only (all three required)
SIGNATURE = "2.000884"      # Chứng thực chữ ký: TP1 shown only, TP2 to digitize


# --- helpers ----------------------------------------------------------------------------------------

@pytest.fixture
def web(console):
    """web(username) → a TestClient signed in to the console (tests/api_support.py), with .csrf set."""
    return console


def intake(c: TestClient, procedure: str = BIRTH, applicant: dict | None = None, paper=(), files=None, **fields):
    data = {"csrf": c.csrf, "procedure_code": procedure, **(applicant or HUONG), "paper": list(paper), **fields}
    return c.post("/intake", data=data, files=files or {})


def count(db, model) -> int:
    db.rollback()                    # a fresh read: the app wrote on its own connections
    return db.scalar(select(func.count()).select_from(model))


def nothing_written(db) -> bool:
    return all(count(db, model) == 0 for model in (Dossier, Document, DossierDocument, CodeCounter))


def field_error(html: str, field: str) -> str:
    """The message shown next to a field (empty when there is none)."""
    found = re.search(rf'<p class="field-error" id="{re.escape(field)}-error"\s*(hidden)?>([^<]*)</p>', html)
    assert found, f"no error slot for {field}"
    return "" if found.group(1) else found.group(2).strip()


def earlier_document(db, users, *, component="TP2", citizen=HUONG) -> int:
    """A birth registration received earlier with its TP2 uploaded: in the citizen's data store."""
    received = cmd.receive(db, actor=users["pp.motcua"], procedure_code=BIRTH, applicant=citizen,
                           components=["TP1", "TP2", "TP4"], now=vn(2025, 3, 3, 9, 0))
    doc = documents.upload(db, code=received.dossier.code, actor=users["pp.motcua"], component=component,
                           data=make_pdf(2, "Giay chung sinh"), filename="giay-chung-sinh.pdf",
                           now=vn(2025, 3, 3, 9, 5))
    db.commit()
    return doc.id


def qr_codes(pdf: bytes) -> list[str]:
    zxingcpp = pytest.importorskip("zxingcpp")
    images = PdfReader(io.BytesIO(pdf)).pages[0].images
    return [b.text for image in images for b in zxingcpp.read_barcodes(image.image)]


def pdf_text(pdf: bytes) -> str:
    return "".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())


# --- who may use it ---------------------------------------------------------------------------------

def test_only_counter_officers_have_the_intake_page(web, app):
    r = web("ts.tp.cv").get("/intake")
    assert r.status_code == 403 and "không dành cho vai trò" in r.text
    assert r.headers["content-type"].startswith("text/html")
    anonymous = TestClient(app, follow_redirects=False).get("/intake")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=%2Fintake"
    page = web("pp.motcua").get("/intake")
    assert page.status_code == 200 and 'action="/intake"' in page.text and 'enctype="multipart/form-data"' in page.text


def test_a_change_without_the_csrf_token_writes_nothing(web, db):
    c = web("pp.motcua")
    r = c.post("/intake", data={"procedure_code": SIGNATURE, **HUONG, "paper": ["TP1", "TP2"]})
    assert r.status_code == 403 and nothing_written(db)


# --- the procedure finder, the live checks, the appointment ------------------------------------------

def test_procedures_are_found_by_name_without_diacritics_or_by_code(web):
    c = web("pp.motcua")
    by_name = c.get("/intake/procedures", params={"q": "chung thuc chu ky"}).text
    assert 'data-code="2.000884"' in by_name and 'data-code="1.001193"' not in by_name
    by_code = c.get("/intake/procedures", params={"q": "1.001193"}).text
    assert re.findall(r'data-code="([^"]+)"', by_code) == ["1.001193"] and 'role="option"' in by_code
    assert "Không có thủ tục nào khớp" in c.get("/intake/procedures", params={"q": "giấy phép lái xe"}).text
    assert c.get("/intake/procedures", params={"q": "  "}).text.strip() == ""


def test_the_appointment_is_shown_before_saving_and_follows_the_cutoff(web, api_clock):
    def shown_at(*moment) -> str:
        api_clock.now = vn(*moment)
        r = web("pp.motcua").get("/intake/checklist", params={"procedure_code": SIGNATURE})   # signed in at that time
        assert r.status_code == 200, r.text
        return re.search(r'data-testid="appointment"[^>]*>([^<]+)<', r.text).group(1)
    assert shown_at(2025, 4, 24, 9, 0) == "24/04/2025 17:00"
    assert shown_at(2025, 4, 24, 15, 30) == "25/04/2025 17:00"       # after the 15:00 cut-off: the next working day
    # 30/4 and 1/5 are holidays, 2/5/2025 was swapped for Saturday 26/4: the next working day is Monday.
    assert shown_at(2025, 4, 29, 15, 30) == "05/05/2025 17:00"
    unknown = web("pp.motcua").get("/intake/checklist", params={"procedure_code": "9.999999"},
                                   headers={"HX-Request": "true"})
    assert unknown.status_code == 404 and "Không có thủ tục mã 9.999999" in unknown.text


def test_the_checklist_offers_upload_only_for_components_to_digitize(web):
    html = web("pp.motcua").get("/intake/checklist", params={"procedure_code": BIRTH}).text
    for code in ("TP1", "TP2", "TP3"):
        assert f'name="file_{code}"' in html and f'name="kind_{code}"' in html
    assert 'name="file_TP4"' not in html and 'value="TP4"' in html       # shown only: on paper, never scanned
    assert 'value="digitized"' in html and 'value="electronic"' in html


def test_the_citizen_id_is_checked_as_typed_and_opens_the_data_store(web, db, users):
    doc_id = earlier_document(db, users)
    c = web("pp.motcua")
    short = c.get("/intake/citizen", params={"citizen_id": "05219", "procedure_code": BIRTH})
    assert "phải gồm đúng 12 chữ số (đã nhập 5 ký tự)" in field_error(short.text, "citizen_id")
    assert 'name="reuse_TP2"' not in short.text
    letters = c.get("/intake/citizen", params={"citizen_id": "05219000123A"})
    assert "12 chữ số" in field_error(letters.text, "citizen_id")
    valid = c.get("/intake/citizen", params={"citizen_id": HUONG["citizen_id"], "procedure_code": BIRTH})
    assert field_error(valid.text, "citizen_id") == ""
    # Each component to digitize gets the citizen's documents (out of band), the matching ones first.
    slot = re.search(r'<div id="reuse-TP2"[^>]*hx-swap-oob="true">(.*?)</div>', valid.text, re.S).group(1)
    assert f'<option value="{doc_id}"' in slot and "giay-chung-sinh.pdf" in slot
    assert slot.index("Giấy tờ đã nộp cho thành phần TP2") < slot.index(f'value="{doc_id}"')
    stranger = c.get("/intake/citizen", params={"citizen_id": "079123456789", "procedure_code": BIRTH})
    assert "chưa có giấy tờ còn hiệu lực" in stranger.text and "<option value=\"" not in stranger.text


def test_another_communes_officer_is_not_shown_the_citizens_documents(web, db, users):
    earlier_document(db, users)
    html = web("xts.motcua").get("/intake/citizen", params={"citizen_id": HUONG["citizen_id"],
                                                            "procedure_code": BIRTH}).text
    assert "giay-chung-sinh.pdf" not in html and "<option value=\"" not in html


def test_a_district_counter_chooses_the_handling_unit_among_its_agencys(web, db):
    c = web("ts.motcua")
    html = c.get("/intake/checklist", params={"procedure_code": SIGNATURE}).text
    select = re.search(r'<select id="handling_unit".*?</select>', html, re.S).group(0)
    options = dict(re.findall(r'<option value="([^"]+)"\s*(selected)?', select))
    assert options["TS-TP"] == "selected" and "theo lĩnh vực của thủ tục" in select     # the engine's default
    assert "TS-KTHT" in options and "TS-PP" not in options                  # a commune is another agency
    chosen = intake(c, procedure=SIGNATURE, paper=["TP1", "TP2"], handling_unit="TS-KTHT")
    assert chosen.status_code == 303
    dossier = cmd.get_dossier(db, chosen.headers["location"].rsplit("/", 1)[1])
    assert dossier.handling_unit_id == org.unit_by_code(db, "TS-KTHT").id
    foreign = intake(c, procedure=SIGNATURE, paper=["TP1", "TP2"], handling_unit="XTS-VHXH")
    assert foreign.status_code == 422 and "không thuộc cơ quan tiếp nhận" in field_error(foreign.text, "handling_unit")
    assert count(db, Dossier) == 1


# --- saving -------------------------------------------------------------------------------------------

def test_a_complete_intake_with_an_upload_and_a_reuse_is_one_dossier(web, db, users, api_clock):
    doc_id = earlier_document(db, users)
    c = web("pp.motcua")
    preview = c.get("/intake/checklist", params={"procedure_code": BIRTH}).text
    shown = re.search(r'data-iso="([^"]+)"', preview).group(1)
    r = intake(c, paper=["TP4"], reuse_TP2=str(doc_id), kind_TP1="electronic", valid_TP1="31/12/2030",
               files={"file_TP1": ("to-khai.pdf", make_pdf(1, "To khai"), "application/pdf")})
    assert r.status_code == 303, r.text
    code = r.headers["location"].rsplit("/", 1)[1]
    dossier = cmd.get_dossier(db, code)
    assert dossier.components == ["TP1", "TP2", "TP4"] and dossier.applicant["full_name"] == HUONG["full_name"]
    assert dossier.due_at == vn(2025, 4, 24, 17, 0) == datetime.fromisoformat(shown)     # as previewed
    links = {link.component_code: link for link in documents.dossier_documents(db, code=code)}
    assert set(links) == {"TP1", "TP2"} and links["TP2"].reused and links["TP2"].document_id == doc_id
    uploaded = links["TP1"].document
    assert not links["TP1"].reused and uploaded.digitized is False and uploaded.name == "to-khai.pdf"
    assert uploaded.valid_until.isoformat() == "2030-12-31"
    page = c.get(r.headers["location"])
    assert page.status_code == 200 and code in page.text and "24/04/2025 17:00" in page.text
    assert f'src="/dossiers/{code}/forms/01.pdf"' in page.text
    receipt = c.get(f"/dossiers/{code}/forms/01.pdf")
    assert receipt.status_code == 200 and receipt.headers["content-type"] == "application/pdf"
    assert receipt.headers["cache-control"] == "no-store"
    assert qr_codes(receipt.content) == [f"http://localhost:8000/tra-cuu?MaHoSo={code}&MaTTHC={BIRTH}"
                                         f"&SoDinhDanh={HUONG['citizen_id']}"]
    assert "Táisửdụngtừkhodữliệu" in pdf_text(receipt.content)


def test_an_incomplete_dossier_is_not_received_and_form_02_is_offered(web, db):
    c = web("pp.motcua")
    r = intake(c, paper=["TP1"])
    assert r.status_code == 422 and nothing_written(db)
    assert "Hồ sơ chưa đủ thành phần — chưa tiếp nhận" in r.text and 'data-form="02"' in r.text
    for code in ("TP2", "TP4"):
        assert field_error(r.text, f"component_{code}") == "Thành phần bắt buộc chưa nộp"
    assert field_error(r.text, "component_TP1") == ""
    token = re.search(r'name="token" value="([^"]+)"', r.text).group(1)
    pdf = c.post("/intake/forms/02.pdf", data={"csrf": c.csrf, "token": token})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    assert "Mẫusố02" in text and "Giấychứngsinh" in text and "NguyễnThịHướng" in text
    assert nothing_written(db)
    # The token prints only the form it was made for, only for the officer it was made for.
    assert c.post("/intake/forms/03.pdf", data={"csrf": c.csrf, "token": token}).status_code == 422
    assert c.post("/intake/forms/02.pdf", data={"csrf": c.csrf, "token": token[:-3] + "abc"}).status_code == 422
    other = web("ts.motcua")
    assert other.post("/intake/forms/02.pdf", data={"csrf": other.csrf, "token": token}).status_code == 422


def test_a_procedure_outside_the_communes_competence_offers_form_03(web, db):
    c = web("pp.motcua")
    r = intake(c, procedure="XD.GPXD.01", paper=["TP1", "TP2", "TP3"])
    assert r.status_code == 422 and nothing_written(db)
    assert "Không tiếp nhận hồ sơ" in r.text and "không thuộc thẩm quyền" in r.text and 'data-form="03"' in r.text
    token = re.search(r'name="token" value="([^"]+)"', r.text).group(1)
    pdf = c.post("/intake/forms/03.pdf", data={"csrf": c.csrf, "token": token})
    assert pdf.status_code == 200 and "Mẫusố03" in pdf_text(pdf.content)


@pytest.mark.parametrize("applicant, field, message", [
    ({"full_name": "Nguyễn Thị Hướng", "citizen_id": "05219000123"}, "citizen_id", "phải gồm đúng 12 chữ số"),
    ({"full_name": "  ", "citizen_id": "052190001234"}, "full_name", "Thiếu họ tên người nộp hồ sơ"),
    ({**HUONG, "phone": "09-abc"}, "phone", "Số điện thoại không hợp lệ"),
])
def test_bad_applicant_details_are_shown_next_to_the_field_and_nothing_is_written(web, db, applicant, field,
                                                                                 message):
    r = intake(web("pp.motcua"), procedure=SIGNATURE, applicant=applicant, paper=["TP1", "TP2"])
    assert r.status_code == 422 and message in field_error(r.text, field)
    assert 'aria-invalid="true"' in r.text and nothing_written(db)
    assert f'value="{applicant["citizen_id"]}"' in r.text            # what was typed is kept


@pytest.mark.parametrize("upload, message", [
    (("ghi-chu.txt", b"khong phai PDF", "text/plain"), "PDF"),
    (("to-khai.pdf", None, "application/pdf"), "JavaScript"),
])
def test_a_refused_file_is_shown_next_to_its_component_and_nothing_is_written(web, db, upload, message):
    name, data, media = upload
    r = intake(web("pp.motcua"), procedure=SIGNATURE, paper=["TP1"],
               files={"file_TP2": (name, data if data is not None else javascript_pdf(), media)})
    assert r.status_code == 422 and message in field_error(r.text, "component_TP2")
    assert "Các tệp đã chọn không được giữ lại" in r.text
    assert nothing_written(db)


@pytest.mark.parametrize("typed, message", [("31/02/2030", "Ngày hết hiệu lực không hợp lệ"),
                                             ("23/04/2025", "đã qua")])
def test_a_bad_validity_date_is_shown_next_to_its_component(web, db, typed, message):
    r = intake(web("pp.motcua"), procedure=SIGNATURE, paper=["TP1"], valid_TP2=typed,
               files={"file_TP2": ("giay-to.pdf", make_pdf(), "application/pdf")})
    assert r.status_code == 422 and message in field_error(r.text, "component_TP2")
    assert f'value="{typed}"' in r.text and nothing_written(db)


def test_a_reused_document_of_someone_else_is_refused_and_nothing_is_written(web, db, users):
    other = {"full_name": "Trần Văn Bình", "citizen_id": "052088004321"}
    doc_id = earlier_document(db, users, citizen=other)
    before = count(db, Dossier)
    r = intake(web("pp.motcua"), procedure=SIGNATURE, paper=["TP1"], reuse_TP2=str(doc_id))
    assert r.status_code == 403 and "thuộc kho dữ liệu của người khác" in field_error(r.text, "component_TP2")
    assert count(db, Dossier) == before and count(db, DossierDocument) == 1     # only the earlier one


def test_upload_and_reuse_of_one_component_is_a_choice(web, db, users):
    doc_id = earlier_document(db, users)
    before = count(db, Dossier)
    r = intake(web("pp.motcua"), procedure=SIGNATURE, paper=["TP1"], reuse_TP2=str(doc_id),
               files={"file_TP2": ("a.pdf", make_pdf(), "application/pdf")})
    assert r.status_code == 422 and "Chọn một trong hai" in field_error(r.text, "component_TP2")
    assert count(db, Dossier) == before


@pytest.mark.parametrize("value", ["abc", "99999999999999999999"])
def test_a_forged_document_choice_is_refused_before_the_database_sees_it(web, db, value):
    r = intake(web("pp.motcua"), procedure=SIGNATURE, paper=["TP1"], reuse_TP2=value)
    assert r.status_code == 422 and "hãy chọn lại" in field_error(r.text, "component_TP2")
    assert nothing_written(db)


def test_no_procedure_chosen(web, db):
    r = intake(web("pp.motcua"), procedure="", paper=["TP1"])
    assert r.status_code == 422 and "Chọn thủ tục hành chính" in field_error(r.text, "procedure")
    assert nothing_written(db)


# --- the official forms route -------------------------------------------------------------------------

def test_forms_are_served_to_officials_who_see_the_dossier_and_404_to_others(web, app, db, users):
    received = cmd.receive(db, actor=users["pp.motcua"], procedure_code=SIGNATURE, applicant=HUONG,
                           components=["TP1", "TP2"], now=vn(2025, 4, 24, 9, 0))
    db.commit()
    code = received.dossier.code
    counter = web("pp.motcua")
    r = counter.get(f"/dossiers/{code}/forms/01.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.headers["content-disposition"] == f'inline; filename="{code}-mau-01.pdf"'
    assert counter.get(f"/dossiers/{code}/forms/99.pdf").status_code == 422
    stranger = web("xts.cv")                                # another commune (Gia Lai)
    foreign = stranger.get(f"/dossiers/{code}/forms/01.pdf")
    missing = stranger.get("/dossiers/000.35.08.X01-250424-9999/forms/01.pdf")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.headers["content-type"].startswith("text/html")
    assert "dossier_not_found" in foreign.text and "dossier_not_found" in missing.text
    assert foreign.text.replace(code, "X") == missing.text.replace("000.35.08.X01-250424-9999", "X")
    # The district's department does not handle this commune's dossier either; its receipt page neither.
    assert web("ts.tp.cv").get(f"/dossiers/{code}/forms/01.pdf").status_code == 404
    assert web("ts.motcua").get(f"/intake/received/{code}").status_code == 404
    assert TestClient(app, follow_redirects=False).get(f"/dossiers/{code}/forms/01.pdf").status_code == 303


# --- in the browser -----------------------------------------------------------------------------------

def choose_procedure(page, text: str, code: str) -> None:
    page.get_by_label("Tìm thủ tục theo tên hoặc mã").fill(text)
    page.locator(f'#procedure-options [data-code="{code}"]').click()
    page.locator(f'.checklist[data-procedure="{code}"]').wait_for()


def focus_by_tab(page, selector: str, limit: int = 60) -> None:
    """Press Tab (only Tab) until the element is focused."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.browser
def test_intake_in_the_browser_with_an_upload_and_a_reused_document(new_page, shot, db, users, tmp_path):
    doc_id = earlier_document(db, users)
    page = new_page("pp.motcua")
    page.goto("/intake")
    assert unlabelled_controls(page) == []
    choose_procedure(page, "khai sinh", BIRTH)
    page.get_by_label("Họ và tên").fill(HUONG["full_name"])
    page.get_by_label("Số CCCD / định danh cá nhân").fill(HUONG["citizen_id"])
    reuse = page.locator("#reuse_TP2")
    reuse.wait_for()                                    # the data store appeared once the ID was valid
    reuse.select_option(str(doc_id))
    scan = tmp_path / "to-khai.pdf"
    scan.write_bytes(make_pdf(1, "To khai khai sinh"))
    page.locator("#file_TP1").set_input_files(str(scan))
    page.locator('input[name="paper"][value="TP4"]').check()
    appointment = page.get_by_test_id("appointment")
    assert appointment.inner_text() == "24/04/2025 17:00"     # before saving
    assert unlabelled_controls(page) == []
    shot(page, "filled")
    page.get_by_role("button", name="Tiếp nhận hồ sơ và in phiếu hẹn").click()
    page.wait_for_url("**/intake/received/**")
    code = page.get_by_test_id("dossier-code").inner_text()
    assert page.get_by_test_id("appointment").inner_text() == "24/04/2025 17:00"
    assert page.locator("#receipt-frame").get_attribute("src") == f"/dossiers/{code}/forms/01.pdf"
    assert page.get_by_role("button", name="In phiếu hẹn (Mẫu 01)").is_visible()
    shot(page, "received")
    receipt = page.request.get(f"/dossiers/{code}/forms/01.pdf")        # with the page's cookies
    assert receipt.ok and receipt.headers["content-type"] == "application/pdf"
    [link] = qr_codes(receipt.body())
    assert urlsplit(link).path == "/tra-cuu" and f"MaHoSo={code}" in link and "SoDinhDanh=052190001234" in link
    links = {link.component_code: link.reused for link in documents.dossier_documents(db, code=code)}
    assert links == {"TP1": False, "TP2": True}


@pytest.mark.browser
def test_intake_with_the_keyboard_alone(new_page, shot, db, tmp_path):
    page = new_page("pp.motcua")
    page.goto("/intake")
    keys = page.keyboard
    assert page.evaluate("document.activeElement.id") == "procedure-search"      # autofocus
    keys.type("chung thuc chu ky")
    page.locator('#procedure-options [role="option"]').first.wait_for()
    keys.press("ArrowDown")
    assert page.locator("#procedure-search").get_attribute("aria-activedescendant") == "procedure-option-1"
    keys.press("Enter")
    page.locator(f'.checklist[data-procedure="{SIGNATURE}"]').wait_for()
    keys.press("Tab")
    keys.type(HUONG["full_name"])
    keys.press("Tab")
    keys.type(HUONG["citizen_id"])
    focus_by_tab(page, 'input[name="paper"][value="TP1"]')
    keys.press("Space")
    focus_by_tab(page, "#file_TP2")
    scan = tmp_path / "giay-to.pdf"
    scan.write_bytes(make_pdf(1, "Giay to can ky"))
    with page.expect_file_chooser() as chooser:
        keys.press("Space")
    chooser.value.set_files(str(scan))
    keys.press("Tab")                                   # the file's source: arrow keys move the choice
    keys.press("ArrowRight")
    assert page.locator('input[name="kind_TP2"][value="electronic"]').is_checked()
    shot(page, "keyboard-filled")
    focus_by_tab(page, "#save")
    keys.press("Enter")
    page.wait_for_url("**/intake/received/**")
    code = page.get_by_test_id("dossier-code").inner_text()
    assert page.evaluate("document.activeElement.id") == "print-receipt"
    shot(page, "keyboard-received")
    dossier = cmd.get_dossier(db, code)
    assert dossier.components == ["TP1", "TP2"] and dossier.applicant["citizen_id"] == HUONG["citizen_id"]
    [link] = documents.dossier_documents(db, code=code)
    assert link.component_code == "TP2" and link.document.digitized is False


@pytest.mark.browser
def test_incomplete_intake_in_the_browser_offers_form_02_and_writes_nothing(new_page, shot, db):
    page = new_page("pp.motcua")
    page.goto("/intake")
    choose_procedure(page, "1.001193", BIRTH)
    page.get_by_label("Họ và tên").fill(HUONG["full_name"])
    page.get_by_label("Số CCCD / định danh cá nhân").fill(HUONG["citizen_id"])
    page.locator('input[name="paper"][value="TP1"]').check()
    page.get_by_role("button", name="Tiếp nhận hồ sơ và in phiếu hẹn").click()
    outcome = page.locator("#outcome")
    outcome.wait_for()
    assert "chưa tiếp nhận" in outcome.inner_text() and "TP2." in outcome.inner_text()
    assert page.locator("#component_TP4-error").inner_text() == "Thành phần bắt buộc chưa nộp"
    button = page.get_by_role("button", name="In phiếu yêu cầu bổ sung, hoàn thiện hồ sơ (Mẫu 02)")
    assert button.is_visible() and button.get_attribute("form") == "intake-form-pdf"
    assert unlabelled_controls(page) == []
    shot(page, "incomplete")
    form = page.locator("#intake-form-pdf")
    pdf = page.request.post(form.get_attribute("action"), form={
        "csrf": form.locator('input[name="csrf"]').get_attribute("value"),
        "token": form.locator('input[name="token"]').get_attribute("value")})
    assert pdf.ok and "Mẫusố02" in pdf_text(pdf.body())
    assert nothing_written(db)


@pytest.mark.browser
def test_a_bad_citizen_id_is_shown_next_to_the_field_as_typed_and_on_save(new_page, shot, db):
    page = new_page("pp.motcua")
    page.goto(f"/intake?procedure={SIGNATURE}")
    page.locator(f'.checklist[data-procedure="{SIGNATURE}"]').wait_for()
    field = page.get_by_label("Số CCCD / định danh cá nhân")
    field.fill("05219")
    message = page.locator("#citizen_id-error")
    message.wait_for(state="visible")
    assert "đã nhập 5 ký tự" in message.inner_text() and field.get_attribute("aria-invalid") == "true"
    shot(page, "typing")
    field.fill(HUONG["citizen_id"])
    message.wait_for(state="hidden")
    assert field.get_attribute("aria-invalid") == "false"
    field.fill("0521900012")
    page.get_by_label("Họ và tên").fill(HUONG["full_name"])
    page.locator('input[name="paper"][value="TP1"]').check()
    page.locator('input[name="paper"][value="TP2"]').check()
    page.get_by_role("button", name="Tiếp nhận hồ sơ và in phiếu hẹn").click()
    page.wait_for_load_state()
    assert "đã nhập 10 ký tự" in page.locator("#citizen_id-error").inner_text()
    assert page.get_by_label("Số CCCD / định danh cá nhân").get_attribute("aria-invalid") == "true"
    shot(page, "refused")
    assert nothing_written(db)
