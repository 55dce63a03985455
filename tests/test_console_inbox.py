"""The console's inbox: the steps ready for me or my role in my unit, soonest due first, coloured by SLA
state with the state in words, counts per state as filter links, and the procedure and text filters."""
from __future__ import annotations

import re
import pytest

from engine import dossiers as cmd
from tests.browser_support import login, unlabelled_controls
from tests.conftest import vn
from tests.test_console_dossier import APPLICANT, engine_do, ready_step, receive

pytest_plugins = ["tests.api_support", "tests.browser_support"]


@pytest.fixture
def three_states(db, users, api_clock):
    """Three dossiers waiting for a specialist of TS-TP on Friday 25/4/2025 09:05: one received on Thursday
    (its step was due Thursday 14:36: overdue), one received that morning (due the same day: due_soon),
    and a construction permit transferred to TS-TP from TS-KTHT (due days away: on_track)."""
    api_clock.now = vn(2025, 4, 24, 9, 0)
    late = receive(db, users, api_clock.now)
    permit = receive(db, users, api_clock.now, procedure="XD.GPXD.01", components=("TP1", "TP2", "TP3"),
                     applicant=dict(APPLICANT, full_name="Đỗ Thị Lựu", citizen_id="052190005678"))
    engine_do(db, cmd.transfer, code=permit, actor=users["ts.ktht.cv"], to_unit="TS-TP", now=api_clock.now)
    api_clock.now = vn(2025, 4, 25, 9, 0)
    soon = receive(db, users, api_clock.now, applicant=dict(APPLICANT, full_name="Trần Thị Bình"))
    api_clock.now = vn(2025, 4, 25, 9, 5)
    return {"overdue": late, "due_soon": soon, "on_track": permit}


def rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr class="sla-(\w+)" data-code="([^"]+)"', html)


def test_the_inbox_sorts_by_due_time_and_colours_each_row(three_states, console):
    page = console("ts.tp.cv").get("/inbox")
    assert page.status_code == 200
    assert rows(page.text) == [("overdue", three_states["overdue"]), ("due_soon", three_states["due_soon"]),
                               ("on_track", three_states["on_track"])]
    words_of = {"overdue": "Quá hạn", "due_soon": "Đến hạn trong 1 ngày làm việc", "on_track": "Trong hạn"}
    for sla, words in words_of.items():
        assert f'<span class="badge {sla}">{words}</span>' in page.text          # the state in words too
        assert f'data-testid="count-{sla}">1<' in page.text
    assert "24/04/2025 14:36" in page.text                                      # the overdue step's due time


def test_the_inbox_filters_by_state_procedure_and_text(three_states, console):
    c = console("ts.tp.cv")
    overdue = c.get("/inbox?state=overdue").text
    assert rows(overdue) == [("overdue", three_states["overdue"])]
    assert 'data-testid="count-on_track">1<' in overdue                         # counts stay the choices
    assert 'href="/inbox?state=due_soon"' in overdue
    permit = c.get("/inbox?procedure=XD.GPXD.01").text
    assert rows(permit) == [("on_track", three_states["on_track"])]
    assert 'data-testid="count-overdue">0<' in permit
    assert 'href="/inbox?procedure=XD.GPXD.01&amp;state=overdue"' in permit     # the links keep the filter
    assert rows(c.get("/inbox?q=tran thi binh").text) == [("due_soon", three_states["due_soon"])]
    assert rows(c.get("/inbox?q=" + three_states["overdue"][-6:]).text)[0][1] == three_states["overdue"]
    assert "khớp với bộ lọc" in c.get("/inbox?q=khong-ai").text
    assert c.get("/inbox?state=all").status_code == 422


def test_the_inbox_is_per_role_and_unit(three_states, console):
    assert rows(console("ts.tp.cv2").get("/inbox").text) != []           # the role's unclaimed steps
    assert rows(console("ts.tp.ld").get("/inbox").text) == []            # no leader step yet
    assert rows(console("pp.cv").get("/inbox").text) == []               # another commune
    assert console("ts.nv.gs").get("/inbox").status_code == 403          # supervisors have no inbox


def test_a_claimed_step_leaves_the_colleagues_inbox(db, users, three_states, api_clock, console):
    code = three_states["due_soon"]
    engine_do(db, cmd.claim, code=code, actor=users["ts.tp.cv"], step_id=ready_step(db, code, "tham_dinh"),
              now=api_clock.now)
    mine = console("ts.tp.cv").get("/inbox").text
    assert code in mine and "(đã nhận)" in mine
    assert code not in console("ts.tp.cv2").get("/inbox").text


@pytest.mark.browser
def test_the_specialist_sees_the_inbox_in_colour_and_filters_it(three_states, new_page, shot, api_clock):
    page = new_page("ts.tp.cv")
    page.goto("/inbox")
    colours = page.eval_on_selector_all(
        "tbody tr", "rows => rows.map(r => [r.dataset.sla, getComputedStyle(r).backgroundColor])")
    assert [sla for sla, _ in colours] == ["overdue", "due_soon", "on_track"]
    assert len({colour for _, colour in colours}) == 3                   # three different row colours
    assert page.get_by_test_id("count-overdue").inner_text() == "1"
    assert unlabelled_controls(page) == []
    shot(page, "inbox")
    page.get_by_role("link", name=re.compile("Quá hạn")).click()
    assert page.locator("tbody tr").count() == 1 and "state=overdue" in page.url
    page.get_by_label("Tình trạng hạn", exact=True).select_option("")
    page.get_by_label("Mã hồ sơ hoặc tên người nộp").fill("do thi luu")
    page.get_by_label("Mã hồ sơ hoặc tên người nộp").press("Enter")
    assert page.locator("tbody tr").count() == 1
    assert page.locator("tbody tr").get_attribute("data-code") == three_states["on_track"]
    shot(page, "inbox-filtered")
    page.get_by_role("link", name=three_states["on_track"]).click()
    assert page.url.endswith(f"/dossiers/{three_states['on_track']}")
    # That afternoon (signed in again: the session ends after 30 idle minutes) the due-soon one is overdue too.
    api_clock.now = vn(2025, 4, 25, 14, 40)
    login(page, "ts.tp.cv")
    page.goto("/inbox")
    assert page.get_by_test_id("count-overdue").inner_text() == "2"
