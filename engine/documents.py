"""Documents of dossiers: intake of components (PDF or scanned images), the citizen's data store and its
reuse (Decree 45/2020), official forms as PDF, signed electronic results, and the store's upkeep.

The bytes live in an object store (storage.objects) under their sha256; rows here say what they are.
Each function that changes a dossier is one command on it (engine.dossiers.Command): it checks
everything first, writes the object, then the rows, the dossier's version-checked update and its
hash-chained event; the caller commits once. Nothing is stored for rejected input. When the object
store is down the intake fails with a 503 before any row is written; when the transaction rolls back
after the object was written, the object is an orphan that `gc` removes after a grace period."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from engine import org
from engine.config import settings
from engine.dossiers import Command, get_dossier, receipt_data, utcnow, version_info
from engine.errors import Conflict, Forbidden, InvalidInput, MotcuaError, NotFound
from engine.models import ControlSheetRow, Document, Dossier, DossierDocument, Event, Unit, User
from engine.records import Record, save
from storage import forms, objects, pdf, signing
from storage.objects import ObjectStore, StoreUnavailable

DOC, LINK = Document.__table__, DossierDocument.__table__
# Circular 03/2025/TT-VPCP replaces Circular 01/2018 for dossiers received from this (local) day on.
FORMS_2025_FROM = date(2025, 7, 1)
CHANNELS_VI = {"counter": "trực tiếp tại Bộ phận Một cửa", "post": "qua dịch vụ bưu chính",
               "online": "trực tuyến"}
STATUS_VI = {"processing": "Đang giải quyết", "waiting_supplement": "Chờ bổ sung", "result_ready": "Có kết quả",
             "returned": "Đã trả kết quả", "refused": "Từ chối", "stopped": "Dừng giải quyết"}


class StoreUnavailableError(MotcuaError):
    status = 503
    code = "object_store_unavailable"


class DocumentDamaged(MotcuaError):
    """A stored document no longer matches its hash or its signature: it is not served."""
    status = 500
    code = "document_corrupted"


def _unavailable(exc: Exception) -> StoreUnavailableError:
    return StoreUnavailableError("Kho lưu trữ tệp tạm thời không truy cập được nên thao tác chưa được thực hiện; "
                                 "hãy thử lại sau ít phút hoặc báo quản trị hệ thống", data={"detail": str(exc)})


# --- the object store -------------------------------------------------------------------------------

_stores: dict[tuple, ObjectStore] = {}


def object_store() -> ObjectStore:
    """The configured store, made once per process (for S3: the bucket is ensured then)."""
    s = settings()
    key = (s.s3_endpoint, s.s3_bucket, str(s.data_dir))
    if key not in _stores:
        try:
            _stores[key] = objects.store_from_settings(s)
        except StoreUnavailable as exc:
            raise _unavailable(exc) from exc
    return _stores[key]


def _put(store: ObjectStore, checked: pdf.Checked) -> None:
    try:
        store.put(checked.data, checked.sha256)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from exc


def _check(data: bytes, media_type: str | None) -> pdf.Checked:
    s = settings()
    try:
        return pdf.check_upload(data, max_bytes=s.max_upload_bytes, max_pages=s.max_pdf_pages, media_type=media_type)
    except pdf.Rejected as exc:
        raise InvalidInput(exc.message, code=exc.code) from exc


def check_and_store(store: ObjectStore, data: bytes, media_type: str | None) -> pdf.Checked:
    """Validate an upload and store the PDF it yields; a refused file leaves nothing under any key."""
    try:
        return store.put_checked(data, lambda raw: _check(raw, media_type))
    except StoreUnavailable as exc:
        raise _unavailable(exc) from exc


# --- intake and reuse -------------------------------------------------------------------------------

def upload(db: Session, *, code: str, actor: User, component: str, data: bytes, media_type: str | None = None,
           filename: str | None = None, digitized: bool = True, valid_until: date | None = None,
           store: ObjectStore | None = None, now: datetime | None = None,
           expected_version: int | None = None) -> Record:
    """File a PDF or an image (converted to PDF) as one component of the dossier, and into the
    applicant's data store. `digitized`: scanned at the counter; False for a born-electronic file.
    Returns the document row."""
    run = Command.load(db, code, now, expected_version)
    _check_counter(run, actor)
    _component(run, component)
    _check_valid_until(run, valid_until)
    checked = check_and_store(store or object_store(), data, media_type)
    d = run.dossier
    doc = Record(DOC, dict(
        sha256=checked.sha256, size=checked.size, pages=checked.pages, kind="component", component_code=component,
        name=(filename or f"{code}-{component}")[:255], owner_id=d.applicant["citizen_id"], source_dossier_id=d.id,
        digitized=digitized, original_type=checked.original_type, signed=False, valid_until=valid_until,
        created_at=run.now, created_by_id=actor.id), new=True)
    save(run.conn, doc)
    _link(run, doc, component, actor, reused=False)
    run.event("document_uploaded", actor, {"document_id": doc.id, "component": component, "sha256": doc.sha256,
                                           "pages": doc.pages, "digitized": digitized})
    run.save()
    return doc


def attach(db: Session, *, code: str, actor: User, component: str, document_id: int, now: datetime | None = None,
           expected_version: int | None = None) -> Record:
    """Reuse a still-valid document of the applicant's data store as a component of this dossier,
    by reference (no new upload). Returns the link row (reused=True)."""
    run = Command.load(db, code, now, expected_version)
    _check_counter(run, actor)
    _component(run, component)
    doc = db.get(Document, document_id)
    if doc is None:
        raise NotFound(f"Không có giấy tờ số {document_id} trong kho dữ liệu", code="document_not_found")
    if doc.owner_id != run.dossier.applicant["citizen_id"]:
        raise Forbidden("Giấy tờ này thuộc kho dữ liệu của người khác; chỉ được dùng lại giấy tờ của chính người "
                        "nộp hồ sơ", code="document_not_owned")
    today = _today(run.now)
    if doc.valid_until is not None and doc.valid_until < today:
        raise InvalidInput(f"Giấy tờ '{doc.name}' đã hết hiệu lực từ ngày {doc.valid_until:%d/%m/%Y}; hãy nộp bản "
                           "còn hiệu lực", code="document_expired")
    if db.scalar(select(DossierDocument.id).where(DossierDocument.dossier_id == run.dossier.id,
                                                  DossierDocument.document_id == doc.id)):
        raise Conflict(f"Giấy tờ '{doc.name}' đã có trong hồ sơ {code}", code="document_already_attached")
    link = _link(run, doc, component, actor, reused=True)
    run.event("document_reused", actor, {"document_id": doc.id, "component": component, "sha256": doc.sha256,
                                         "source_dossier_id": doc.source_dossier_id})
    run.save()
    return link


def _check_counter(run: Command, actor: User) -> None:
    if not actor.active or actor.role != "counter" or actor.unit_id != run.dossier.receiving_unit_id:
        raise Forbidden("Chỉ cán bộ Bộ phận Một cửa nơi tiếp nhận hồ sơ được số hóa hoặc đính kèm giấy tờ",
                        code="not_receiving_counter")


def _component(run: Command, component: str) -> dict[str, Any]:
    for c in run.rules.components:
        if c["code"] == component:
            return c
    known = [c["code"] for c in run.rules.components]
    raise InvalidInput(f"Thủ tục {run.rules.code} không có thành phần hồ sơ '{component}'; hãy chọn một trong: "
                       f"{', '.join(known)}", code="unknown_component", data={"known": known})


def _check_valid_until(run: Command, valid_until: date | None) -> None:
    if valid_until is not None and valid_until < _today(run.now):
        raise InvalidInput(f"Ngày hết hiệu lực {valid_until:%d/%m/%Y} đã qua; giấy tờ hết hiệu lực không được "
                           "số hóa vào kho dữ liệu", code="valid_until_past")


def _link(run: Command, doc: Record | Document, component: str, actor: User, *, reused: bool) -> Record:
    d = run.dossier
    link = Record(LINK, dict(dossier_id=d.id, document_id=doc.id, component_code=component, reused=reused,
                             attached_at=run.now, attached_by_id=actor.id), new=True)
    run.written.append(link)
    if component not in d.components:
        d.components = [*d.components, component]
    return link


def _today(now: datetime) -> date:
    return now.astimezone(settings().tz).date()


def _at(now: datetime | None) -> datetime:
    """The injected time (aware), or the wall clock."""
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise InvalidInput("Thời điểm phải có múi giờ (ví dụ 2025-04-24T09:00+07:00)", code="naive_datetime")
    return now


# --- reading ----------------------------------------------------------------------------------------

def citizen_documents(db: Session, *, citizen_id: str, now: datetime | None = None) -> list[Document]:
    """The citizen's data store: components and results still valid today, newest first."""
    today = _today(_at(now))
    return list(db.scalars(
        select(Document).where(Document.owner_id == citizen_id,
                               or_(Document.valid_until.is_(None), Document.valid_until >= today))
        .order_by(Document.created_at.desc(), Document.id.desc())))


def dossier_documents(db: Session, *, code: str) -> list[DossierDocument]:
    """The components filed to a dossier (each with its document), uploaded or reused."""
    return list(db.scalars(
        select(DossierDocument).join(Dossier, Dossier.id == DossierDocument.dossier_id)
        .where(Dossier.code == code).order_by(DossierDocument.id)))


def reused_components(db: Session, *, code: str) -> list[str]:
    """Component codes this dossier took from the data store (what the reuse indicator counts)."""
    return sorted({link.component_code for link in dossier_documents(db, code=code) if link.reused})


def dossier_results(db: Session, *, code: str) -> list[Document]:
    dossier = get_dossier(db, code)
    return list(db.scalars(select(Document).where(Document.source_dossier_id == dossier.id,
                                                  Document.kind == "result").order_by(Document.id)))


@dataclass
class Served:
    document: Document
    data: bytes
    verification: signing.Verification | None = None
    url: str | None = None


def open_document(db: Session, *, document_id: int, citizen_id: str | None = None, actor: User | None = None,
                  store: ObjectStore | None = None, now: datetime | None = None) -> Served:
    """The document's bytes for its owner (citizen_id) or an official (actor), after checking them
    against their hash and, for a signed result, its signature."""
    doc = db.get(Document, document_id)
    if doc is None:
        raise NotFound(f"Không có giấy tờ số {document_id}", code="document_not_found")
    if citizen_id is not None:
        if citizen_id != doc.owner_id:
            raise Forbidden("Chỉ xem được giấy tờ trong kho dữ liệu của chính mình", code="document_not_owned")
    elif actor is None or not actor.active:
        raise Forbidden("Cần đăng nhập để xem giấy tờ", code="not_authenticated")
    try:
        data = (store or object_store()).get(doc.sha256)
    except objects.ObjectNotFound as exc:
        raise DocumentDamaged(f"Tệp của giấy tờ '{doc.name}' không còn trong kho lưu trữ; báo quản trị hệ thống",
                              code="document_missing") from exc
    except StoreUnavailable as exc:
        raise _unavailable(exc) from exc
    if hashlib.sha256(data).hexdigest() != doc.sha256:
        raise DocumentDamaged(f"Tệp của giấy tờ '{doc.name}' đã bị thay đổi trong kho lưu trữ; không cung cấp "
                              "được bản này, báo quản trị hệ thống")
    verification = None
    if doc.signed:
        verification = signing.verify_pdf(data, trust_roots=trust_roots(), now=_at(now))
        if not verification.ok:
            raise DocumentDamaged(f"Chữ ký số trên '{doc.name}' không hợp lệ; không cung cấp được bản này, báo "
                                  "quản trị hệ thống", code="signature_invalid",
                                  data={"detail": verification.reason})
    return Served(doc, data, verification)


def download_url(db: Session, *, document_id: int, citizen_id: str | None = None, actor: User | None = None,
                 store: ObjectStore | None = None, now: datetime | None = None) -> Served:
    """As open_document, plus a short-lived download link when the store gives one (S3); with the
    local store `url` is None and the caller sends `data` itself."""
    store = store or object_store()
    served = open_document(db, document_id=document_id, citizen_id=citizen_id, actor=actor, store=store, now=now)
    try:
        served.url = store.download_url(served.document.sha256, filename=f"{served.document.name}.pdf",
                                        expires=timedelta(seconds=settings().presign_seconds), now=now)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from exc
    return served


# --- electronic results -----------------------------------------------------------------------------

def issue_result(db: Session, *, code: str, actor: User, data: bytes | None = None, valid_until: date | None = None,
                 store: ObjectStore | None = None, signer=None, now: datetime | None = None,
                 expected_version: int | None = None) -> Record:
    """Sign the dossier's result (the PDF given, or one rendered from the dossier) with the unit's key,
    store it as `<dossier code>-KQ<n>` and file it to the applicant's data store. Only when the
    dossier waits at its return step with a granted result."""
    run = Command.load(db, code, now, expected_version)
    d = run.dossier
    if not any(run.rules.step(s.bpmn_id).get("kind") == "return" for s in run.open_steps()):
        raise Conflict(f"Hồ sơ {code} chưa được phê duyệt để trả kết quả; chỉ phát hành kết quả điện tử ở bước "
                       "trả kết quả", code="result_not_ready")
    handling_agency = org.agency_of(db, run.unit(d.handling_unit_id))
    allowed = (actor.role == "counter" and actor.unit_id == d.receiving_unit_id) or \
        (actor.role in ("specialist", "leader") and actor.unit_id in (d.handling_unit_id, handling_agency.id))
    if not (actor.active and allowed):
        raise Forbidden("Chỉ cán bộ một cửa nơi tiếp nhận hoặc cán bộ đơn vị giải quyết được phát hành kết quả",
                        code="cannot_issue_result")
    _check_valid_until(run, valid_until)
    count = db.scalar(select(func.count(Document.id)).where(Document.source_dossier_id == d.id,
                                                            Document.kind == "result"))
    name = f"{code}-KQ{count + 1}"
    if data is None:
        data = _render(lambda: forms.render_result(_result_data(run, actor, name, handling_agency.name)))
    unsigned = _check(data, "application/pdf")
    signed = _sign(unsigned.data, signer or unit_signer(), now=run.now, reason=f"Kết quả giải quyết hồ sơ {code}",
                   location=handling_agency.name, name=name)
    checked = pdf.Checked(signed, hashlib.sha256(signed).hexdigest(), len(signed), unsigned.pages, "pdf")
    _put(store or object_store(), checked)
    doc = Record(DOC, dict(
        sha256=checked.sha256, size=checked.size, pages=checked.pages, kind="result", component_code=None, name=name,
        owner_id=d.applicant["citizen_id"], source_dossier_id=d.id, digitized=False, original_type="pdf",
        signed=True, valid_until=valid_until, created_at=run.now, created_by_id=actor.id), new=True)
    save(run.conn, doc)
    run.event("result_issued", actor, {"document_id": doc.id, "name": name, "sha256": doc.sha256})
    run.save()
    return doc


def _result_data(run: Command, actor: User, name: str, agency: str) -> dict[str, Any]:
    d = run.dossier
    return {"code": d.code, "name": name, "procedure": {"code": run.rules.code, "name": run.rules.name},
            "result": (run.rules.result or {}).get("name") or "Kết quả giải quyết thủ tục hành chính",
            "applicant": d.applicant, "received_at": _local(d.received_at), "issued_at": _local(run.now),
            "unit": agency, "signed_by": actor.full_name}


def _sign(data: bytes, signer, **kwargs) -> bytes:
    try:
        return signing.sign_pdf(data, signer, **kwargs)
    except Exception as exc:    # pyHanko can fail in many ways on a file it cannot extend
        raise InvalidInput(f"Không ký số được tệp kết quả ({type(exc).__name__}); hãy xuất lại tệp PDF",
                           code="result_not_signable") from exc


def keys_dir() -> Path:
    return settings().data_dir / "keys"


def ensure_dev_keys(*, now: datetime | None = None, force: bool = False) -> signing.KeyFiles | None:
    """Generate the development signing key and CA under data_dir/keys unless present (or `force`).
    Returns the files made, None when they were there already."""
    files = signing.dev_keys(keys_dir())
    if not force and files.key.exists() and files.cert.exists():
        return None
    return signing.generate_dev_keys(keys_dir(), organisation="motcua (môi trường phát triển)",
                                     now=_at(now))


def unit_signer():
    """The configured production key, else the development key (missing: run `motcua docs keys`)."""
    s = settings()
    if s.signing_key and s.signing_cert:
        key, cert, chain = s.signing_key, s.signing_cert, _paths(s.signing_chain)
    else:
        files = signing.dev_keys(keys_dir())
        if not (files.key.exists() and files.cert.exists()):
            raise _config_error("Chưa có khóa ký số: cấu hình MOTCUA_SIGNING_KEY/MOTCUA_SIGNING_CERT hoặc chạy "
                                "'motcua docs keys' để tạo khóa phát triển", "signing_key_missing")
        key, cert, chain = files.key, files.cert, [files.ca]
    try:
        return signing.load_signer(key, cert, chain=chain, passphrase=s.signing_key_passphrase)
    except (ValueError, OSError) as exc:
        raise _config_error(f"Không đọc được khóa ký số {key}: {exc}", "signing_key_invalid") from exc


def trust_roots() -> list[Path]:
    return _paths(settings().signing_trust_roots) or signing.trust_roots_in(keys_dir())


def _paths(text: str) -> list[Path]:
    return [Path(p) for p in text.split(os.pathsep) if p.strip()]


def _config_error(message: str, code: str) -> MotcuaError:
    err = MotcuaError(message, code=code)
    err.status = 500
    return err


# --- official forms ---------------------------------------------------------------------------------

def forms_set(received_at: datetime) -> str:
    """The legal text whose forms a dossier uses: the one in force on its (local) day of receipt."""
    return "01/2018" if _today(received_at) < FORMS_2025_FROM else "03/2025"


def render_form(db: Session, *, code: str, form: str, now: datetime | None = None) -> bytes:
    """Form `form` ("01"…"07") of the set in force when the dossier was received, as PDF bytes."""
    dossier = get_dossier(db, code)
    circular = forms_set(dossier.received_at)
    kind = forms.FORM_SETS[circular].get(form)
    if kind is None:
        raise InvalidInput(f"{forms.CIRCULARS[circular]} không có mẫu số {form}; các mẫu: "
                           f"{', '.join(forms.FORM_SETS[circular])}", code="form_unknown")
    data = FORM_DATA[kind](db, dossier) | {"issued_at": _local(_at(now))}
    return _render(lambda: forms.render(circular, form, data))


# A form that records something that happened exists once its event does (the apology: once extended).
FORM_EVENTS = {"supplement": "supplement_requested", "refusal": "refusal_proposed", "stop": "stopped"}


def dossier_forms(*, received_at: datetime, event_kinds: set[str], extended: bool) -> list[dict[str, str]]:
    """The forms `render_form` can print for a dossier: number and title in the set in force at its
    receipt — the receipt and the control sheet always, the others once what they record happened."""
    circular = forms_set(received_at)
    found = []
    for number, kind in forms.FORM_SETS[circular].items():
        if kind == "tracking_book" or (kind in FORM_EVENTS and FORM_EVENTS[kind] not in event_kinds) \
                or (kind == "apology" and not extended):
            continue
        title = (forms.TITLES_2025 if circular == "03/2025" else {}).get(kind, forms.TITLES[kind])
        found.append({"form": number, "kind": kind, "title": title})
    return found


def render_intake_form(*, data: dict[str, Any], now: datetime, place: str | None = None) -> bytes:
    """Form 02 (incomplete) or 03 (refused) at intake, from the data of the IncompleteDossier or
    Inadmissible error: no dossier exists, so the set is the one in force at `now`. `place`: where the
    counter is (org.place of the officer's unit), for the dated line."""
    number = data.get("form")
    if number not in ("02", "03"):
        raise InvalidInput("Chỉ in được mẫu 02 hoặc 03 khi chưa tiếp nhận hồ sơ", code="form_unknown")
    return _render(lambda: forms.render(forms_set(now), number, {**data, "issued_at": _local(now), "place": place}))


def render_tracking_book(db: Session, *, unit_code: str, start: date, end: date, now: datetime | None = None) -> bytes:
    """The tracking book (sổ theo dõi hồ sơ) of a receiving unit for the days start..end (local)."""
    unit = org.unit_by_code(db, unit_code)
    circular = forms_set(datetime.combine(start, datetime.min.time(), settings().tz))
    number = next(n for n, kind in forms.FORM_SETS[circular].items() if kind == "tracking_book")
    data = tracking_book_rows(db, unit.id, unit.name, start, end) | {"issued_at": _local(_at(now))}
    return _render(lambda: forms.render(circular, number, data))


def _render(make) -> bytes:
    try:
        return make()
    except forms.FontMissing as exc:
        raise _config_error(f"Không có phông chữ tiếng Việt để in biểu mẫu: {exc}", "fonts_missing") from exc


def _local(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(settings().tz).isoformat()


def _base(db: Session, d: Dossier) -> dict[str, Any]:
    rules = version_info(db, d.procedure_version_id).rules
    receiving = org.unit(db, d.receiving_unit_id)
    return {"code": d.code, "procedure": {"code": rules.code, "name": rules.name}, "applicant": d.applicant,
            "unit": receiving.name, "place": org.place(db, receiving), "received_at": _local(d.received_at),
            "appointment": _local(d.due_at)}


def _last_event(db: Session, d: Dossier, kind: str) -> Event:
    event = db.scalar(select(Event).where(Event.dossier_id == d.id, Event.kind == kind).order_by(Event.seq.desc()))
    if event is None:
        raise Conflict(f"Hồ sơ {d.code} không có sự kiện '{kind}' nên không có biểu mẫu này",
                       code="form_not_applicable")
    return event


def _user_name(db: Session, user_id: int | None) -> str | None:
    return db.get(User, user_id).full_name if user_id else None


def _receipt_form(db: Session, d: Dossier) -> dict[str, Any]:
    rules = version_info(db, d.procedure_version_id).rules
    data = receipt_data(db, d)
    filed = {link.component_code: link for link in dossier_documents(db, code=d.code)}
    for c in data["components"]:
        link = filed.get(c["code"])
        c["source"] = "Tái sử dụng từ kho dữ liệu" if link and link.reused else \
            "Bản điện tử (đã số hóa)" if link else "Bản giấy"
    unit = "ngày làm việc" if rules.limit_unit == "working_days" else "giờ làm việc"
    limit = "Trong ngày" if rules.limit_amount == 0 else f"{rules.limit_amount:g} {unit}"
    if rules.cutoff:
        limit += f" (nhận sau {rules.cutoff:%H:%M} thì trả trong ngày làm việc tiếp theo)"
    qr = forms.qr_payload(d.code, rules.code, d.applicant["citizen_id"], base_url=settings().public_url)
    return data | {"place": org.place(db, org.unit(db, d.receiving_unit_id)),
                   "officer": _user_name(db, d.received_by_id), "channel": CHANNELS_VI.get(d.channel, d.channel),
                   "time_limit": limit, "qr": qr}


def _supplement_form(db: Session, d: Dossier) -> dict[str, Any]:
    event = _last_event(db, d, "supplement_requested")
    return _base(db, d) | {"missing": event.data.get("missing") or [], "reason": event.data.get("note"),
                           "requested_at": _local(event.at), "officer": _user_name(db, event.actor_id),
                           "unit": org.unit(db, d.handling_unit_id).name}


def _refusal_form(db: Session, d: Dossier) -> dict[str, Any]:
    event = _last_event(db, d, "refusal_proposed")
    return _base(db, d) | {"reason": event.data.get("reason"), "officer": _user_name(db, event.actor_id)}


def _apology_form(db: Session, d: Dossier) -> dict[str, Any]:
    letter = d.extension
    if not letter:
        raise Conflict(f"Hồ sơ {d.code} chưa được gia hạn nên không có thư xin lỗi", code="form_not_applicable")
    return _base(db, d) | {k: letter.get(k) for k in ("reason", "signed_by", "unit")} | {
        "previous_appointment": _local(letter["previous_appointment"]),
        "new_appointment": _local(letter["new_appointment"])}


def _stop_form(db: Session, d: Dossier) -> dict[str, Any]:
    event = _last_event(db, d, "stopped")
    return _base(db, d) | {"reason": event.data.get("reason"), "stopped_at": _local(event.at),
                           "officer": _user_name(db, event.actor_id)}


def _control_sheet_form(db: Session, d: Dossier) -> dict[str, Any]:
    units = {u.id: u.name for u in db.scalars(select(Unit))}
    rows = []
    for r in db.scalars(select(ControlSheetRow).where(ControlSheetRow.dossier_id == d.id).order_by(ControlSheetRow.id)):
        rows.append({"at": _local(r.at), "giver": _user_name(db, r.giver_id), "giver_unit": units.get(r.giver_unit_id),
                     "receiver_unit": units.get(r.receiver_unit_id), "receiver_step": r.receiver_step,
                     "step_name": r.step_name, "step_due_at": _local(r.step_due_at), "timing": r.timing,
                     "note": r.note or r.step_name})
    return _base(db, d) | {"rows": rows}


def _tracking_book_form(db: Session, d: Dossier) -> dict[str, Any]:
    """The book's page of the day the dossier was received at its unit."""
    day = _today(d.received_at)
    unit = org.unit(db, d.receiving_unit_id)
    return {"code": d.code} | tracking_book_rows(db, unit.id, unit.name, day, day)


def tracking_book_rows(db: Session, unit_id: int, unit_name: str, start: date, end: date) -> dict[str, Any]:
    """The tracking book (sổ theo dõi hồ sơ) of a receiving unit for the local days start..end: its dossiers
    in the order received, as the PDF form and the Excel book (engine.reports) both list them."""
    tz = settings().tz
    lo = datetime.combine(start, datetime.min.time(), tz)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tz)
    units = {u.id: u.name for u in db.scalars(select(Unit))}
    rows = []
    for d in db.scalars(select(Dossier).where(and_(Dossier.receiving_unit_id == unit_id, Dossier.received_at >= lo,
                                                   Dossier.received_at < hi)).order_by(Dossier.received_at, Dossier.id)):
        rules = version_info(db, d.procedure_version_id).rules
        ready = next((s.started_at for s in d.steps if rules.step(s.bpmn_id).get("kind") in ("return", "return_refusal")),
                     None)
        rows.append({"code": d.code, "procedure": rules.name, "applicant": d.applicant.get("full_name"),
                     "address": d.applicant.get("address"), "received_at": _local(d.received_at),
                     "appointment": _local(d.due_at), "handling_unit": units.get(d.handling_unit_id),
                     "result_at": _local(ready), "returned_at": _local(d.finished_at) if d.status == "returned" else None,
                     "note": STATUS_VI.get(d.status, d.status)})
    return {"unit": unit_name, "period_from": start.isoformat(), "period_to": end.isoformat(), "rows": rows}


FORM_DATA = {"receipt": _receipt_form, "supplement": _supplement_form, "refusal": _refusal_form,
             "apology": _apology_form, "stop": _stop_form, "control_sheet": _control_sheet_form,
             "tracking_book": _tracking_book_form}


# --- upkeep: verify and collect ---------------------------------------------------------------------

@dataclass
class StoreReport:
    documents: int = 0
    objects: int = 0
    missing: list[str] = field(default_factory=list)     # named by a row, absent from the store
    orphaned: list[str] = field(default_factory=list)    # in the store, named by no row
    corrupted: list[str] = field(default_factory=list)   # content does not hash to its key (or wrong size)

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.orphaned) + len(self.corrupted)


def _referenced(db: Session) -> dict[str, int]:
    return dict(db.execute(select(Document.sha256, Document.size).distinct()).all())


def verify(db: Session, *, store: ObjectStore | None = None, check_hashes: bool = True) -> StoreReport:
    """Walk the metadata and the store: missing, orphaned and corrupted objects."""
    store = store or object_store()
    expected = _referenced(db)
    try:
        present = {info.key: info for info in store.list()}
        report = StoreReport(documents=db.scalar(select(func.count(Document.id))), objects=len(present))
        report.missing = sorted(expected.keys() - present.keys())
        report.orphaned = sorted(present.keys() - expected.keys())
        for key in sorted(expected.keys() & present.keys()):
            if present[key].size != expected[key] or \
                    (check_hashes and hashlib.sha256(store.get(key)).hexdigest() != key):
                report.corrupted.append(key)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from exc
    return report


def gc(db: Session, *, store: ObjectStore | None = None, grace: timedelta | None = None, now: datetime | None = None,
       dry_run: bool = False) -> list[str]:
    """Remove objects no row names that are older than the grace period (default orphan_grace_hours):
    left by transactions that rolled back after writing their object. Returns the keys removed."""
    store = store or object_store()
    now = _at(now)
    cutoff = now - (grace if grace is not None else timedelta(hours=settings().orphan_grace_hours))
    referenced = _referenced(db)
    removed = []
    try:
        for info in list(store.list()):
            if info.key in referenced or info.modified >= cutoff:
                continue
            # Ask again just before deleting: a row naming it may have been committed since the list.
            if db.scalar(select(Document.id).where(Document.sha256 == info.key).limit(1)) is not None:
                continue
            if not dry_run:
                store.delete(info.key)
            removed.append(info.key)
        sweep = getattr(store, "sweep_staging", None)       # a local store's writes cut short by a crash
        if sweep and not dry_run:
            sweep(cutoff)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from exc
    return removed
