"""Dossiers: intake, lists, the full record, and every step action. Each action first checks that the
caller may see the dossier (a foreign unit's dossier is a 404, as if it did not exist), then runs the
engine command; the command checks the rest (the step is ready, it is theirs, the decision is allowed)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from api.deps import CurrentUser, Now, Session, commit, require
from api.schemas import (AssignIn, CompleteIn, ExtendIn, NoteIn, ReasonIn, ReceiveIn, SupplementIn,
                         SupplementRequestIn, TransferIn)
from engine import dossiers as cmd
from engine.models import DOSSIER_STATUSES, User
from engine.org import user_by_username
from engine.queries import check_visible, dossier_detail, dossier_state, list_dossiers

router = APIRouter(prefix="/api/dossiers", tags=["dossiers"])
Counter = Annotated[User, Depends(require("counter"))]
StepId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _act(db, user: User, code: str, command: Callable[..., Any], **kwargs) -> dict[str, Any]:
    """Visibility first, then the command in this request's transaction, then commit."""
    check_visible(db, user, code)
    result = command(db, code=code, actor=user, **kwargs)
    commit(db)
    answer = dossier_state(db, code)
    if isinstance(result, dict):            # form data (02 supplement, 03 refusal, 04 apology, 05 stop)
        answer["form"] = result
    return answer


@router.post("", status_code=201)
def receive(body: ReceiveIn, user: Counter, db: Session, now: Now) -> dict:
    """Intake. Incomplete → 422 with the form 02 data; outside competence → 422 with form 03 data."""
    received = cmd.receive(db, actor=user, procedure_code=body.procedure_code,
                           applicant=body.applicant.model_dump(exclude_none=True), components=body.components,
                           channel=body.channel, handling_unit=body.handling_unit, now=now)
    commit(db)
    return {**dossier_state(db, received.dossier.code), "receipt": received.receipt}


@router.get("")
def dossiers(user: CurrentUser, db: Session, now: Now,
             unit: str | None = Query(None, max_length=64), procedure: str | None = Query(None, max_length=32),
             status: str | None = Query(None, pattern="^(" + "|".join(DOSSIER_STATUSES) + ")$"),
             due_before: datetime | None = None, late: bool | None = None,
             received_from: date | None = Query(None, ge=date(2000, 1, 1), le=date(2100, 12, 31)),
             received_to: date | None = Query(None, ge=date(2000, 1, 1), le=date(2100, 12, 31)),
             cursor: str | None = Query(None, max_length=200), limit: int = Query(50, ge=1, le=200)) -> dict:
    page = list_dossiers(db, user, now=now, unit=unit, procedure=procedure, status=status, due_before=due_before,
                         late=late, received_from=received_from, received_to=received_to, cursor=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/{code}")
def dossier(code: str, user: CurrentUser, db: Session, now: Now) -> dict:
    """Status, steps and their deadlines, pauses, control sheet, documents, events, and what you may do."""
    return dossier_detail(db, user, code, now=now)


@router.get("/{code}/forms/{form}", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def form(code: str, form: str, user: CurrentUser, db: Session, now: Now) -> Response:
    """An official form of the dossier as PDF (01 receipt, 02, 03, 04, 05/06 control sheet…)."""
    from engine.documents import render_form
    check_visible(db, user, code)
    pdf = render_form(db, code=code, form=form, now=now)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{code}-mau-{form}.pdf"'})


@router.post("/{code}/steps/{step_id}/claim")
def claim(code: str, step_id: StepId, body: NoteIn, user: CurrentUser, db: Session, now: Now) -> dict:
    return _act(db, user, code, cmd.claim, step_id=step_id, now=now, expected_version=body.expected_version)


@router.post("/{code}/steps/{step_id}/assign")
def assign(code: str, step_id: StepId, body: AssignIn, user: CurrentUser, db: Session, now: Now) -> dict:
    check_visible(db, user, code)         # before the username: a foreign dossier reveals nothing
    assignee = user_by_username(db, body.username)
    return _act(db, user, code, cmd.assign, assignee=assignee, step_id=step_id, now=now,
                expected_version=body.expected_version)


@router.post("/{code}/steps/{step_id}/complete")
def complete(code: str, step_id: StepId, body: CompleteIn, user: CurrentUser, db: Session, now: Now) -> dict:
    return _act(db, user, code, cmd.complete_step, decision=body.decision, note=body.note, step_id=step_id,
                now=now, expected_version=body.expected_version)


@router.post("/{code}/steps/{step_id}/request-supplement")
def request_supplement(code: str, step_id: StepId, body: SupplementRequestIn, user: CurrentUser, db: Session,
                       now: Now) -> dict:
    return _act(db, user, code, cmd.request_supplement, missing=body.missing, note=body.note, step_id=step_id,
                now=now, expected_version=body.expected_version)


@router.post("/{code}/steps/{step_id}/refuse")
def refuse(code: str, step_id: StepId, body: ReasonIn, user: CurrentUser, db: Session, now: Now) -> dict:
    return _act(db, user, code, cmd.refuse, reason=body.reason, step_id=step_id, now=now,
                expected_version=body.expected_version)


@router.post("/{code}/steps/{step_id}/transfer")
def transfer(code: str, step_id: StepId, body: TransferIn, user: CurrentUser, db: Session, now: Now) -> dict:
    return _act(db, user, code, cmd.transfer, to_unit=body.to_unit, note=body.note, step_id=step_id, now=now,
                expected_version=body.expected_version)


@router.post("/{code}/supplement")
def record_supplement(code: str, body: SupplementIn, user: CurrentUser, db: Session, now: Now) -> dict:
    return _act(db, user, code, cmd.record_supplement, components=body.components, note=body.note, now=now,
                expected_version=body.expected_version)


@router.post("/{code}/extend")
def extend(code: str, body: ExtendIn, user: CurrentUser, db: Session, now: Now) -> dict:
    return _act(db, user, code, cmd.extend, reason=body.reason, new_due=body.new_due,
                extra_working_days=body.extra_working_days, now=now, expected_version=body.expected_version)


@router.post("/{code}/stop")
def stop(code: str, body: ReasonIn, user: CurrentUser, db: Session, now: Now) -> dict:
    return _act(db, user, code, cmd.stop, reason=body.reason, now=now, expected_version=body.expected_version)


@router.post("/{code}/return")
def return_result(code: str, body: NoteIn, user: CurrentUser, db: Session, now: Now) -> dict:
    return _act(db, user, code, cmd.return_result, note=body.note, now=now, expected_version=body.expected_version)
