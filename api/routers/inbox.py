"""My inbox: the steps ready for me or my role in my unit, soonest due first."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from api.deps import CurrentUser, Now, Session
from engine.queries import inbox as inbox_query

router = APIRouter(prefix="/api/inbox", tags=["inbox"])


@router.get("")
def inbox(user: CurrentUser, db: Session, now: Now,
          state: Literal["on_track", "due_soon", "overdue"] | None = None) -> dict:
    return inbox_query(db, user, now=now, state=state)
