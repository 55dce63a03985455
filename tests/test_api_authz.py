"""The authorization matrix: every route of the app × every role (and anonymous) × an object of the
caller's own unit and one of a foreign unit, with the expected status of each cell; and no response, in
any cell, carries data of a dossier the caller may not see (its code, applicant's name or citizen ID).

The callers are the Tây Sơn district's officials: the Phú Phong commune's counter, specialist and leader,
the district's supervisor and admin. Their foreign unit: for the commune's officials the neighbouring
commune Tây Vinh (TS-TV, same district); for the supervisor and the admin, whose scope is the whole
district, Xã Tây Sơn of the other organisation set (XTS, Gia Lai). Fixture dossiers are made through the
engine, per kind and unit, when a cell first needs them, and made again after a request changed them.

A route added to the app without an entry here fails `test_every_route_has_an_entry`."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import count
from typing import Callable

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from engine import documents
from engine import dossiers as cmd
from engine.config import REPO_ROOT
from engine.models import AccountabilityRecord
from engine.timers import scan
from tests.conftest import vn
from tests.documents_support import make_pdf

pytest_plugins = ["tests.api_support", "tests.admin_support"]

ROLES = ("counter", "specialist", "leader", "supervisor", "admin")
CALLERS = {"counter": "pp.motcua", "specialist": "pp.cv", "leader": "pp.ld", "supervisor": "ts.nv.gs",
           "admin": "ts.admin", "anonymous": None}
OVERSEERS = ("supervisor", "admin")
PDF = make_pdf(text="Giay to thu nghiem")


@dataclass(frozen=True)
class Side:
    """The officials and the applicant of one unit's fixture dossiers, and what admin cells target there."""
    counter: str
    specialist: str
    leader: str
    unit: str                   # the commune: its dossiers, records, admin scope
    department: str             # a unit to create a user in
    user: str                   # a user for the admin cells (never one of the callers)
    full_name: str
    citizen_id: str

    @property
    def applicant(self) -> dict:
        return {"full_name": self.full_name, "citizen_id": self.citizen_id, "phone": "0905123456"}


SIDES = {
    "own": Side("pp.motcua", "pp.cv", "pp.ld", "TS-PP", "TS-PP", "ts.tp.cv2", "Nguyễn Văn Phúphong", "052088004321"),
    "tv": Side("tv.motcua", "tv.cv", "tv.ld", "TS-TV", "TS-TV", "tv.cv", "Trần Thị Tâyvinh", "052199007001"),
    "xts": Side("xts.motcua", "xts.cv", "xts.ld", "XTS", "XTS-VHXH", "xts.kt.cv", "Lê Văn Gialai", "064199007002"),
}


def foreign_side(role: str) -> str:
    return "xts" if role in OVERSEERS else "tv"


def foreign_sides(role: str) -> tuple[str, ...]:
    return ("xts",) if role in OVERSEERS else ("tv", "xts")


# --- fixture dossiers -------------------------------------------------------------------------------

@dataclass
class Made:
    code: str
    step: int | None            # its ready step
    document: int               # the component uploaded at intake
    record: int | None = None   # the accountability record of its late step


class World:
    """Fixture dossiers by (kind, side), made on first use through the engine and committed."""

    def __init__(self, db, users, anonymous, password: str):
        self.db, self.users, self.anonymous, self.password = db, users, anonymous, password
        self.made: dict[tuple[str, str], Made] = {}
        self.used: set[tuple[str, str]] = set()        # what the request being built names
        self.codes: dict[str, set[str]] = {side: set() for side in SIDES}

    def get(self, kind: str, side: str) -> Made:
        self.used.add((kind, side))
        if (kind, side) not in self.made:
            self.db.commit()    # SQLite: a read begun before the requests' writes could not become a write
            self.made[(kind, side)] = KINDS[kind](self, SIDES[side])
            self.codes[side].add(self.made[(kind, side)].code)
        return self.made[(kind, side)]

    def populate(self) -> None:
        """Dossiers and records of every side exist, so that lists have foreign data they could leak."""
        for side in SIDES:
            self.get("main", side)
            self.get("late", side)
        self.used.clear()

    def changed(self) -> None:
        """The request succeeded and may have changed the dossiers it named: the next cells get new ones."""
        for key in self.used:
            self.made.pop(key, None)

    def markers(self, side: str) -> set[str]:
        """What must never reach a caller who may not see this side's dossiers."""
        return self.codes[side] | {SIDES[side].full_name, SIDES[side].citizen_id}

    def run(self, fn, **kw):
        result = fn(self.db, **kw)
        self.db.commit()
        self.db.expunge_all()
        return result

    def receive(self, side: Side, at) -> Made:
        code = self.run(cmd.receive, actor=self.users[side.counter], procedure_code="2.000815",
                        applicant=side.applicant, components=["TP1"], now=at).dossier.code
        doc = self.run(documents.upload, code=code, actor=self.users[side.counter], component="TP1", data=PDF,
                       media_type="application/pdf", now=at)
        return Made(code, None, doc.id)

    def ready_step(self, made: Made) -> Made:
        made.step = next(s.id for s in cmd.get_dossier(self.db, made.code).steps if s.state == "ready")
        self.db.commit()
        return made


def at_appraisal(w: World, side: Side) -> Made:
    """Received at 08:00, waiting for the specialist's appraisal (tham_dinh), unclaimed."""
    return w.ready_step(w.receive(side, vn(2025, 4, 24, 8, 0)))


def waiting_supplement(w: World, side: Side) -> Made:
    made = w.receive(side, vn(2025, 4, 24, 8, 0))
    w.run(cmd.request_supplement, code=made.code, actor=w.users[side.specialist], missing=["Bản chính"],
          note="Bản chính mờ", now=vn(2025, 4, 24, 8, 10))
    return w.ready_step(made)


def result_ready(w: World, side: Side) -> Made:
    made = w.receive(side, vn(2025, 4, 24, 8, 0))
    w.run(cmd.complete_step, code=made.code, actor=w.users[side.specialist], decision="dat", now=vn(2025, 4, 24, 8, 10))
    w.run(cmd.complete_step, code=made.code, actor=w.users[side.leader], decision="dong_y", now=vn(2025, 4, 24, 8, 20))
    return w.ready_step(made)


def late_step(w: World, side: Side) -> Made:
    """The day before: claimed by the specialist, overdue at 15:00, so it has an accountability record."""
    made = w.receive(side, vn(2025, 4, 23, 9, 0))
    w.run(cmd.claim, code=made.code, actor=w.users[side.specialist], now=vn(2025, 4, 23, 9, 5))
    w.run(scan, now=vn(2025, 4, 23, 15, 0))
    dossier_id = cmd.get_dossier(w.db, made.code).id
    made.record = w.db.scalar(select(AccountabilityRecord.id).where(AccountabilityRecord.dossier_id == dossier_id))
    w.db.commit()
    assert made.record is not None
    return made


KINDS: dict[str, Callable[[World, Side], Made]] = {
    "main": at_appraisal, "waiting": waiting_supplement, "ready": result_ready, "late": late_step}


# --- the matrix -------------------------------------------------------------------------------------

def expect(default: int, *, anonymous: int = 401, **by_role: int) -> dict[str, int]:
    """The expected status of every caller: `default` unless named."""
    return {**{role: default for role in ROLES}, "anonymous": anonymous, **by_role}


PUBLIC = expect(200, anonymous=200)
SIGNED_IN = expect(200)
Request = Callable[[World, str, str], dict]      # (world, side, role) → keyword arguments of client.request


@dataclass
class Entry:
    request: Request
    own: dict[str, int]
    # None: the route reads or writes nothing of a unit (or only the caller's own); the foreign cell
    # sends the same request again.
    foreign: dict[str, int] | None = None


def get(url: str, **params) -> Request:
    return lambda w, side, role: {"method": "GET", "url": url, "params": params}


def on(kind: str, method: str, path: str, **body) -> Request:
    """A request about the side's dossier of this kind; `path` is formatted with its code, step, document
    and record."""
    def build(w: World, side: str, role: str) -> dict:
        m = w.get(kind, side)
        url = path.format(code=m.code, step=m.step, document=m.document, record=m.record)
        return {"method": method, "url": url, **({"json": body} if method != "GET" else {})}
    return build


def with_side(method: str, build: Callable[[World, str, str], tuple[str, dict]], kind: str = "json") -> Request:
    def request(w: World, side: str, role: str) -> dict:
        url, payload = build(w, side, role)
        return {"method": method, "url": url, kind: payload}
    return request


_serial = count(1)


def _login(w: World, username: str) -> dict:
    r = w.anonymous.post("/api/auth/token", data={"username": username, "password": w.password})
    assert r.status_code == 200, r.text
    return r.json()


def _day_off() -> str:
    """A different far-future Wednesday at each call: a weekday off the operator may declare."""
    return (date(2031, 1, 1) + timedelta(weeks=next(_serial))).isoformat()


def _caller(side: str, role: str) -> str:
    return (CALLERS[role] or "pp.motcua") if side == "own" else SIDES[side].counter


YAML = (REPO_ROOT / "bpmn" / "2.000815.yaml").read_text(encoding="utf-8")
PERIOD = {"from": "2025-04-01", "to": "2025-04-30"}
UPLOAD = {"files": {"file": ("to-khai.pdf", PDF, "application/pdf")}, "data": {"component": "TP2"}}

MATRIX: dict[tuple[str, str], Entry] = {
    # documentation, health, metrics: public
    ("GET", "/openapi.json"): Entry(get("/openapi.json"), PUBLIC),
    ("GET", "/docs"): Entry(get("/docs"), PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Entry(get("/docs/oauth2-redirect"), PUBLIC),
    ("GET", "/redoc"): Entry(get("/redoc"), PUBLIC),
    ("GET", "/healthz"): Entry(get("/healthz"), PUBLIC),
    ("GET", "/readyz"): Entry(get("/readyz"), PUBLIC),
    ("GET", "/metrics"): Entry(get("/metrics"), PUBLIC),
    ("GET", "/static/vendor/{name:path}"): Entry(get("/static/vendor/htmx.min.js"), PUBLIC),

    # sign-in: public; the foreign cell signs in as the other unit's counter, or spends a forged token
    ("POST", "/api/auth/token"): Entry(
        lambda w, side, role: {"method": "POST", "url": "/api/auth/token",
                               "data": {"username": _caller(side, role), "password": w.password}}, PUBLIC, PUBLIC),
    ("POST", "/api/auth/refresh"): Entry(
        lambda w, side, role: {"method": "POST", "url": "/api/auth/refresh", "json": {
            "refresh_token": _login(w, _caller(side, role))["refresh_token"] if side == "own" else "forged"}},
        PUBLIC, expect(401, anonymous=401)),
    ("GET", "/api/auth/me"): Entry(get("/api/auth/me"), SIGNED_IN),

    # the catalog: read by everyone signed in, loaded by admins
    ("GET", "/api/procedures"): Entry(get("/api/procedures"), SIGNED_IN),
    ("GET", "/api/procedures/{code}"): Entry(get("/api/procedures/2.000815"), SIGNED_IN),
    ("GET", "/api/procedures/{code}/versions/{number}"): Entry(get("/api/procedures/2.000815/versions/1"), SIGNED_IN),
    ("POST", "/api/procedures"): Entry(
        lambda w, side, role: {"method": "POST", "url": "/api/procedures", "content": YAML.encode(),
                               "headers": {"Content-Type": "text/plain"}}, expect(403, admin=201)),

    # dossiers. Intake happens at the caller's own unit: there is no foreign object to name (see the
    # report on `handling_unit`, which the engine accepts from any unit).
    ("POST", "/api/dossiers"): Entry(
        lambda w, side, role: {"method": "POST", "url": "/api/dossiers", "json": {
            "procedure_code": "2.000815", "applicant": SIDES["own"].applicant, "components": ["TP1"]}},
        expect(403, counter=201)),
    ("GET", "/api/dossiers"): Entry(
        lambda w, side, role: {"method": "GET", "url": "/api/dossiers",
                               "params": {"unit": SIDES[side].unit} if side != "own" else {}},
        SIGNED_IN, SIGNED_IN),
    ("GET", "/api/dossiers/{code}"): Entry(on("main", "GET", "/api/dossiers/{code}"), SIGNED_IN, expect(404)),
    ("GET", "/api/dossiers/{code}/forms/{form}"): Entry(
        on("main", "GET", "/api/dossiers/{code}/forms/01"), SIGNED_IN, expect(404)),
    ("POST", "/api/dossiers/{code}/steps/{step_id}/claim"): Entry(
        on("main", "POST", "/api/dossiers/{code}/steps/{step}/claim"), expect(403, specialist=200), expect(404)),
    ("POST", "/api/dossiers/{code}/steps/{step_id}/assign"): Entry(
        with_side("POST", lambda w, side, role: (f"/api/dossiers/{w.get('main', side).code}/steps/"
                                                 f"{w.get('main', side).step}/assign",
                                                 {"username": SIDES[side].specialist})),
        # Only a leader of the step's unit assigns it (the counter, for counter steps).
        expect(403, leader=200), expect(404)),
    ("POST", "/api/dossiers/{code}/steps/{step_id}/complete"): Entry(
        on("main", "POST", "/api/dossiers/{code}/steps/{step}/complete", decision="dat"),
        expect(403, specialist=200), expect(404)),
    ("POST", "/api/dossiers/{code}/steps/{step_id}/request-supplement"): Entry(
        on("main", "POST", "/api/dossiers/{code}/steps/{step}/request-supplement", missing=["Bản chính"],
           note="Bản chính mờ"), expect(403, specialist=200), expect(404)),
    ("POST", "/api/dossiers/{code}/steps/{step_id}/refuse"): Entry(
        on("main", "POST", "/api/dossiers/{code}/steps/{step}/refuse", reason="Không đủ điều kiện"),
        expect(403, specialist=200), expect(404)),
    ("POST", "/api/dossiers/{code}/steps/{step_id}/transfer"): Entry(
        on("main", "POST", "/api/dossiers/{code}/steps/{step}/transfer", to_unit="TS-TP"),
        expect(403, specialist=200), expect(404)),
    ("POST", "/api/dossiers/{code}/supplement"): Entry(
        on("waiting", "POST", "/api/dossiers/{code}/supplement", note="Đã nộp"), expect(403, counter=200), expect(404)),
    ("POST", "/api/dossiers/{code}/extend"): Entry(
        on("main", "POST", "/api/dossiers/{code}/extend", reason="Chờ xác minh", extra_working_days=1),
        expect(403, leader=200), expect(404)),
    ("POST", "/api/dossiers/{code}/stop"): Entry(
        on("main", "POST", "/api/dossiers/{code}/stop", reason="Công dân rút hồ sơ"),
        expect(403, counter=200, leader=200), expect(404)),
    ("POST", "/api/dossiers/{code}/return"): Entry(
        on("ready", "POST", "/api/dossiers/{code}/return"), expect(403, counter=200), expect(404)),
    ("GET", "/api/inbox"): Entry(get("/api/inbox"), SIGNED_IN),
    ("GET", "/api/lookup"): Entry(
        lambda w, side, role: {"method": "GET", "url": "/api/lookup", "params": {
            "code": w.get("main", side).code, "id_last4": SIDES[side].citizen_id[-4:] if side == "own" else "0000"}},
        PUBLIC, expect(404, anonymous=404)),

    # documents
    ("POST", "/api/dossiers/{code}/documents"): Entry(
        lambda w, side, role: {"method": "POST", "url": f"/api/dossiers/{w.get('main', side).code}/documents",
                               **UPLOAD}, expect(403, counter=201), expect(403, counter=404)),
    ("POST", "/api/dossiers/{code}/documents/attach"): Entry(
        with_side("POST", lambda w, side, role: (f"/api/dossiers/{w.get('main', side).code}/documents/attach",
                                                 {"document_id": w.get("ready", side).document, "component": "TP2"})),
        expect(403, counter=201), expect(403, counter=404)),
    ("GET", "/api/dossiers/{code}/documents"): Entry(
        on("main", "GET", "/api/dossiers/{code}/documents"), SIGNED_IN, expect(404)),
    ("GET", "/api/citizens/{citizen_id}/documents"): Entry(
        lambda w, side, role: {"method": "GET", "url": f"/api/citizens/{SIDES[side].citizen_id}/documents"},
        expect(200, supervisor=403, admin=403), expect(404, supervisor=403, admin=403)),
    ("GET", "/api/documents/{document_id}/download"): Entry(
        on("main", "GET", "/api/documents/{document}/download"), SIGNED_IN, expect(404)),
    ("POST", "/api/dossiers/{code}/result"): Entry(
        on("ready", "POST", "/api/dossiers/{code}/result"),
        expect(403, counter=201, specialist=201, leader=201), expect(404, supervisor=403, admin=403)),

    # accountability
    ("GET", "/api/audit/records"): Entry(
        lambda w, side, role: {"method": "GET", "url": "/api/audit/records",
                               "params": {"unit": SIDES[side].unit} if side != "own" else {}},
        SIGNED_IN, expect(404)),
    ("GET", "/api/audit/records/{record_id}"): Entry(
        on("late", "GET", "/api/audit/records/{record}"), SIGNED_IN, expect(404)),
    ("POST", "/api/audit/records/{record_id}/cause"): Entry(
        on("late", "POST", "/api/audit/records/{record}/cause", cause="Chờ xác minh bản chính"),
        expect(403, specialist=201, leader=201), expect(404)),
    ("POST", "/api/audit/records/{record_id}/review"): Entry(
        on("late", "POST", "/api/audit/records/{record}/review", outcome="reminded", note="Nhắc nhở"),
        expect(403, supervisor=201), expect(403, supervisor=404)),
    ("GET", "/api/audit/late"): Entry(
        lambda w, side, role: {"method": "GET", "url": "/api/audit/late",
                               "params": {"unit": SIDES[side].unit, **PERIOD}},
        expect(403, supervisor=200, admin=200), expect(403, supervisor=404, admin=404)),
    ("GET", "/api/audit/officials"): Entry(
        lambda w, side, role: {"method": "GET", "url": "/api/audit/officials",
                               "params": {"unit": SIDES[side].unit, "year": 2025}},
        expect(403, supervisor=200, admin=200), expect(403, supervisor=404, admin=404)),

    # administration: the admin's agency (Tây Sơn) against the other set's commune
    ("GET", "/api/admin/units"): Entry(get("/api/admin/units"), expect(403, admin=200)),
    ("GET", "/api/admin/units/{code}"): Entry(
        lambda w, side, role: {"method": "GET", "url": f"/api/admin/units/{SIDES[side].unit}"},
        expect(403, admin=200), expect(403, admin=404)),
    ("POST", "/api/admin/units"): Entry(
        lambda w, side, role: {"method": "POST", "url": "/api/admin/units", "json": {
            "code": f"{SIDES[side].unit}-MOI{next(_serial)}", "name": "Tổ một cửa lưu động", "level": "department",
            "parent": SIDES[side].unit}},
        expect(403, admin=201), expect(403, admin=404)),
    ("PATCH", "/api/admin/units/{code}"): Entry(
        lambda w, side, role: {"method": "PATCH", "url": f"/api/admin/units/{SIDES[side].unit}",
                               "json": {"one_stop": True}},
        expect(403, admin=200), expect(403, admin=404)),
    ("GET", "/api/admin/users"): Entry(
        lambda w, side, role: {"method": "GET", "url": "/api/admin/users",
                               "params": {"unit": SIDES[side].unit} if side != "own" else {}},
        expect(403, admin=200), expect(403, admin=404)),
    ("POST", "/api/admin/users"): Entry(
        lambda w, side, role: {"method": "POST", "url": "/api/admin/users", "json": {
            "username": f"moi.{side}.{next(_serial)}", "full_name": "Cán bộ mới", "role": "specialist",
            "unit": SIDES[side].department, "password": "mat-khau-moi-123"}},
        expect(403, admin=201), expect(403, admin=404)),
    ("PATCH", "/api/admin/users/{username}"): Entry(
        lambda w, side, role: {"method": "PATCH", "url": f"/api/admin/users/{SIDES[side].user}",
                               "json": {"email": "moi@example.gov.vn"}},
        expect(403, admin=200), expect(403, admin=404)),
    ("POST", "/api/admin/users/{username}/disable"): Entry(
        lambda w, side, role: {"method": "POST", "url": f"/api/admin/users/{SIDES[side].user}/disable"},
        expect(403, admin=200), expect(403, admin=404)),
    ("POST", "/api/admin/users/{username}/enable"): Entry(
        lambda w, side, role: {"method": "POST", "url": f"/api/admin/users/{SIDES[side].user}/enable"},
        expect(403, admin=200), expect(403, admin=404)),
    ("POST", "/api/admin/users/{username}/password"): Entry(
        lambda w, side, role: {"method": "POST", "url": f"/api/admin/users/{SIDES[side].user}/password",
                               "json": {"password": "mat-khau-moi-123"}},
        expect(403, admin=200), expect(403, admin=404)),
    # The calendar is national: no unit to be foreign to.
    ("GET", "/api/admin/calendar"): Entry(get("/api/admin/calendar", year=2025), expect(403, admin=200)),
    ("POST", "/api/admin/calendar"): Entry(
        lambda w, side, role: {"method": "POST", "url": "/api/admin/calendar", "json": {
            "date": _day_off(), "working": False, "note": "Thông báo thử nghiệm"}},
        expect(403, admin=201)),
}


def app_routes(app) -> set[tuple[str, str]]:
    """The JSON API, the docs and the health routes; the console's pages have their own matrix
    (tests/test_console_authz.py)."""
    from api.web.console import is_console_path
    return {(method, r.path) for r in iter_route_contexts(app.routes) for method in (r.methods or ())
            if method != "HEAD" and not is_console_path(r.path)}


def test_every_route_has_an_entry(app):
    routes = app_routes(app)
    assert sorted(routes - MATRIX.keys()) == [], "routes without an entry in the authorization matrix"
    assert sorted(MATRIX.keys() - routes) == [], "entries for routes the app no longer has"
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert documented <= routes


@dataclass
class Cell:
    role: str
    scope: str
    status: int
    expected: int
    leaked: list[str] = field(default_factory=list)


def _body_text(r) -> str:
    """The body as text, JSON re-serialised without escapes so names are found whatever the encoding."""
    if "json" in r.headers.get("content-type", ""):
        try:
            return json.dumps(r.json(), ensure_ascii=False, default=str)
        except ValueError:
            pass
    return r.content.decode("utf-8", "replace")


def _sent(request: dict) -> str:
    """What the caller sent: data they supplied themselves is not a leak when it is echoed back."""
    return json.dumps({k: v for k, v in request.items() if k not in ("files", "content")}, ensure_ascii=False,
                      default=str)


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    """Access tokens by username, signed in once for the module: a sign-in costs an argon2 check (a
    quarter of a second), and the injected clock stands still, so a token stays valid for every test."""
    return {}


def signed_in(client, tokens: dict[str, str], password: str, username: str | None):
    c = client()
    if username:
        if username not in tokens:
            r = c.post("/api/auth/token", data={"username": username, "password": password})
            assert r.status_code == 200, r.text
            tokens[username] = r.json()["access_token"]
        c.headers["Authorization"] = f"Bearer {tokens[username]}"
    return c


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda route: f"{route[0]} {route[1]}")
def test_matrix(route, org_guard, dev_keys, db, users, client, passwords, tokens):
    entry = MATRIX[route]
    callers = {role: signed_in(client, tokens, passwords, username) for role, username in CALLERS.items()}
    world = World(db, users, client(), passwords)
    cells = []
    for role in (*ROLES, "anonymous"):
        for scope in ("own", "foreign"):
            expected = (entry.own if scope == "own" or entry.foreign is None else entry.foreign)[role]
            side = "own" if scope == "own" or entry.foreign is None else foreign_side(role)
            world.populate()
            request = entry.request(world, side, role)
            r = callers[role].request(**request)
            if r.status_code >= 500:
                pytest.fail(f"{role}/{scope}: {r.status_code} {r.text}")
            text, sent = _body_text(r), _sent(request)
            leaked = [m for s in foreign_sides(role) for m in world.markers(s) if m in text and m not in sent]
            cells.append(Cell(role, scope, r.status_code, expected, leaked))
            if r.status_code < 300 and request["method"] != "GET":
                world.changed()
    wrong = [c for c in cells if c.status != c.expected or c.leaked]
    assert not wrong, "\n".join(f"{c.role:10} {c.scope:7} got {c.status} expected {c.expected}"
                                + (f" LEAKED {c.leaked}" if c.leaked else "") for c in wrong)
