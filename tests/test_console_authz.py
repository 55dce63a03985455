"""The console's authorisation matrix: every console route has an entry; without a session every page
but the public ones leads to the login page; and an official of another agency, in every role, can
neither read nor change a Tây Sơn dossier through any route — the answer is a 403/404 page (or a page
without it), it never carries the dossier's code, applicant or ID, and nothing is written."""
from __future__ import annotations

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.web.console import is_console_path
from engine import documents
from engine import dossiers as cmd
from engine.models import Dossier, Event, Step
from tests.test_console_intake import make_pdf

pytest_plugins = ["tests.api_support", "tests.browser_support"]

APPLICANT = {"full_name": "Hà Thị Thanh Xuân", "citizen_id": "052187004455"}
# Gia Lai officials, one per role: another agency entirely.
FOREIGN = {"counter": "xts.motcua", "specialist": "xts.cv", "leader": "xts.ld", "supervisor": "xts.gs",
           "admin": "gl.admin"}
MISSING = "000.00.35.H08-250424-9999"
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/tra-cuu"), ("POST", "/tra-cuu/danh-gia")}


@pytest.fixture
def world(db, users, api_clock):
    """A Tây Sơn dossier with a scanned document and a ready appraisal step."""
    now = api_clock.now
    code = cmd.receive(db, actor=users["ts.motcua"], procedure_code="2.000884", applicant=dict(APPLICANT),
                       components=["TP1", "TP2"], now=now).dossier.code
    doc = documents.upload(db, code=code, actor=users["ts.motcua"], component="TP2",
                           data=make_pdf(1, "Giay to can chung thuc"), filename="giay-to.pdf", now=now)
    db.commit()
    step = db.scalar(select(Step.id).join(Dossier).where(Dossier.code == code, Step.state == "ready"))
    db.commit()
    return {"code": code, "doc": doc.id, "step": step}


def requests_for(w: dict) -> dict[tuple[str, str], tuple[str, str, dict]]:
    """(method, route) → (method, url, form data) aimed at the Tây Sơn dossier."""
    code, step = w["code"], w["step"]
    acts = {"assign": {"assignee": "ts.tp.cv"}, "claim": {}, "complete": {"decision": "dat"},
            "request-supplement": {"missing": "TP1"},
            "refuse": {"reason": "Không thuộc thẩm quyền"}, "transfer": {"to_unit": "XTS-VHXH"}}
    table = {
        ("GET", "/"): ("GET", "/", {}),
        ("POST", "/logout"): ("POST", "/logout", {}),
        ("GET", "/intake"): ("GET", "/intake", {}),
        ("GET", "/intake/procedures"): ("GET", "/intake/procedures?q=2.000884", {}),
        ("GET", "/intake/checklist"): ("GET", "/intake/checklist?procedure=2.000884", {}),
        ("GET", "/intake/citizen"): ("GET", f"/intake/citizen?citizen_id={APPLICANT['citizen_id']}"
                                            "&procedure=2.000884", {}),
        ("POST", "/intake"): ("POST", "/intake", {"procedure_code": "2.000884", "handling_unit": "TS-TP",
                                                  "full_name": "Kẻ Gian", "citizen_id": "052187009999"}),
        ("GET", "/intake/received/{code}"): ("GET", f"/intake/received/{code}", {}),
        ("POST", "/intake/forms/{form}.pdf"): ("POST", "/intake/forms/02.pdf", {"token": "gia-mao"}),
        ("GET", "/dossiers/{code}/forms/{form}.pdf"): ("GET", f"/dossiers/{code}/forms/01.pdf", {}),
        ("GET", "/inbox"): ("GET", "/inbox", {}),
        ("GET", "/dossiers"): ("GET", "/dossiers?unit=TS-VP", {}),
        ("GET", "/dossiers/{code}"): ("GET", f"/dossiers/{code}", {}),
        ("GET", "/dossiers/{code}/diagram.bpmn"): ("GET", f"/dossiers/{code}/diagram.bpmn", {}),
        ("GET", "/documents/{document_id}"): ("GET", f"/documents/{w['doc']}?download=1", {}),
        ("POST", "/dossiers/{code}/supplement"): ("POST", f"/dossiers/{code}/supplement", {"components": "TP1"}),
        ("POST", "/dossiers/{code}/extend"): ("POST", f"/dossiers/{code}/extend",
                                              {"reason": "Cần thêm thời gian", "extra_working_days": "2"}),
        ("POST", "/dossiers/{code}/stop"): ("POST", f"/dossiers/{code}/stop", {"reason": "Công dân rút"}),
        ("POST", "/dossiers/{code}/return"): ("POST", f"/dossiers/{code}/return", {}),
        ("GET", "/supervision"): ("GET", "/supervision?unit=TS&period=2025-Q2", {}),
        ("GET", "/supervision/report.xlsx"): ("GET", "/supervision/report.xlsx?unit=TS&period=2025-Q2", {}),
        ("GET", "/supervision/report.pdf"): ("GET", "/supervision/report.pdf?unit=TS&period=2025-Q2", {}),
        # Accountability records and their review: tests/test_console_supervision.py (foreign supervisors).
        ("POST", "/supervision/records/{record_id}/review"): ("POST", "/supervision/records/1/review",
                                                              {"outcome": "reminded"}),
    }
    for action, data in acts.items():
        route = f"/dossiers/{{code}}/steps/{{step_id}}/{action}"
        table[("POST", route)] = ("POST", f"/dossiers/{code}/steps/{step}/{action}", data)
    return table


def console_routes(app) -> set[tuple[str, str]]:
    return {(m, r.path) for r in iter_route_contexts(app.routes) for m in (r.methods or ())
            if m != "HEAD" and is_console_path(r.path)}


def test_every_console_route_has_an_entry(app, world):
    expected = set(requests_for(world)) | PUBLIC
    routes = console_routes(app)
    assert sorted(routes - expected) == [], "console routes without an entry in the matrix"
    assert sorted(expected - routes) == [], "entries for routes the console no longer has"


def test_without_a_session_only_the_public_pages_answer(app, world):
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as anonymous:
        for (method, route), (verb, url, data) in requests_for(world).items():
            r = anonymous.request(verb, url, data=data or None)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), (route, r.status_code)
            assert world["code"] not in r.text


def _written(db, code: str) -> tuple[int, int, str]:
    d = db.scalar(select(Dossier).where(Dossier.code == code))
    events = db.scalar(select(func.count()).select_from(Event).where(Event.dossier_id == d.id))
    result = (d.version, events, d.status)
    db.commit()
    return result


@pytest.mark.parametrize("role", sorted(FOREIGN))
def test_an_official_of_another_agency_sees_and_changes_nothing(db, world, console, role):
    client = console(FOREIGN[role])
    before = _written(db, world["code"])
    secrets = (APPLICANT["full_name"], APPLICANT["citizen_id"])
    for (method, route), (verb, url, data) in requests_for(world).items():
        if route == "/logout":
            continue
        r = client.request(verb, url, data={"csrf": client.csrf, **data} if verb == "POST" else None)
        assert r.status_code in (200, 303, 403, 404, 409, 422), (role, route, r.status_code)
        if "{code}" in route:
            # The same answer as for a dossier that does not exist (the page may repeat the code asked for).
            missing = client.request(verb, url.replace(world["code"], MISSING),
                                     data={"csrf": client.csrf, **data} if verb == "POST" else None)
            assert (r.status_code, r.text.replace(world["code"], MISSING)) == (missing.status_code, missing.text), \
                (role, route)
        else:
            assert world["code"] not in r.text, (role, route)
        if route in ("/dossiers/{code}", "/dossiers/{code}/diagram.bpmn", "/dossiers/{code}/forms/{form}.pdf",
                     "/documents/{document_id}", "/intake/received/{code}"):
            assert r.status_code in (403, 404), (role, route, r.status_code)
        if verb == "POST" and route != "/intake/forms/{form}.pdf":
            assert r.status_code >= 400, (role, route, r.status_code)        # refused, never done
        leaked = [s for s in secrets if s in r.text]
        assert leaked == [], (role, route, leaked)
    assert _written(db, world["code"]) == before
