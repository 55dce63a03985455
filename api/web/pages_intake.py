"""The counter's intake page, and the official forms of a dossier as PDF.

Intake: find the procedure (type-ahead), the applicant (the citizen ID checked as typed), the channel and
the handling unit, the component checklist (on paper, an uploaded or scanned file, or a still-valid
document reused from the citizen's data store) and the appointment the engine computes, shown before
saving. Saving is one transaction: `engine.dossiers.receive`, then every upload and reuse, then commit;
if anything is refused nothing is written and the page says why next to the field concerned. An
incomplete or inadmissible dossier is not received: the page lists what is missing (or why) and offers
form 02 or 03, rendered from the engine's error data."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile     # what request.form() gives (not FastAPI's subclass)

from api.deps import Now, Session, commit
from api.routers.documents import _filename, _media_type, _read
from api.web.console import CurrentViewer, Viewer, render, require_role
from engine import access, catalog, documents, org, sla
from engine import dossiers as cmd
from engine.auth import secret_key
from engine.config import settings
from engine.errors import Inadmissible, IncompleteDossier, InvalidInput, MotcuaError, NotFound
from engine.models import ProcedureVersion
from engine.queries import check_visible, find_dossier, fold

router = APIRouter(include_in_schema=False)
Counter = Annotated[Viewer, require_role("counter")]
Code = Annotated[str, Path(max_length=64, pattern=r"^[^\x00-\x1f\x7f/]+$")]

CHANNELS = {"counter": "Trực tiếp tại Bộ phận Một cửa", "post": "Qua dịch vụ bưu chính", "online": "Trực tuyến"}
APPLICANT_FIELDS = ("full_name", "citizen_id", "phone", "email", "address")
# Which field of the page an engine error concerns (the engine names the rule, the page the place).
ERROR_FIELDS = {"applicant_name_missing": "full_name", "citizen_id_invalid": "citizen_id", "phone_invalid": "phone",
                "channel_invalid": "channel", "handling_unit_foreign": "handling_unit", "unknown_unit": "handling_unit",
                "unknown_procedure": "procedure", "unknown_component": "procedure"}
SEARCH_LIMIT = 20
# Every component may carry a file; the transport refuses a body far beyond that before it is spooled.
INTAKE_BODY_LIMIT = 8 * settings().max_upload_bytes + 1024 * 1024
FORM_TOKEN_HOURS = 4


# --- procedures -------------------------------------------------------------------------------------

def _latest_procedures(db) -> list[ProcedureVersion]:
    """The newest version of every procedure (as the API lists them)."""
    latest: dict[str, ProcedureVersion] = {}
    for v in db.scalars(select(ProcedureVersion).order_by(ProcedureVersion.code, ProcedureVersion.version)):
        latest[v.code] = v
    return list(latest.values())


def search_procedures(db, query: str) -> list[ProcedureVersion]:
    words = fold(query).split()
    if not words:
        return []
    found = [v for v in _latest_procedures(db) if all(w in fold(f"{v.code} {v.name}") for w in words)]
    return found[:SEARCH_LIMIT]


@dataclass
class Checklist:
    """The chosen procedure as the page shows it: its components, the appointment if received now, the
    units that may handle it, and the citizen's reusable documents (None until a valid ID is typed)."""
    rules: catalog.ProcedureRules
    appointment: datetime
    handling_default: org.UnitInfo
    handling_choices: list[org.UnitInfo]
    store: list[dict[str, Any]] | None

    def reusable(self, component: str) -> tuple[list[dict], list[dict]]:
        """(documents filed as this component, the citizen's other documents)."""
        store = self.store or []
        return ([d for d in store if d.get("component") == component],
                [d for d in store if d.get("component") != component])


def checklist(db, viewer: Viewer, procedure_code: str, citizen_id: str, now: datetime) -> Checklist:
    version = catalog.version_for(db, procedure_code, now.astimezone(settings().tz).date())
    rules = cmd.rules_of(version)
    due, _ = sla.appointment(sla.calendar_of(viewer.unit), rules, now)    # what receive() will compute
    default = org.handling_unit_for(db, viewer.unit, version.field)
    return Checklist(rules, due, default, _handling_choices(db, viewer.unit, default),
                     citizen_store(db, viewer, citizen_id, now))


def _handling_choices(db, receiving: org.UnitInfo, default: org.UnitInfo) -> list[org.UnitInfo]:
    """The receiving agency and its departments with a field of competence: the units receive() accepts."""
    agency = org.agency_of(db, receiving)
    units = [u for u in [agency, *org.children(db, agency)] if org.agency_of(db, u).id == agency.id]
    return [u for u in units if u.fields or u.id in (default.id, agency.id)]


def citizen_id_problem(citizen_id: str) -> str | None:
    """The engine's own message for an ID it would refuse (checked with a placeholder name)."""
    try:
        cmd.check_applicant({"full_name": "-", "citizen_id": citizen_id})
    except InvalidInput as exc:
        return exc.message
    return None


def citizen_store(db, viewer: Viewer, citizen_id: str, now: datetime) -> list[dict[str, Any]] | None:
    """The citizen's still-valid documents this officer may reuse; None when the ID is not valid yet."""
    if not citizen_id or citizen_id_problem(citizen_id):
        return None
    try:
        return access.citizen_store(db, actor=viewer.user, citizen_id=citizen_id, now=now)
    except NotFound:                 # no dossier of this citizen that the officer can see: nothing to reuse
        return []


# --- what the officer entered -----------------------------------------------------------------------

@dataclass
class Entry:
    """The intake form as sent (and as shown again after an error: files cannot be, so they are named)."""
    procedure_code: str = ""
    procedure_name: str = ""
    applicant: dict[str, str] = field(default_factory=dict)
    channel: str = "counter"
    handling_unit: str = ""
    paper: set[str] = field(default_factory=set)
    uploads: dict[str, UploadFile] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    valid_until: dict[str, str] = field(default_factory=dict)
    reuse: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, form: FormData) -> Entry:
        def text(name: str, limit: int = 500) -> str:
            return str(form.get(name) or "").strip()[:limit]

        entry = cls(procedure_code=text("procedure_code", 32), procedure_name=text("q"),
                    applicant={k: text(k) for k in APPLICANT_FIELDS}, channel=text("channel") or "counter",
                    handling_unit=text("handling_unit", 64), paper={str(p) for p in form.getlist("paper")})
        # A component's own fields are named <what>_<component code>: file_TP1, kind_TP1, valid_TP1, reuse_TP1.
        per_component = {"kind": entry.kinds, "valid": entry.valid_until, "reuse": entry.reuse}
        for key, value in form.multi_items():
            what, _, component = key.partition("_")
            if what == "file" and component and isinstance(value, UploadFile) and value.filename:
                entry.uploads[component] = value
            elif what in per_component and component and isinstance(value, str) and value.strip():
                per_component[what][component] = value.strip()[:32]
        return entry

    def components(self, rules: catalog.ProcedureRules) -> list[str]:
        """The components presented: on paper, uploaded or reused."""
        given = self.paper | set(self.uploads) | set(self.reuse)
        return [c["code"] for c in rules.components if c["code"] in given]

    def problems(self, rules: catalog.ProcedureRules) -> dict[str, str]:
        """What the form itself gets wrong, before the engine is asked anything."""
        errors = {}
        for c in rules.components:
            key, code = f"component_{c['code']}", c["code"]
            if code in self.uploads and code in self.reuse:
                errors[key] = "Chọn một trong hai: tải tệp lên hoặc dùng lại giấy tờ trong kho dữ liệu"
            elif code in self.reuse and not (self.reuse[code].isdigit() and int(self.reuse[code]) < 2**31):
                errors[key] = "Giấy tờ chọn từ kho dữ liệu không hợp lệ; hãy chọn lại"
            elif code in self.valid_until and _date(self.valid_until[code]) is None:
                errors[key] = "Ngày hết hiệu lực không hợp lệ (dd/mm/yyyy)"
        return errors


def _date(text: str) -> date | None:
    """dd/mm/yyyy as typed (ISO too, as a date picker sends it)."""
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


async def read_form(request: Request) -> FormData:
    return await request.form()


IntakeForm = Annotated[FormData, Depends(read_form)]


class ComponentRefused(Exception):
    """An upload or reuse the engine refused, with the component it concerns."""

    def __init__(self, component: str, error: MotcuaError):
        self.component, self.error = component, error


def save(db, viewer: Viewer, entry: Entry, rules: catalog.ProcedureRules, now: datetime) -> str:
    """Receive, then file every upload and reuse, in this request's transaction; the caller commits."""
    received = cmd.receive(db, actor=viewer.user, procedure_code=entry.procedure_code, applicant=entry.applicant,
                           components=entry.components(rules), channel=entry.channel,
                           handling_unit=entry.handling_unit or None, now=now)
    code = received.dossier.code
    for component, upload in entry.uploads.items():
        _filed(component, lambda: documents.upload(
            db, code=code, actor=viewer.user, component=component, data=_read(upload),
            media_type=_media_type(upload), filename=_filename(upload),
            digitized=entry.kinds.get(component, "digitized") != "electronic",
            valid_until=_date(entry.valid_until[component]) if component in entry.valid_until else None, now=now))
    for component, document_id in entry.reuse.items():
        _filed(component, lambda: documents.attach(db, code=code, actor=viewer.user, component=component,
                                                   document_id=int(document_id), now=now))
    return code


def _filed(component: str, action) -> None:
    try:
        action()
    except MotcuaError as exc:
        raise ComponentRefused(component, exc) from exc


# --- form 02 / 03 before a dossier exists ----------------------------------------------------------
# No dossier row holds the content of a refused intake, so the page carries it, signed and bound to the
# officer, to the route that prints it.

def form_token(viewer: Viewer, data: dict[str, Any], now: datetime) -> str:
    return jwt.encode({"typ": "intake_form", "sub": str(viewer.user.id), "data": data,
                       "exp": int((now + timedelta(hours=FORM_TOKEN_HOURS)).timestamp())},
                      secret_key(), algorithm="HS256")


def form_data(viewer: Viewer, token: str, form: str, now: datetime) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, secret_key(), algorithms=["HS256"], options={"verify_exp": False})
    except jwt.PyJWTError:
        claims = {}
    if (claims.get("typ") != "intake_form" or claims.get("sub") != str(viewer.user.id)
            or claims.get("exp", 0) <= now.timestamp() or (claims.get("data") or {}).get("form") != form):
        raise InvalidInput("Biểu mẫu đã hết hạn hoặc không hợp lệ; hãy kiểm tra lại hồ sơ để lập mẫu mới",
                           code="intake_form_invalid")
    return claims["data"]


@dataclass
class Outcome:
    """An intake that was not received: form 02 (incomplete) or 03 (inadmissible) and why."""
    form: str
    message: str
    missing: list[dict[str, str]]
    token: str


def _outcome(viewer: Viewer, exc: IncompleteDossier | Inadmissible, now: datetime) -> Outcome:
    data = exc.data or {}
    return Outcome(str(data.get("form", "03")), exc.message, list(data.get("missing") or []),
                   form_token(viewer, data, now))


# --- pages ------------------------------------------------------------------------------------------

def _page(request: Request, viewer: Viewer, db, now: datetime, entry: Entry, *, errors: dict | None = None,
          outcome: Outcome | None = None, status_code: int = 200) -> Response:
    errors = dict(errors or {})
    found = None
    if entry.procedure_code:
        try:
            found = checklist(db, viewer, entry.procedure_code, entry.applicant.get("citizen_id", ""), now)
        except MotcuaError as exc:
            errors.setdefault("procedure", exc.message)
    if found and not entry.procedure_name:
        entry.procedure_name = found.rules.name
    return render(request, "intake.html", viewer, status_code=status_code, active="intake", entry=entry,
                  errors=errors, outcome=outcome, checklist=found, channels=CHANNELS,
                  files_lost=bool(entry.uploads) and (bool(errors) or outcome is not None))


@router.get("/intake")
def intake_page(request: Request, viewer: Counter, db: Session, now: Now,
                procedure: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    return _page(request, viewer, db, now, Entry(procedure_code=procedure or ""))


@router.get("/intake/procedures")
def procedure_options(request: Request, viewer: Counter, db: Session,
                      q: Annotated[str, Query(max_length=200)] = "") -> Response:
    """The type-ahead's options (an htmx fragment)."""
    return render(request, "_intake_procedures.html", viewer, procedures=search_procedures(db, q), query=q)


@router.get("/intake/checklist")
def checklist_fragment(request: Request, viewer: Counter, db: Session, now: Now,
                       procedure_code: Annotated[str, Query(max_length=32)] = "",
                       citizen_id: Annotated[str, Query(max_length=32)] = "") -> Response:
    """The chosen procedure: appointment, handling unit, component checklist (an htmx fragment)."""
    if not procedure_code:
        raise InvalidInput("Chọn thủ tục hành chính trước", code="procedure_missing")
    found = checklist(db, viewer, procedure_code, citizen_id.strip(), now)
    return render(request, "_intake_checklist.html", viewer, checklist=found, entry=Entry(), errors={})


@router.get("/intake/citizen")
def citizen_fragment(request: Request, viewer: Counter, db: Session, now: Now,
                     citizen_id: Annotated[str, Query(max_length=32)] = "",
                     procedure_code: Annotated[str, Query(max_length=32)] = "") -> Response:
    """The ID checked as typed and, once valid, the citizen's reusable documents in each component's slot."""
    citizen_id = citizen_id.strip()
    problem = citizen_id_problem(citizen_id) if citizen_id else None
    found = None
    if procedure_code:
        try:
            found = checklist(db, viewer, procedure_code, citizen_id, now)
        except MotcuaError:
            found = None                    # the checklist shows its own error
    return render(request, "_intake_citizen.html", viewer, problem=problem, citizen_id=citizen_id,
                  checklist=found, entry=Entry())


@router.post("/intake", max_body_size=INTAKE_BODY_LIMIT)
def receive(request: Request, viewer: Counter, form: IntakeForm, db: Session, now: Now) -> Response:
    entry = Entry.read(form)
    if not entry.procedure_code:
        return _page(request, viewer, db, now, entry, status_code=422,
                     errors={"procedure": "Chọn thủ tục hành chính (gõ tên hoặc mã rồi chọn trong danh sách)"})
    try:
        found = checklist(db, viewer, entry.procedure_code, "", now)
    except Inadmissible as exc:
        return _page(request, viewer, db, now, entry, status_code=422, outcome=_outcome(viewer, exc, now))
    except MotcuaError as exc:
        return _page(request, viewer, db, now, entry, status_code=exc.status, errors={"procedure": exc.message})
    problems = entry.problems(found.rules)
    if problems:
        return _page(request, viewer, db, now, entry, errors=problems, status_code=422)
    try:
        code = save(db, viewer, entry, found.rules, now)
        commit(db)
    except (IncompleteDossier, Inadmissible) as exc:
        db.rollback()
        errors = {f"component_{m['code']}": "Thành phần bắt buộc chưa nộp" for m in exc.data.get("missing") or []}
        return _page(request, viewer, db, now, entry, errors=errors, outcome=_outcome(viewer, exc, now),
                     status_code=exc.status)
    except ComponentRefused as refused:
        db.rollback()
        return _page(request, viewer, db, now, entry, status_code=refused.error.status,
                     errors={f"component_{refused.component}": refused.error.message})
    except MotcuaError as exc:
        db.rollback()
        return _page(request, viewer, db, now, entry, status_code=exc.status,
                     errors={ERROR_FIELDS.get(exc.code, "_"): exc.message})
    return RedirectResponse(f"/intake/received/{code}", status_code=303)


@router.get("/intake/received/{code}")
def received(request: Request, code: Code, viewer: Counter, db: Session) -> Response:
    """The dossier just received: its code, appointment and the receipt (form 01) ready to print."""
    dossier = find_dossier(db, viewer.user, code)
    rules = cmd.rules_of(dossier.procedure_version)
    return render(request, "intake_received.html", viewer, active="intake", dossier=dossier, procedure=rules)


@router.post("/intake/forms/{form}.pdf")
def intake_form_pdf(form: Annotated[str, Path(pattern=r"^0[23]$")], viewer: Counter, request_form: IntakeForm,
                    db: Session, now: Now) -> Response:
    """Form 02 (supplement request) or 03 (refusal) of an intake that was not received."""
    data = form_data(viewer, str(request_form.get("token") or ""), form, now)
    pdf = documents.render_intake_form(data=data, now=now, place=org.place(db, viewer.unit))
    return _pdf(pdf, f"mau-{form}.pdf")


# --- official forms of a dossier --------------------------------------------------------------------

@router.get("/dossiers/{code}/forms/{form}.pdf")
def dossier_form(code: Code, form: Annotated[str, Path(pattern=r"^\d{2}$")], viewer: CurrentViewer,
                 db: Session, now: Now) -> Response:
    """An official form of the dossier (01 receipt, 02, 03, 04, control sheet…) for an official who may
    see the dossier; for anyone else, the same 404 as for a dossier that does not exist."""
    check_visible(db, viewer.user, code)
    return _pdf(documents.render_form(db, code=code, form=form, now=now), f"{code}-mau-{form}.pdf")


def _pdf(data: bytes, filename: str) -> Response:
    # Forms carry personal data: shown inline for printing, never kept in a shared cache.
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "no-store"})

