"""The procedure catalog: read by everyone signed in; admins load a new or changed procedure file."""
from __future__ import annotations

from typing import Annotated

import yaml
from fastapi import APIRouter, Body, Depends, Path
from sqlalchemy import select

from api.deps import CurrentUser, Now, Session, commit, require
from engine.catalog import store_definition
from engine.errors import InvalidDiagram, NotFound
from engine.models import ProcedureVersion, User

router = APIRouter(prefix="/api/procedures", tags=["procedures"])


def _summary(v: ProcedureVersion) -> dict:
    d = v.definition
    return {"code": v.code, "version": v.version, "name": v.name, "field": v.field, "levels": d.get("levels"),
            "time_limit": d.get("time_limit"), "cutoff": d.get("cutoff"), "fee": d.get("fee"),
            "effective_from": v.effective_from, "effective_to": v.effective_to, "sha256": v.sha256}


@router.get("")
def list_procedures(user: CurrentUser, db: Session) -> list[dict]:
    """The newest version of every procedure."""
    latest: dict[str, ProcedureVersion] = {}
    for v in db.scalars(select(ProcedureVersion).order_by(ProcedureVersion.code, ProcedureVersion.version)):
        latest[v.code] = v
    return [_summary(v) for v in latest.values()]


@router.get("/{code}")
def versions(code: str, user: CurrentUser, db: Session) -> dict:
    rows = db.scalars(select(ProcedureVersion).where(ProcedureVersion.code == code)
                      .order_by(ProcedureVersion.version)).all()
    if not rows:
        raise NotFound(f"Không có thủ tục mã {code}", code="unknown_procedure")
    return {"code": code, "name": rows[-1].name, "components": rows[-1].definition.get("components"),
            "versions": [_summary(v) for v in rows]}


@router.get("/{code}/versions/{number}")
def version(code: str, number: Annotated[int, Path(ge=1, le=2**31 - 1)], user: CurrentUser, db: Session) -> dict:
    v = db.scalar(select(ProcedureVersion).where(ProcedureVersion.code == code, ProcedureVersion.version == number))
    if v is None:
        raise NotFound(f"Không có phiên bản {number} của thủ tục {code}", code="unknown_version")
    return {**_summary(v), "definition": v.definition, "diagram": v.bpmn_xml}


@router.post("", status_code=201)
def upload(admin: Annotated[User, Depends(require("admin"))], db: Session, now: Now,
           source: Annotated[str, Body(media_type="text/plain", description="the procedure file (YAML)")]) -> dict:
    """Validate and store a procedure file; identical content is not stored twice."""
    try:
        definition = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise InvalidDiagram(f"Tệp thủ tục không phải YAML hợp lệ: {exc}") from exc
    if not isinstance(definition, dict):
        raise InvalidDiagram("Tệp thủ tục phải là một bảng YAML (code, name, … diagram)")
    row, created = store_definition(db, definition, source, source=f"api:{admin.username}", now=now)
    commit(db)
    return {**_summary(row), "created": created}
