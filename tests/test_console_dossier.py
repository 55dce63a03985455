"""The console's dossier list, dossier page and its actions: the server side through TestClient (status
codes, authorisation, CSRF, bad input, the diagram and document routes), then the browser: a dossier's
journey across three logins, a supplement round, the diagram's markers, a stale page, the confirmation
dialog, and the user of another commune."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine import dossiers as cmd
from engine.models import Dossier, Event, OutboxMessage, Step
from tests.browser_support import unlabelled_controls
from tests.conftest import vn

pytest_plugins = ["tests.api_support", "tests.browser_support"]

APPLICANT = {"full_name": "Nguyễn Văn An", "citizen_id": "052088004321", "phone": "0905123456"}


# --- helpers ----------------------------------------------------------------------------------------

def receive(db, users, now, *, procedure="2.000884", officer="ts.motcua", components=("TP1", "TP2"),
            applicant=APPLICANT) -> str:
    """A dossier received through the engine at the app's time; the test session commits and lets go."""
    code = cmd.receive(db, actor=users[officer], procedure_code=procedure, applicant=dict(applicant),
                       components=list(components), now=now).dossier.code
    db.commit()
    return code


def engine_do(db, fn, **kwargs):
    result = fn(db, **kwargs)
    db.commit()
    return result


def state(db, code: str) -> tuple[int, str, list[str]]:
    """(version, status, ready steps) as stored, read in a transaction of its own."""
    db.expire_all()
    d = db.scalar(select(Dossier).where(Dossier.code == code))
    ready = sorted(db.scalars(select(Step.bpmn_id).where(Step.dossier_id == d.id, Step.state == "ready")))
    result = (d.version, d.status, ready)
    db.commit()
    return result


def ready_step(db, code: str, bpmn_id: str) -> int:
    db.expire_all()
    found = db.scalar(select(Step.id).join(Dossier).where(Dossier.code == code, Step.bpmn_id == bpmn_id,
                                                          Step.state == "ready"))
    db.commit()
    return found


def event_count(db, code: str) -> int:
    n = db.scalar(select(func.count()).select_from(Event).join(Dossier, Dossier.id == Event.dossier_id)
                  .where(Dossier.code == code))
    db.commit()
    return n


# `console(username)`: the signed-in TestClient fixture of tests/api_support.py.


def post(c: TestClient, url: str, data: dict | None = None, htmx: bool = True):
    headers = {"HX-Request": "true"} if htmx else {}
    return c.post(url, data={"csrf": c.csrf, **(data or {})}, headers=headers)


# --- server side ------------------------------------------------------------------------------------

def test_dossier_page_shows_the_record_with_the_citizen_id_masked(db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    page = console("ts.tp.cv").get(f"/dossiers/{code}")
    assert page.status_code == 200
    text = page.text
    assert "Nguyễn Văn An" in text and "••••••••4321" in text and "052088004321" not in text
    assert re.search(r'data-testid="status">([^<]*)<', text).group(1) == "Đang giải quyết"
    assert "24/04/2025 09:00" in text and "24/04/2025 17:00" in text          # received, appointment
    assert "Phiếu kiểm soát quá trình giải quyết" in text and "Tiếp nhận hồ sơ" in text
    assert f'/dossiers/{code}/forms/01.pdf' in text and f'/dossiers/{code}/forms/05.pdf' in text
    assert "/forms/02.pdf" not in text                                         # no supplement asked yet
    # The specialist's actions on the ready step, and nothing of the dossier-level ones.
    step = ready_step(db, code, "tham_dinh")
    for action in ("claim", "complete", "request-supplement", "refuse", "transfer"):
        assert f'/dossiers/{code}/steps/{step}/{action}"' in text
    assert f"/dossiers/{code}/extend" not in text and f"/dossiers/{code}/stop" not in text
    # The completion form offers the decisions of that step, except those with their own action.
    assert 'value="dat"' in text and 'value="bo_sung"' not in text and 'value="tu_choi"' not in text


def test_a_dossier_of_another_commune_is_the_same_404_as_a_missing_one(db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    for username in ("pp.cv", "xts.cv"):
        c = console(username)
        foreign, missing = c.get(f"/dossiers/{code}"), c.get("/dossiers/000.00.35.H08-250424-9999")
        assert foreign.status_code == missing.status_code == 404
        assert "Không tìm thấy" in foreign.text and "Nguyễn Văn An" not in foreign.text
        assert foreign.text.replace(code, "X") == missing.text.replace("000.00.35.H08-250424-9999", "X")
        assert c.get(f"/dossiers/{code}/diagram.bpmn").status_code == 404
        step = ready_step(db, code, "tham_dinh")
        r = post(c, f"/dossiers/{code}/steps/{step}/complete", {"decision": "dat"}, htmx=False)
        assert r.status_code == 404 and "Nguyễn Văn An" not in r.text
    assert state(db, code)[0] == 1


def test_no_session_redirects_to_login_and_roles_are_checked(app, db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get(f"/dossiers/{code}").headers["location"].startswith("/login?next=")
    assert anonymous.get("/dossiers").status_code == 303
    # A supervisor of the district sees the dossier, and has no action on it.
    page = console("ts.nv.gs").get(f"/dossiers/{code}")
    assert page.status_code == 200 and 'data-testid="no-actions"' in page.text


def test_actions_need_the_csrf_token_and_nothing_is_written_without_it(db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    c = console("ts.tp.cv")
    step = ready_step(db, code, "tham_dinh")
    r = c.post(f"/dossiers/{code}/steps/{step}/complete", data={"decision": "dat", "expected_version": 1})
    assert r.status_code == 403 and "Biểu mẫu đã cũ" in r.text
    r = c.post(f"/dossiers/{code}/steps/{step}/complete", data={"decision": "dat", "csrf": "sai"})
    assert r.status_code == 403
    assert state(db, code) == (1, "processing", ["tham_dinh"])


def test_complete_approve_and_return_through_the_console(db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    specialist = console("ts.tp.cv")
    api_clock.now += timedelta(minutes=20)
    r = post(specialist, f"/dossiers/{code}/steps/{ready_step(db, code, 'tham_dinh')}/complete",
             {"decision": "dat", "note": "Đủ điều kiện", "expected_version": 1})
    assert r.status_code == 200 and r.headers["HX-Redirect"] == f"/dossiers/{code}?done=complete"
    assert state(db, code)[1:] == ("processing", ["phe_duyet"])
    page = specialist.get(r.headers["HX-Redirect"])
    assert "Đã hoàn thành bước" in page.text and "Đủ điều kiện" in page.text and "Đạt yêu cầu" in page.text
    leader = console("ts.tp.ld")
    version = state(db, code)[0]
    r = post(leader, f"/dossiers/{code}/steps/{ready_step(db, code, 'phe_duyet')}/complete",
             {"decision": "dong_y", "expected_version": version}, htmx=False)       # a plain form post
    assert r.status_code == 303 and r.headers["location"] == f"/dossiers/{code}?done=complete"
    counter = console("ts.motcua")
    page = counter.get(f"/dossiers/{code}")
    assert f"/dossiers/{code}/return" in page.text
    r = post(counter, f"/dossiers/{code}/return", {"expected_version": state(db, code)[0]})
    assert r.status_code == 200
    assert state(db, code)[1:] == ("returned", [])
    page = counter.get(f"/dossiers/{code}")
    assert 'data-testid="no-actions"' in page.text and "Đã trả kết quả" in page.text


def test_bad_input_is_shown_at_its_field_and_writes_nothing(db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    c = console("ts.tp.cv")
    step = ready_step(db, code, "tham_dinh")
    events = event_count(db, code)
    r = post(c, f"/dossiers/{code}/steps/{step}/complete", {"note": "thiếu quyết định", "expected_version": 1})
    assert r.status_code == 422
    assert 'id="complete-%d-decision-error"' % step in r.text and "cần một quyết định" in r.text
    assert "thiếu quyết định" in r.text                          # what was typed is kept
    r = post(c, f"/dossiers/{code}/steps/{step}/request-supplement", {"note": "", "expected_version": 1})
    assert r.status_code == 422 and f'id="request_supplement-{step}-missing-error"' in r.text
    r = post(c, f"/dossiers/{code}/steps/{step}/refuse", {"reason": "  ", "expected_version": 1})
    assert r.status_code == 422 and "phải nêu rõ lý do" in r.text
    r = post(c, f"/dossiers/{code}/steps/{step}/transfer", {"to_unit": "KHONG-CO", "expected_version": 1})
    assert r.status_code == 404 and f'id="transfer-{step}-to_unit-error"' in r.text
    r = post(c, f"/dossiers/{code}/steps/{step}/transfer", {"to_unit": "TS-TP", "expected_version": 1})
    assert r.status_code == 422 and "trùng với đơn vị đang xử lý" in r.text
    # A leader's extension: a number that is not one, a date before the appointment.
    leader = console("ts.tp.ld")
    r = post(leader, f"/dossiers/{code}/extend", {"reason": "Chờ xác minh", "extra_working_days": "ba"})
    assert r.status_code == 422 and 'id="extend-extra_working_days-error"' in r.text
    r = post(leader, f"/dossiers/{code}/extend", {"reason": "Chờ xác minh", "new_due": "31/04/2025 17:00"})
    assert r.status_code == 422 and 'id="extend-new_due-error"' in r.text and "ngày/tháng/năm" in r.text
    r = post(leader, f"/dossiers/{code}/extend", {"reason": "Chờ xác minh", "new_due": "20/04/2025 17:00"})
    assert r.status_code == 422 and 'id="extend-new_due-error"' in r.text and "phải sau ngày hẹn" in r.text
    r = post(leader, f"/dossiers/{code}/stop", {"reason": ""}, htmx=False)     # plain post: the whole page
    assert r.status_code == 422 and "<html" in r.text and 'id="stop-reason-error"' in r.text
    assert state(db, code) == (1, "processing", ["tham_dinh"]) and event_count(db, code) == events


def test_the_leader_assigns_a_step_to_one_of_the_units_specialists(db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    step = ready_step(db, code, "tham_dinh")
    leader = console("ts.tp.ld")
    page = leader.get(f"/dossiers/{code}")
    form = page.text[page.text.index(f'id="action-assign-{step}"'):]
    form = form[:form.index("</section>")]
    # Exactly the unit's active specialists: not its leader, not another department's specialist.
    assert re.findall(r'<option value="([^"]+)"', form) == ["ts.tp.cv", "ts.tp.cv2"]
    assert f'id="action-assign-{step}"' not in console("ts.tp.cv").get(f"/dossiers/{code}").text
    events = event_count(db, code)
    r = post(leader, f"/dossiers/{code}/steps/{step}/assign", {"assignee": "ts.ktht.cv", "expected_version": 1})
    assert r.status_code == 422 and f'id="assign-{step}-assignee-error"' in r.text
    r = post(leader, f"/dossiers/{code}/steps/{step}/assign", {"assignee": "", "expected_version": 1})
    assert r.status_code == 422 and "Chọn người được phân công" in r.text
    assert state(db, code) == (1, "processing", ["tham_dinh"]) and event_count(db, code) == events
    r = post(leader, f"/dossiers/{code}/steps/{step}/assign", {"assignee": "ts.tp.cv2", "expected_version": 1})
    assert r.status_code == 200 and r.headers["HX-Redirect"] == f"/dossiers/{code}?done=assign"
    assert "Đã phân công bước" in leader.get(r.headers["HX-Redirect"]).text
    db.expire_all()
    assert db.get(Step, step).assignee_id == users["ts.tp.cv2"].id
    assert db.scalar(select(func.count()).select_from(OutboxMessage)
                     .where(OutboxMessage.recipient == users["ts.tp.cv2"].email)) == 1
    db.commit()
    # The step is now the chosen specialist's: the other sees no action on it, the chosen one completes it.
    assert f"/steps/{step}/complete" not in console("ts.tp.cv").get(f"/dossiers/{code}").text
    chosen = console("ts.tp.cv2")
    assert f"/steps/{step}/complete" in chosen.get(f"/dossiers/{code}").text
    r = post(chosen, f"/dossiers/{code}/steps/{step}/complete", {"decision": "dat", "expected_version": 2})
    assert r.status_code == 200 and state(db, code)[1:] == ("processing", ["phe_duyet"])


def test_a_stale_page_gets_the_conflict_message(db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    c = console("ts.tp.cv")
    step = ready_step(db, code, "tham_dinh")
    engine_do(db, cmd.claim, code=code, actor=users["ts.tp.cv"], step_id=step, now=api_clock.now)
    r = post(c, f"/dossiers/{code}/steps/{step}/complete", {"decision": "dat", "expected_version": 1})
    assert r.status_code == 409 and "hãy tải lại" in r.text
    assert 'name="expected_version" value="1"' in r.text        # the form stays stale until the page is reloaded
    assert state(db, code) == (2, "processing", ["tham_dinh"])


def test_extend_and_stop_by_the_leader(db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    leader = console("ts.tp.ld")
    r = post(leader, f"/dossiers/{code}/extend", {"reason": "Chờ xác minh chữ ký", "extra_working_days": "1",
                                                  "expected_version": 1})
    assert r.status_code == 200, r.text
    page = leader.get(f"/dossiers/{code}")
    assert 'data-testid="extension"' in page.text and "Chờ xác minh chữ ký" in page.text
    assert "25/04/2025 17:00" in page.text and "/forms/04.pdf" in page.text
    assert f"/dossiers/{code}/extend" not in page.text                 # once per dossier
    r = post(leader, f"/dossiers/{code}/stop", {"reason": "Công dân xin rút hồ sơ", "expected_version": 2})
    assert r.status_code == 200
    assert state(db, code)[1] == "stopped"


def test_transfer_to_another_department_leaves_the_giver_a_notice(db, users, api_clock, console):
    api_clock.now = vn(2025, 4, 24, 9, 30)
    code = receive(db, users, api_clock.now, procedure="XD.GPXD.01", components=("TP1", "TP2", "TP3"))
    c = console("ts.ktht.cv")
    step = ready_step(db, code, "tham_dinh")
    r = post(c, f"/dossiers/{code}/steps/{step}/transfer", {"to_unit": "TS-TP", "note": "Sai lĩnh vực",
                                                            "expected_version": 1})
    assert r.status_code == 200 and r.headers["HX-Redirect"] == f"/dossiers?moved={code}"
    assert "đã được chuyển sang đơn vị khác" in c.get(r.headers["HX-Redirect"]).text
    assert c.get(f"/dossiers/{code}").status_code == 404
    assert "Sai lĩnh vực" in console("ts.tp.cv").get(f"/dossiers/{code}").text


def test_the_diagram_route_gives_the_dossiers_procedure_version(db, users, api_clock, console):
    code = receive(db, users, api_clock.now)
    r = console("ts.tp.cv").get(f"/dossiers/{code}/diagram.bpmn")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert 'id="chung_thuc_chu_ky"' in r.text and "bpmndi:BPMNDiagram" in r.text


def test_documents_open_inline_or_download_for_those_who_see_the_dossier(db, users, api_clock, console):
    from engine import documents
    from tests.documents_support import make_pdf
    code = receive(db, users, api_clock.now)
    doc = documents.upload(db, code=code, actor=users["ts.motcua"], component="TP2", data=make_pdf(),
                           media_type="application/pdf", filename="giay-to.pdf", now=api_clock.now)
    db.commit()
    c = console("ts.tp.cv")
    page = c.get(f"/dossiers/{code}")
    assert f'href="/documents/{doc.id}"' in page.text and f'href="/documents/{doc.id}?download=1"' in page.text
    inline = c.get(f"/documents/{doc.id}")
    assert inline.status_code == 200 and inline.content.startswith(b"%PDF")
    assert inline.headers["content-disposition"].startswith("inline;")
    download = c.get(f"/documents/{doc.id}?download=1")
    assert download.headers["content-disposition"].startswith("attachment;")
    foreign = console("xts.cv")
    assert foreign.get(f"/documents/{doc.id}").status_code == 404
    assert foreign.get("/documents/999999").status_code == 404


def test_the_dossier_list_filters_and_continues(db, users, api_clock, console):
    first = receive(db, users, api_clock.now)
    api_clock.now += timedelta(minutes=5)
    second = receive(db, users, api_clock.now, applicant=dict(APPLICANT, full_name="Trần Thị Bình"))
    engine_do(db, cmd.complete_step, code=first, actor=users["ts.tp.cv"], decision="dat", now=api_clock.now)
    c = console("ts.tp.cv")
    page = c.get("/dossiers?limit=1")
    assert page.status_code == 200 and second in page.text and first not in page.text
    more = re.search(r'href="([^"]+)" class="button">Xem tiếp', page.text).group(1).replace("&amp;", "&")
    page = c.get(more)
    assert first in page.text and second not in page.text and "Xem tiếp" not in page.text
    assert second in c.get("/dossiers?status=processing&procedure=2.000884&unit=TS-TP").text
    assert c.get("/dossiers?status=returned").text.count('data-code="') == 0
    assert c.get("/dossiers?received_from=25/04/2025").text.count('data-code="') == 0
    assert c.get("/dossiers?received_from=24/04/2025&received_to=24/04/2025").text.count('data-code="') == 2
    assert c.get("/dossiers?due_before=23/04/2025").text.count('data-code="') == 0
    assert c.get("/dossiers?due_before=24/04/2025").text.count('data-code="') == 2     # due 17:00 that day
    assert c.get("/dossiers?late=no").text.count('data-code="') == 2
    bad = c.get("/dossiers?received_from=2025-04-24")
    assert bad.status_code == 422 and 'id="f-received_from-error"' in bad.text
    assert c.get("/dossiers?unit=KHONG-CO").status_code == 422
    assert c.get("/dossiers?cursor=rac").status_code == 422
    assert c.get("/dossiers?status=khong-co").status_code == 422


# --- in the browser ---------------------------------------------------------------------------------

def open_dossier(page, code: str) -> None:
    """The dossier page with its diagram drawn (dossier.js sets data-state once bpmn-js has imported it)."""
    page.goto(f"/dossiers/{code}")
    page.wait_for_selector("#diagram[data-state]")
    assert page.get_attribute("#diagram", "data-state") == "ready"


def markers(page) -> dict[str, list[str]]:
    """The diagram's elements by marker, as drawn in the SVG."""
    return page.evaluate("""() => Object.fromEntries(['done', 'current', 'waiting'].map(m => [m,
        [...document.querySelectorAll(`#diagram .djs-element.${m}`)].map(e => e.dataset.elementId).sort()]))""")


def unfold(page, action: str):
    """The action's section, unfolded when it is one of the rarer actions shown folded."""
    section = page.locator(f'section[data-action="{action}"]')
    if section.locator("details:not([open])").count():
        section.locator("summary").click()
    return section


def act(page, action: str, confirm: bool = True) -> None:
    """Submit an action's form, accepting its confirmation, and wait for the page it leads to."""
    if confirm:
        page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.locator(f'section[data-action="{action}"] button[type=submit]').click()
    page.wait_for_selector("#diagram[data-state]")


@pytest.mark.browser
def test_a_dossier_through_three_logins_with_the_diagram_marked(db, users, api_clock, new_page, shot):
    code = receive(db, users, api_clock.now)
    specialist = new_page("ts.tp.cv")
    specialist.goto("/inbox")
    specialist.get_by_role("link", name=code).click()
    specialist.wait_for_selector("#diagram[data-state]")
    assert specialist.get_by_test_id("citizen-id").inner_text() == "••••••••4321"
    assert markers(specialist) == {"done": ["tiep_nhan"], "current": ["tham_dinh"],
                                   "waiting": ["cho_bo_sung", "phe_duyet", "tra_kq", "tra_tu_choi"]}
    assert specialist.evaluate("window.diagramWarnings") == []
    assert unlabelled_controls(specialist) == []
    shot(specialist, "specialist")
    complete = specialist.locator('section[data-action="complete"]')
    complete.get_by_label("Đạt yêu cầu").check()
    complete.get_by_label("Ghi chú, ý kiến xử lý").fill("Chữ ký đúng mẫu")
    act(specialist, "complete")
    assert specialist.get_by_test_id("done").inner_text().startswith("Đã hoàn thành bước")
    assert markers(specialist) == {"done": ["tham_dinh", "tiep_nhan"], "current": ["phe_duyet"],
                                   "waiting": ["cho_bo_sung", "tra_kq", "tra_tu_choi"]}
    assert specialist.get_by_test_id("no-actions").is_visible()
    shot(specialist, "specialist-done")

    leader = new_page("ts.tp.ld")
    open_dossier(leader, code)
    assert unlabelled_controls(leader) == []
    shot(leader, "leader")
    leader.locator('section[data-action="complete"]').get_by_label("Đồng ý").check()
    act(leader, "complete")
    assert leader.get_by_test_id("status").inner_text() == "Chờ trả kết quả"

    counter = new_page("ts.motcua")
    open_dossier(counter, code)
    assert markers(counter)["current"] == ["tra_kq"]
    act(counter, "return")
    assert counter.get_by_test_id("status").inner_text() == "Đã trả kết quả"
    assert markers(counter) == {"done": ["phe_duyet", "tham_dinh", "tiep_nhan", "tra_kq"], "current": [],
                                "waiting": []}
    rows = counter.locator("table.control-sheet tbody tr")
    assert rows.count() == 4 and "Trả kết quả" in rows.nth(3).inner_text()
    assert counter.locator("table.events tbody tr").count() == 4
    shot(counter, "returned")
    assert state(db, code)[1] == "returned"
    counter.get_by_role("link", name="Hồ sơ", exact=True).click()
    counter.get_by_label("Trạng thái").select_option("returned")
    counter.get_by_role("button", name="Lọc").click()
    assert counter.locator("table.dossiers tbody tr").get_attribute("data-code") == code
    assert unlabelled_controls(counter) == []
    shot(counter, "dossier-list")


@pytest.mark.browser
def test_a_supplement_round_pauses_and_resumes_the_clock(db, users, api_clock, new_page, shot):
    code = receive(db, users, api_clock.now)
    api_clock.now = vn(2025, 4, 24, 9, 30)
    specialist = new_page("ts.tp.cv")
    open_dossier(specialist, code)
    form = unfold(specialist, "request_supplement")
    form.get_by_label(re.compile("TP2 — ")).check()
    form.get_by_label("Lý do và hướng dẫn bổ sung").fill("Văn bản cần ký chưa có trang cuối")
    act(specialist, "request_supplement")
    assert specialist.get_by_test_id("status").inner_text() == "Chờ bổ sung"
    assert specialist.locator('table.pauses tr[data-open="yes"]').count() == 1
    assert markers(specialist)["current"] == ["cho_bo_sung"]
    assert specialist.locator('a[data-form="02"]').count() == 1              # the supplement request, form 02
    shot(specialist, "supplement-requested")

    api_clock.now = vn(2025, 4, 24, 10, 30)                                  # the citizen comes back an hour later
    counter = new_page("ts.motcua")
    open_dossier(counter, code)
    assert "Văn bản cần ký chưa có trang cuối" in counter.locator("table.pauses").inner_text()
    form = counter.locator('section[data-action="record_supplement"]')
    form.get_by_label(re.compile("TP2 — ")).check()
    assert unlabelled_controls(counter) == []
    act(counter, "record_supplement", confirm=False)
    assert counter.get_by_test_id("status").inner_text() == "Đang giải quyết"
    assert counter.locator('table.pauses tr[data-open="no"]').count() == 1
    # The clock resumed with the 5 h 30 min left at 09:30: 11:30 and 13:30–17:00 today, 1 h tomorrow.
    assert counter.get_by_test_id("due").inner_text() == "25/04/2025 08:00"
    assert counter.get_by_test_id("original-due").inner_text() == "24/04/2025 17:00"
    assert markers(counter)["current"] == ["tham_dinh"]
    shot(counter, "supplement-recorded")


@pytest.mark.browser
def test_a_stale_page_shows_the_conflict_next_to_the_form(db, users, api_clock, new_page, shot):
    code = receive(db, users, api_clock.now)
    page = new_page("ts.tp.cv")
    open_dossier(page, code)
    engine_do(db, cmd.extend, code=code, actor=users["ts.tp.ld"], reason="Chờ xác minh", extra_working_days=1,
              now=api_clock.now)                                             # someone else changed it meanwhile
    form = page.locator('section[data-action="complete"]')
    form.get_by_label("Đạt yêu cầu").check()
    page.once("dialog", lambda dialog: dialog.accept())
    form.get_by_role("button", name="Hoàn thành bước").click()
    alert = page.locator('section[data-action="complete"] [role=alert]')
    assert "hãy tải lại" in alert.inner_text()
    shot(page, "conflict")
    assert state(db, code) == (2, "processing", ["tham_dinh"])
    page.reload()
    page.wait_for_selector("#diagram[data-state]")
    page.locator('section[data-action="complete"]').get_by_label("Đạt yêu cầu").check()
    act(page, "complete")
    assert state(db, code)[2] == ["phe_duyet"]


@pytest.mark.browser
def test_dismissing_the_confirmation_sends_nothing(db, users, api_clock, new_page):
    code = receive(db, users, api_clock.now)
    page = new_page("ts.tp.cv")
    open_dossier(page, code)
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    questions = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()
    page.once("dialog", dismiss)
    form = unfold(page, "refuse")
    form.get_by_label(re.compile("Lý do từ chối")).fill("Giấy tờ giả mạo")
    form.get_by_role("button", name="Đề xuất từ chối").click()
    assert questions and "từ chối" in questions[0]
    # Then the same form, confirmed: only this one is sent.
    act(page, "refuse")
    assert len(posts) == 1 and posts[0].endswith("/refuse")
    assert state(db, code)[2] == ["phe_duyet"]


@pytest.mark.browser
def test_a_user_of_another_commune_gets_the_404_page(db, users, api_clock, new_page, shot):
    code = receive(db, users, api_clock.now)
    for username in ("pp.cv", "xts.cv"):
        page = new_page(username)
        response = page.goto(f"/dossiers/{code}")
        assert response.status == 404
        assert page.get_by_role("heading", level=1).inner_text() == "Không tìm thấy"
        assert "Nguyễn Văn An" not in page.content() and page.locator("#diagram").count() == 0
        shot(page, f"foreign-{username}")


@pytest.mark.browser
def test_every_catalog_diagram_imports_into_bpmn_js_without_warnings(live_server, new_page):
    from engine.catalog import read_definition
    from engine.config import REPO_ROOT
    page = new_page()
    page.goto("/login")
    page.add_script_tag(url="/static/vendor/bpmn-navigated-viewer.js")

    def imported(xml: str) -> dict:
        return page.evaluate("""async (xml) => {
            const container = document.createElement('div');
            container.style.width = '1000px'; container.style.height = '600px';
            document.body.appendChild(container);
            const viewer = new BpmnJS({ container });
            try {
                const { warnings } = await viewer.importXML(xml);
                const shapes = viewer.get('elementRegistry').filter(e => e.type === 'bpmn:UserTask').length;
                return { warnings: warnings.map(w => w.message), userTasks: shapes };
            } catch (error) {
                return { warnings: [String(error)], userTasks: 0 };
            } finally { viewer.destroy(); container.remove(); }
        }""", xml)
    diagrams = {path.name: read_definition(path)[0]["diagram"] for path in sorted((REPO_ROOT / "bpmn").glob("*.yaml"))}
    assert len(diagrams) == 5
    for name, xml in diagrams.items():
        result = imported(xml)
        assert result["warnings"] == [], (name, result["warnings"])
        assert result["userTasks"] >= 5, name
    # The check can fail: a shape drawn for an element that does not exist is a warning.
    broken = diagrams["2.000884.yaml"].replace('bpmnElement="tham_dinh"', 'bpmnElement="khong_co"')
    assert imported(broken)["warnings"] != []
