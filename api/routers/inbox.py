"""My inbox: the steps ready for me or my role in my unit, soonest due first."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from api.deps import CurrentUser, Now, Session
from engine.queries import inbox as inbox_query

router = APIRouter(prefix="/api/inbox", tags=["inbox"])


@router.get("")
def inbox(user: CurrentUser, db: Session, now: Now,
          state: Literal["on_track", "due_soon", "overdue"] | None = None,
          procedure: str | None = Query(None, max_length=32),
          search: str | None = Query(None, max_length=100, description="part of the code or applicant name")) -> dict:
    return inbox_query(db, user, now=now, state=state, procedure=procedure, search=search)
