"""OAuth2 password flow: short-lived access tokens, rotating refresh tokens, throttled logins."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import CurrentUser, Now, Session, commit
from api.schemas import RefreshIn
from engine import auth
from engine.errors import MotcuaError

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/token")
def token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], db: Session, now: Now) -> dict:
    client = request.client.host if request.client else "unknown"
    try:
        tokens = auth.login(db, username=form.username, password=form.password, client=client, now=now)
    except MotcuaError:
        commit(db)               # the failed attempt counts towards the throttle
        raise
    commit(db)
    return tokens.__dict__


@router.post("/refresh")
def refresh(body: RefreshIn, db: Session, now: Now) -> dict:
    tokens = auth.refresh(db, token=body.refresh_token, now=now)
    commit(db)
    return tokens.__dict__


@router.get("/me")
def me(user: CurrentUser, db: Session) -> dict:
    from engine import org
    unit = org.unit(db, user.unit_id)
    return {"username": user.username, "full_name": user.full_name, "role": user.role,
            "unit": {"code": unit.code, "name": unit.name}}
