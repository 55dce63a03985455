"""The citizen's lookup page (/tra-cuu): public, no account, made for a phone. The dossier code plus the
last 4 digits of the applicant's ID or the lookup code printed on the receipt, or the receipt's QR link
(which carries the full ID), shows status, appointment, dates and what is missing — nothing else. Once
the result is returned, the citizen may rate the service.

Every lookup and rating counts against the same per-client limit as the JSON API (`/api/lookup`), and a
wrong secret answers exactly as a missing dossier. The rating form is posted without a session, so there
is no CSRF token: it must prove the secret again, and the rate limit bounds guessing."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from api.deps import Now, Session, commit
from api.routers.lookup import LIMIT, WINDOW
from api.web.console import render
from engine import feedback
from engine.auth import TooManyAttempts, count_hit
from engine.errors import InvalidInput, MotcuaError
from engine.queries import citizen_lookup

router = APIRouter(include_in_schema=False)
MAX_CODE, MAX_SECRET = 64, 16


@dataclass
class Asked:
    """What the citizen typed (or the QR link carried)."""
    code: str = ""
    secret: str = ""

    @classmethod
    def of(cls, code: str | None, secret: str | None) -> Asked:
        return cls(re.sub(r"\s+", "", code or "")[:MAX_CODE], re.sub(r"\s+", "", secret or "")[:MAX_SECRET])

    def secret_kind(self) -> dict[str, str]:
        """The secret as citizen_lookup takes it: the full ID (12 digits, from the QR code), its last 4
        digits, or the receipt's lookup code."""
        if re.fullmatch(r"\d{12}", self.secret):
            return {"citizen_id": self.secret}
        if re.fullmatch(r"\d{4}", self.secret):
            return {"id_last4": self.secret}
        return {"lookup_code": self.secret}

    def proof(self) -> str:
        """What the rating form carries to prove the secret again: the full ID from a QR link is cut to
        its last 4 digits, so the page never holds the ID."""
        return self.secret[-4:] if re.fullmatch(r"\d{12}", self.secret) else self.secret


def _hit(request: Request, db, now) -> None:
    """One lookup for this client, counted as the API counts it (the same key, so the limit is shared)."""
    client = request.client.host if request.client else "unknown"
    blocked = count_hit(db, f"lookup:{client}", now, limit=LIMIT, window=WINDOW, block=WINDOW)
    commit(db)
    if blocked:
        raise TooManyAttempts("Tra cứu quá nhiều lần; hãy thử lại sau 1 phút", code="lookup_rate_limited")


def _find(request: Request, db, now, asked: Asked) -> dict[str, Any]:
    _hit(request, db, now)
    if not asked.code:
        raise InvalidInput("Nhập mã hồ sơ in trên phiếu hẹn", code="lookup_code_missing", data={"field": "code"})
    if not asked.secret:
        raise InvalidInput("Nhập 4 số cuối CCCD của người nộp hoặc mã tra cứu in trên phiếu hẹn",
                           code="lookup_secret_missing", data={"field": "secret"})
    return citizen_lookup(db, code=asked.code, **asked.secret_kind())


def _page(request: Request, asked: Asked, *, result: dict | None = None, error: MotcuaError | None = None,
          rating_error: MotcuaError | None = None, rated: bool = False) -> Response:
    """The page; an error of the lookup shows next to the field it concerns, one of the rating under it."""
    field = (error.data or {}).get("field") if error else None
    errors = {field or "_": error.message} if error else {}
    status = (error or rating_error).status if (error or rating_error) else 200
    return render(request, "lookup.html", status_code=status, asked=asked, result=result, errors=errors,
                  rating_error=rating_error.message if rating_error else None, rated=rated,
                  ratings=feedback.RATINGS_VI)


@router.get("/tra-cuu")
def lookup(request: Request, db: Session, now: Now,
           code: Annotated[str | None, Query(alias="MaHoSo")] = None,
           citizen_id: Annotated[str | None, Query(alias="SoDinhDanh")] = None,
           secret: Annotated[str | None, Query(alias="XacThuc")] = None) -> Response:
    """The form; with a dossier code (typed, or from the receipt's QR link), the result too."""
    asked = Asked.of(code, citizen_id or secret)
    if code is None:
        return _page(request, asked)
    try:
        return _page(request, asked, result=_find(request, db, now, asked))
    except MotcuaError as exc:
        return _page(request, asked, error=exc)


@router.post("/tra-cuu/danh-gia")
def rate(request: Request, db: Session, now: Now, code: Annotated[str, Form(max_length=200)] = "",
         secret: Annotated[str, Form(max_length=200)] = "", rating: Annotated[str, Form(max_length=32)] = "",
         comment: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """The satisfaction rating of a returned dossier, by whoever can look it up."""
    asked = Asked.of(code, secret)
    try:
        result = _find(request, db, now, asked)
    except MotcuaError as exc:
        return _page(request, asked, error=exc)
    try:
        if not rating:
            raise InvalidInput("Chọn một mức đánh giá", code="rating_missing")
        feedback.rate(db, code=result["code"], rating=rating, comment=comment or None, via="lookup", now=now)
        commit(db)
    except MotcuaError as exc:
        db.rollback()
        return _page(request, asked, result=result, rating_error=exc)
    return _page(request, asked, result=result, rated=True)
