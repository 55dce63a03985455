"""Citizen lookup without an account: dossier code plus the last 4 digits of the applicant's ID or the
lookup code printed on the receipt. Rate limited per client address."""
from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query, Request

from api.deps import Now, Session, commit
from engine.auth import TooManyAttempts, count_hit
from engine.errors import InvalidInput
from engine.queries import citizen_lookup

router = APIRouter(prefix="/api/lookup", tags=["citizen"])
LIMIT, WINDOW = 30, timedelta(minutes=1)


@router.get("")
def lookup(request: Request, db: Session, now: Now, code: str = Query(..., max_length=64),
           id_last4: str | None = Query(None, pattern=r"^\d{4}$"),
           lookup_code: str | None = Query(None, max_length=16)) -> dict:
    client = request.client.host if request.client else "unknown"
    blocked = count_hit(db, f"lookup:{client}", now, limit=LIMIT, window=WINDOW, block=WINDOW)
    commit(db)
    if blocked:
        raise TooManyAttempts("Tra cứu quá nhiều lần; hãy thử lại sau 1 phút", code="lookup_rate_limited")
    if not id_last4 and not lookup_code:
        raise InvalidInput("Nhập 4 số cuối CCCD của người nộp hoặc mã tra cứu in trên phiếu hẹn",
                           code="lookup_secret_missing")
    return citizen_lookup(db, code=code, id_last4=id_last4, lookup_code=lookup_code)
