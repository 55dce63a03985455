"""Documents: component files of a dossier (uploaded or reused from the citizen's data store), the data
store itself, downloads, and the signed electronic result.

Who may do what:
- upload and attach: counter officers (the engine then requires the dossier's receiving counter);
- list a dossier's documents, download one: any official who can see a dossier the document belongs to;
- list a citizen's data store: the officials who receive or handle dossiers (counter, specialist,
  leader), and only for a citizen one of whose dossiers they can see — supervisors and admins have
  no intake to reuse documents for;
- issue the result: counter, specialist and leader (the engine then requires the receiving counter or
  the handling unit).
A dossier or document the caller may not see answers 404, as if it did not exist."""
from __future__ import annotations

import re
from datetime import date
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import Field

from api.deps import CurrentUser, Now, Session, commit, require
from api.schemas import Versioned
from engine import access, documents
from engine.config import settings
from engine.models import Document, User
from engine.queries import check_visible, dossier_state

router = APIRouter(tags=["documents"])
Counter = Annotated[User, Depends(require("counter"))]
Handler = Annotated[User, Depends(require("counter", "specialist", "leader"))]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]        # beyond it the database refuses the number itself
# No control characters: no dossier code has them, and PostgreSQL refuses NUL in a query outright.
Code = Annotated[str, Path(max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Version = Annotated[int | None, Form(ge=1, description="the dossier version the client saw (409 if stale)")]
# The transport refuses a body far over the limit before it is spooled to disk; the engine applies the exact
# limit (read at start-up: MOTCUA_MAX_UPLOAD_BYTES) to the file itself.
UPLOAD_BODY_LIMIT = settings().max_upload_bytes + 1024 * 1024
PDF = {200: {"content": {"application/pdf": {}}, "description": "the document (local store)"},
       307: {"description": "redirect to a short-lived download link (S3 store)"}}


class AttachIn(Versioned):
    document_id: int = Field(..., ge=1, le=2**31 - 1, description="a still-valid document of the applicant's data store")
    component: str = Field(..., min_length=1, max_length=32)


def _read(file: UploadFile) -> bytes:
    # One byte over the limit is enough for the engine to refuse the file; the rest is never read.
    return file.file.read(settings().max_upload_bytes + 1)


def _filename(file: UploadFile) -> str | None:
    """The client's file name, kept as the document's name, without control characters."""
    return re.sub(r"[\x00-\x1f\x7f]", "", file.filename or "") or None


def _media_type(file: UploadFile) -> str | None:
    """The declared type, unless it declares nothing useful (then the engine looks at the bytes)."""
    declared = (file.content_type or "").split(";")[0].strip().lower()
    return None if declared in ("", "application/octet-stream") else declared


@router.post("/api/dossiers/{code}/documents", status_code=201, max_body_size=UPLOAD_BODY_LIMIT)
def upload(code: Code, user: Counter, db: Session, now: Now, file: UploadFile,
           component: Annotated[str, Form(min_length=1, max_length=32)],
           digitized: Annotated[bool, Form(description="scanned at the counter (false: born electronic)")] = True,
           valid_until: Annotated[date | None, Form()] = None, expected_version: Version = None) -> dict:
    """File a PDF, JPEG or PNG (converted to PDF) as one component of the dossier and into the applicant's
    data store. Size limit MOTCUA_MAX_UPLOAD_BYTES; a rejected file stores nothing (422)."""
    check_visible(db, user, code)
    doc = documents.upload(db, code=code, actor=user, component=component, data=_read(file),
                           media_type=_media_type(file), filename=_filename(file), digitized=digitized,
                           valid_until=valid_until, now=now, expected_version=expected_version)
    commit(db)
    return {"document": access.document_view(db.get(Document, doc.id), dossier=code),
            "dossier": dossier_state(db, code)}


@router.post("/api/dossiers/{code}/documents/attach", status_code=201)
def attach(code: Code, body: AttachIn, user: Counter, db: Session, now: Now) -> dict:
    """Reuse a document of the applicant's data store as a component, by reference (no new file)."""
    check_visible(db, user, code)
    link = documents.attach(db, code=code, actor=user, component=body.component, document_id=body.document_id,
                            now=now, expected_version=body.expected_version)
    commit(db)
    return {"document": access.document_view(db.get(Document, link.document_id), dossier=code),
            "component": link.component_code, "reused": True, "dossier": dossier_state(db, code)}


@router.get("/api/dossiers/{code}/documents")
def dossier_documents(code: Code, user: CurrentUser, db: Session) -> dict:
    return access.dossier_document_list(db, actor=user, code=code)


@router.get("/api/citizens/{citizen_id}/documents")
def citizen_documents(citizen_id: Annotated[str, Path(pattern=r"^\d{12}$")], user: Handler, db: Session,
                      now: Now) -> dict:
    """The citizen's still-valid documents (components and results), to reuse at intake. For counter
    officers, specialists and leaders who can see one of this citizen's dossiers (otherwise 404); a
    document from a dossier the caller cannot see is listed without its dossier and with a generic name."""
    return {"citizen_id": citizen_id,
            "items": access.citizen_store(db, actor=user, citizen_id=citizen_id, now=now)}


@router.get("/api/documents/{document_id}/download", response_class=Response, responses=PDF)
def download(document_id: RowId, user: CurrentUser, db: Session, now: Now) -> Response:
    """The file, checked against its hash (and its signature, for a result) before it is given out: the
    bytes (local store) or a 307 to a short-lived link (S3). For officials who can see a dossier the
    document belongs to (otherwise 404)."""
    access.visible_document(db, actor=user, document_id=document_id)
    served = documents.download_url(db, document_id=document_id, actor=user, now=now)
    if served.url:
        return RedirectResponse(served.url, status_code=307)
    return Response(served.data, media_type="application/pdf",
                    headers={"Content-Disposition": _attachment(_pdf_name(served.document.name)),
                             "Cache-Control": "no-store"})


@router.post("/api/dossiers/{code}/result", status_code=201, max_body_size=UPLOAD_BODY_LIMIT)
def issue_result(code: Code, user: Handler, db: Session, now: Now, file: UploadFile | None = None,
                 valid_until: Annotated[date | None, Form()] = None, expected_version: Version = None) -> dict:
    """Sign the result with the unit's key and file it to the applicant's data store as `<code>-KQ<n>`:
    the PDF sent, or one rendered from the dossier when none is sent. Only at the return step."""
    check_visible(db, user, code)
    doc = documents.issue_result(db, code=code, actor=user, data=_read(file) if file else None,
                                 valid_until=valid_until, now=now, expected_version=expected_version)
    commit(db)
    return {"document": access.document_view(db.get(Document, doc.id), dossier=code),
            "dossier": dossier_state(db, code)}


def _pdf_name(name: str) -> str:
    return name if name.lower().endswith(".pdf") else f"{name}.pdf"


def _attachment(filename: str) -> str:
    """Content-Disposition for any name: an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
