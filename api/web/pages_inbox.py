"""My inbox: the steps ready for me or my role in my unit, soonest due first, coloured by SLA state, with
the counts per state as filter links. The rows and counts are engine.queries.inbox's."""
from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import Now, Session
from api.web.console import Viewer, render, require_role
from engine.catalog import procedure_names
from engine.queries import inbox as inbox_query

router = APIRouter(include_in_schema=False)
SLA_STATES = ("overdue", "due_soon", "on_track")


@router.get("/inbox")
def inbox(request: Request, db: Session, now: Now,
          viewer: Viewer = require_role("counter", "specialist", "leader", "admin"),
          state: Literal["", "on_track", "due_soon", "overdue"] = "",
          procedure: str = Query("", max_length=32), q: str = Query("", max_length=100)) -> HTMLResponse:
    found = inbox_query(db, viewer.user, now=now, state=state or None, procedure=procedure or None,
                        search=q or None)
    filters = {"procedure": procedure, "q": q}
    return render(request, "inbox.html", viewer, active="inbox", items=found["items"], counts=found["counts"],
                  total=sum(found["counts"].values()), state=state, filters=filters, states=SLA_STATES,
                  procedures=procedure_names(db).items(), state_link=lambda s: _link(filters, s))


def _link(filters: dict[str, str], state: str) -> str:
    """The inbox with the same procedure and text filters and another state."""
    query = urlencode({k: v for k, v in {**filters, "state": state}.items() if v})
    return "/inbox" + (f"?{query}" if query else "")
