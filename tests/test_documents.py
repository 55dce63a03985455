"""Documents of dossiers (engine.documents): intake, the citizen's data store and reuse, signed results,
official forms chosen by the received date, and the store's upkeep. Runs on SQLite and PostgreSQL; the
object store is a temporary directory, and the S3 path runs against moto's server on loopback."""
from __future__ import annotations

import hashlib
import io
import urllib.request
from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import func, select

from engine import documents
from engine import dossiers as cmd
from engine.config import set_settings, settings
from engine.errors import Conflict, Forbidden, IncompleteDossier, InvalidInput, MotcuaError, NotFound
from engine.events import verify_chain
from engine.models import Document, DossierDocument, Event
from storage.objects import LocalStore, S3Store
from tests.conftest import vn
from tests.documents_support import encrypted_pdf, free_port, javascript_pdf, jpeg, make_pdf, s3_store

pytest_plugins = ["tests.documents_fixtures"]       # the moto_endpoint fixture

ANNA = {"full_name": "Nguyễn Thị Hướng", "citizen_id": "052190001234", "address": "Phú Phong", "phone": "0905123456"}
BINH = {"full_name": "Trần Văn Bình", "citizen_id": "052088009999"}
T0 = vn(2025, 4, 24, 9, 0)


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "objects")


@pytest.fixture(scope="module")
def dev_keys(db_url):
    """The development signing key in the test data directory, valid around the tests' clock."""
    return documents.ensure_dev_keys(now=vn(2025, 1, 2, 8, 0), force=True)


@pytest.fixture
def configured(tmp_path):
    """Settings changed for one test, restored after."""
    original = settings()

    def change(**values):
        set_settings(original.model_copy(update=values))
    yield change
    set_settings(original)


def fresh(db):
    db.commit()
    db.expunge_all()


def receive(db, users, *, applicant=ANNA, at=T0, officer="pp.motcua", procedure="2.000815", components=("TP1",)):
    d = cmd.receive(db, actor=users[officer], procedure_code=procedure, applicant=applicant,
                    components=list(components), now=at).dossier
    fresh(db)
    return d.code


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def upload(db, users, code, data=None, *, store, component="TP2", at=T0 + timedelta(minutes=5), **kw):
    doc = documents.upload(db, code=code, actor=users[kw.pop("officer", "pp.motcua")], component=component,
                           data=data if data is not None else make_pdf(2), store=store, now=at, **kw)
    fresh(db)
    return doc


def to_return_step(db, users, code, at=T0):
    cmd.complete_step(db, code=code, actor=users["pp.cv"], decision="dat", now=at + timedelta(minutes=30))
    cmd.complete_step(db, code=code, actor=users["pp.ld"], decision="dong_y", now=at + timedelta(minutes=60))
    fresh(db)


# --- intake -----------------------------------------------------------------------------------------

def test_upload_files_a_component_and_records_it_on_the_dossier(db, users, store):
    code = receive(db, users)
    before = cmd.get_dossier(db, code).version
    data = make_pdf(3)
    doc = upload(db, users, code, data, store=store, valid_until=date(2030, 1, 1))
    row = db.get(Document, doc.id)
    assert (row.sha256, row.size, row.pages, row.kind, row.component_code) == \
        (hashlib.sha256(data).hexdigest(), len(data), 3, "component", "TP2")
    assert (row.owner_id, row.digitized, row.original_type, row.signed, row.valid_until) == \
        (ANNA["citizen_id"], True, "pdf", False, date(2030, 1, 1))
    dossier = cmd.get_dossier(db, code)
    assert row.source_dossier_id == dossier.id and dossier.version == before + 1
    assert dossier.components == ["TP1", "TP2"]
    [link] = documents.dossier_documents(db, code=code)
    assert (link.component_code, link.reused, link.document.id) == ("TP2", False, doc.id)
    last = db.scalar(select(Event).where(Event.dossier_id == dossier.id).order_by(Event.seq.desc()))
    assert last.kind == "document_uploaded" and last.data["sha256"] == row.sha256
    assert list(verify_chain(db, code)) == []
    assert store.get(row.sha256) == data


def test_same_bytes_twice_are_stored_once(db, users, store):
    data = make_pdf(1)
    first = upload(db, users, receive(db, users), data, store=store)
    second = upload(db, users, receive(db, users, applicant=BINH), data, store=store)
    assert first.sha256 == second.sha256 and first.id != second.id
    assert [info.key for info in store.list()] == [first.sha256]


def test_a_scanned_photo_becomes_a_pdf(db, users, store):
    doc = upload(db, users, receive(db, users), jpeg(), store=store, media_type="image/jpeg")
    assert (doc.original_type, doc.pages) == ("jpeg", 1)
    assert PdfReader(io.BytesIO(store.get(doc.sha256))).pages[0] is not None


@pytest.mark.parametrize("make, code, error", [
    (lambda: b"day khong phai PDF", "file_type_not_allowed", InvalidInput),
    (lambda: make_pdf(2)[:900], "pdf_truncated", InvalidInput),
    (encrypted_pdf, "pdf_encrypted", InvalidInput),
    (javascript_pdf, "pdf_javascript", InvalidInput),
    (lambda: make_pdf(80), "file_too_large", InvalidInput),
    (lambda: b"\xff\xd8\xff\xe0 not an image" * 30, "image_invalid", InvalidInput),
], ids=["not-pdf", "truncated", "encrypted", "javascript", "oversized", "not-an-image"])
def test_bad_files_are_refused_and_leave_nothing(db, users, store, configured, make, code, error):
    configured(max_upload_bytes=30_000)
    dossier = receive(db, users)
    version = cmd.get_dossier(db, dossier).version
    with pytest.raises(error) as exc:
        documents.upload(db, code=dossier, actor=users["pp.motcua"], component="TP2", data=make(), store=store,
                         now=T0 + timedelta(minutes=5))
    db.rollback()
    assert exc.value.code == code and exc.value.status == 422 and not exc.value.message.isascii()
    assert list(store.list()) == [] and count(db, Document) == 0 and count(db, DossierDocument) == 0
    assert cmd.get_dossier(db, dossier).version == version


def test_component_and_officer_checks(db, users, store):
    code = receive(db, users)
    with pytest.raises(InvalidInput) as exc:
        upload(db, users, code, store=store, component="TP9")
    assert exc.value.code == "unknown_component" and exc.value.data["known"] == ["TP1", "TP2"]
    with pytest.raises(Forbidden):
        upload(db, users, code, store=store, officer="pp.cv")             # a specialist, not the counter
    with pytest.raises(Forbidden):
        upload(db, users, code, store=store, officer="tv.motcua")         # another unit's counter
    with pytest.raises(InvalidInput) as exc:
        upload(db, users, code, store=store, valid_until=date(2025, 4, 23))
    assert exc.value.code == "valid_until_past"
    with pytest.raises(Conflict) as exc:
        upload(db, users, code, store=store, expected_version=99)
    assert exc.value.code == "version_conflict"
    db.rollback()
    assert list(store.list()) == [] and count(db, Document) == 0


def test_store_unreachable_fails_with_503_and_writes_nothing(db, users):
    code = receive(db, users)
    version = cmd.get_dossier(db, code).version
    down = S3Store(f"127.0.0.1:{free_port()}", "testing", "testing", "motcua-down", retries=0, timeout=2)
    with pytest.raises(MotcuaError) as exc:
        documents.upload(db, code=code, actor=users["pp.motcua"], component="TP2", data=make_pdf(), store=down,
                         now=T0 + timedelta(minutes=5))
    db.rollback()
    assert (exc.value.status, exc.value.code) == (503, "object_store_unavailable")
    assert count(db, Document) == 0 and cmd.get_dossier(db, code).version == version


def test_intake_through_s3_and_a_presigned_download(db, users, moto_endpoint):
    s3 = s3_store(moto_endpoint)
    data = make_pdf(2)
    doc = upload(db, users, receive(db, users), data, store=s3)
    served = documents.download_url(db, document_id=doc.id, citizen_id=ANNA["citizen_id"], store=s3)
    assert served.data == data and f"X-Amz-Expires={settings().presign_seconds}" in served.url
    with urllib.request.urlopen(served.url) as response:
        assert response.read() == data


# --- the data store and reuse -----------------------------------------------------------------------

def test_reuse_from_the_citizens_data_store(db, users, store):
    first = receive(db, users)
    doc = upload(db, users, first, store=store, valid_until=date(2026, 12, 31))
    later = T0 + timedelta(days=7)
    second = receive(db, users, at=later)
    assert [d.id for d in documents.citizen_documents(db, citizen_id=ANNA["citizen_id"], now=later)] == [doc.id]
    link = documents.attach(db, code=second, actor=users["pp.motcua"], component="TP2", document_id=doc.id,
                            now=later + timedelta(minutes=1))
    fresh(db)
    assert link.reused and documents.reused_components(db, code=second) == ["TP2"]
    assert documents.reused_components(db, code=first) == []
    dossier = cmd.get_dossier(db, second)
    assert "TP2" in dossier.components
    kinds = list(db.scalars(select(Event.kind).where(Event.dossier_id == dossier.id).order_by(Event.seq)))
    assert kinds == ["received", "document_reused"] and list(verify_chain(db, second)) == []
    assert len(list(store.list())) == 1                      # by reference: no new object
    with pytest.raises(Conflict) as exc:
        documents.attach(db, code=second, actor=users["pp.motcua"], component="TP2", document_id=doc.id, now=later)
    assert exc.value.code == "document_already_attached"


def test_reuse_refused_for_another_citizen_an_expired_or_unknown_document(db, users, store):
    doc = upload(db, users, receive(db, users), store=store, valid_until=date(2025, 5, 31))
    other = receive(db, users, applicant=BINH)
    with pytest.raises(Forbidden) as exc:
        documents.attach(db, code=other, actor=users["pp.motcua"], component="TP2", document_id=doc.id, now=T0)
    assert exc.value.code == "document_not_owned"
    june = vn(2025, 6, 2, 9, 0)
    again = receive(db, users, at=june)
    with pytest.raises(InvalidInput) as exc:
        documents.attach(db, code=again, actor=users["pp.motcua"], component="TP2", document_id=doc.id, now=june)
    assert exc.value.code == "document_expired" and "31/05/2025" in exc.value.message
    with pytest.raises(NotFound):
        documents.attach(db, code=again, actor=users["pp.motcua"], component="TP2", document_id=10**6, now=june)
    assert documents.citizen_documents(db, citizen_id=ANNA["citizen_id"], now=june) == []
    assert count(db, DossierDocument) == 1


# --- electronic results -----------------------------------------------------------------------------

def test_signed_result_filed_to_the_data_store_and_verified_when_served(db, users, store, dev_keys):
    code = receive(db, users)
    with pytest.raises(Conflict) as exc:
        documents.issue_result(db, code=code, actor=users["pp.motcua"], store=store, now=T0)
    assert exc.value.code == "result_not_ready"
    db.rollback()
    to_return_step(db, users, code)
    at = T0 + timedelta(hours=2)
    first = documents.issue_result(db, code=code, actor=users["pp.ld"], store=store, now=at)
    fresh(db)
    second = documents.issue_result(db, code=code, actor=users["pp.motcua"], data=make_pdf(1), store=store, now=at)
    fresh(db)
    assert (first.name, second.name) == (f"{code}-KQ1", f"{code}-KQ2")
    assert [d.name for d in documents.dossier_results(db, code=code)] == [first.name, second.name]
    assert first.signed and first.kind == "result" and first.owner_id == ANNA["citizen_id"]
    assert {d.id for d in documents.citizen_documents(db, citizen_id=ANNA["citizen_id"], now=at)} == {first.id, second.id}
    served = documents.open_document(db, document_id=first.id, citizen_id=ANNA["citizen_id"], store=store, now=at)
    assert served.verification.ok and served.verification.signed_at == at
    assert "Bản sao được chứng thực" in PdfReader(io.BytesIO(served.data)).pages[0].extract_text()
    with pytest.raises(Forbidden):
        documents.open_document(db, document_id=first.id, citizen_id=BINH["citizen_id"], store=store, now=at)
    assert documents.open_document(db, document_id=first.id, actor=users["pp.cv"], store=store, now=at).data


def test_a_changed_result_is_not_served(db, users, store, dev_keys):
    code = receive(db, users)
    to_return_step(db, users, code)
    at = T0 + timedelta(hours=2)
    doc = documents.issue_result(db, code=code, actor=users["pp.motcua"], store=store, now=at)
    fresh(db)
    path = store.root / doc.sha256[:2] / doc.sha256
    signed = path.read_bytes()
    # One byte changed in the file: its hash no longer matches.
    changed = bytearray(signed)
    changed[len(signed) // 3] ^= 0x01
    path.write_bytes(bytes(changed))
    with pytest.raises(MotcuaError) as exc:
        documents.open_document(db, document_id=doc.id, citizen_id=ANNA["citizen_id"], store=store, now=at)
    assert (exc.value.status, exc.value.code) == (500, "document_corrupted")
    # The same change filed under its new hash, as if the metadata had been edited too: the signature fails.
    key = store.put(bytes(changed))
    row = db.get(Document, doc.id)
    row.sha256 = key
    fresh(db)
    with pytest.raises(MotcuaError) as exc:
        documents.open_document(db, document_id=doc.id, citizen_id=ANNA["citizen_id"], store=store, now=at)
    assert exc.value.code == "signature_invalid" and "changed" in exc.value.data["detail"]


def test_result_refused_for_officials_outside_the_dossier(db, users, store, dev_keys):
    code = receive(db, users)
    to_return_step(db, users, code)
    with pytest.raises(Forbidden):
        documents.issue_result(db, code=code, actor=users["tv.cv"], store=store, now=T0 + timedelta(hours=2))


# --- official forms ---------------------------------------------------------------------------------

def text(data: bytes) -> str:
    return "".join("".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


def squash(s: str) -> str:
    return "".join(s.split())


def test_forms_set_follows_the_received_date():
    assert documents.forms_set(vn(2025, 6, 30, 23, 59)) == "01/2018"
    assert documents.forms_set(vn(2025, 7, 1, 0, 30)) == "03/2025"       # 30/6 17:30 UTC, 1/7 in Viet Nam
    assert documents.forms_set(datetime(2025, 6, 30, 16, 59, tzinfo=timezone.utc)) == "01/2018"


def _sample_dossiers(db, users, at, officer, cv, ld):
    """Dossiers that between them have every form: supplement + extension, refusal, stop."""
    main = receive(db, users, at=at, officer=officer)
    cmd.request_supplement(db, code=main, actor=users[cv], missing=["Bản sao giấy khai sinh"], note="Bản sao bị mờ",
                           now=at + timedelta(minutes=20))
    cmd.record_supplement(db, code=main, actor=users[officer], now=at + timedelta(minutes=40))
    cmd.extend(db, code=main, actor=users[ld], reason="Chờ xác minh", extra_working_days=1, now=at + timedelta(hours=1))
    refused = receive(db, users, at=at + timedelta(minutes=5), officer=officer, applicant=BINH)
    cmd.refuse(db, code=refused, actor=users[cv], reason="Bản chính không hợp lệ", now=at + timedelta(minutes=30))
    stopped = receive(db, users, at=at + timedelta(minutes=10), officer=officer)
    cmd.stop(db, code=stopped, actor=users[officer], reason="Công dân rút hồ sơ", now=at + timedelta(minutes=15))
    fresh(db)
    return {"receipt": main, "supplement": main, "apology": main, "control_sheet": main, "tracking_book": main,
            "refusal": refused, "stop": stopped}


@pytest.mark.parametrize("circular, at, officer, cv, ld", [
    ("01/2018", T0, "pp.motcua", "pp.cv", "pp.ld"),
    ("03/2025", vn(2025, 10, 14, 9, 0), "xts.motcua", "xts.cv", "xts.ld"),
], ids=["circular-01-2018", "circular-03-2025"])
def test_every_form_of_the_dossiers_set(db, users, circular, at, officer, cv, ld):
    from storage import forms
    codes = _sample_dossiers(db, users, at, officer, cv, ld)
    for number, kind in forms.FORM_SETS[circular].items():
        code = codes[kind]
        assert documents.forms_set(cmd.get_dossier(db, code).received_at) == circular
        content = text(documents.render_form(db, code=code, form=number, now=at + timedelta(hours=2)))
        title = (forms.TITLES_2025 if circular == "03/2025" else {}).get(kind, forms.TITLES[kind])
        for expected in (title.upper(), f"Mẫu số {number}", forms.CIRCULARS[circular], code):
            assert squash(expected) in content, (number, expected)
    receipt = text(documents.render_form(db, code=codes["receipt"], form="01", now=at))
    assert squash("Giấy tiếp nhận hồ sơ và hẹn trả kết quả") in receipt and squash(ANNA["full_name"]) in receipt
    assert squash("Bản sao bị mờ") in text(documents.render_form(db, code=codes["supplement"], form="02", now=at))
    assert squash("Chờ xác minh") in text(documents.render_form(db, code=codes["apology"], form="04", now=at))


def test_forms_that_do_not_apply(db, users):
    code = receive(db, users)
    with pytest.raises(Conflict) as exc:
        documents.render_form(db, code=code, form="04", now=T0)         # never extended
    assert exc.value.code == "form_not_applicable"
    with pytest.raises(InvalidInput) as exc:
        documents.render_form(db, code=code, form="07", now=T0)         # 01/2018 has six forms
    assert exc.value.code == "form_unknown"
    with pytest.raises(IncompleteDossier) as exc:
        cmd.receive(db, actor=users["pp.motcua"], procedure_code="2.000815", applicant=ANNA, components=[], now=T0)
    form02 = text(documents.render_intake_form(data=exc.value.data, now=T0))
    assert squash("PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ") in form02 and squash("Bản chính giấy tờ") in form02


def test_receipt_marks_reused_components(db, users, store):
    first = receive(db, users)
    doc = upload(db, users, first, store=store)
    second = receive(db, users, at=T0 + timedelta(days=1))
    documents.attach(db, code=second, actor=users["pp.motcua"], component="TP2", document_id=doc.id,
                     now=T0 + timedelta(days=1))
    fresh(db)
    assert squash("Tái sử dụng từ kho dữ liệu") in text(documents.render_form(db, code=second, form="01", now=T0))


# --- upkeep: verify and gc ------------------------------------------------------------------------------

def test_rollback_leaves_an_orphan_that_gc_removes_after_the_grace_period(db, users, store):
    code = receive(db, users)
    documents.upload(db, code=code, actor=users["pp.motcua"], component="TP2", data=make_pdf(1), store=store,
                     now=T0 + timedelta(minutes=5))
    db.rollback()                                   # the transaction failed after the object was written
    [orphan] = [info.key for info in store.list()]
    report = documents.verify(db, store=store)
    assert report.orphaned == [orphan] and report.problems == 1
    now = datetime.now(timezone.utc)                # objects carry the store's own clock
    assert documents.gc(db, store=store, now=now) == []                                   # within 24 h
    assert documents.gc(db, store=store, now=now + timedelta(hours=25), dry_run=True) == [orphan]
    assert store.stat(orphan) is not None
    assert documents.gc(db, store=store, now=now + timedelta(hours=25)) == [orphan]
    assert list(store.list()) == [] and documents.verify(db, store=store).problems == 0


def test_gc_keeps_referenced_objects(db, users, store):
    doc = upload(db, users, receive(db, users), store=store)
    assert documents.gc(db, store=store, grace=timedelta(0), now=datetime.now(timezone.utc) + timedelta(days=9)) == []
    assert store.stat(doc.sha256) is not None


def test_verify_finds_missing_and_corrupted_objects(db, users, store):
    code = receive(db, users)
    kept = upload(db, users, code, make_pdf(1), store=store)
    lost = upload(db, users, code, make_pdf(2), store=store, component="TP1")
    store.delete(lost.sha256)
    (store.root / kept.sha256[:2] / kept.sha256).write_bytes(make_pdf(3)[: kept.size].ljust(kept.size, b" "))
    report = documents.verify(db, store=store)
    assert (report.missing, report.corrupted, report.orphaned) == ([lost.sha256], [kept.sha256], [])
    assert documents.verify(db, store=store, check_hashes=False).corrupted == []      # same size: only a hash shows it


def test_docs_commands(db, users, configured, tmp_path):
    from engine.cli import main
    configured(data_dir=tmp_path)                   # the CLI uses the configured store: data_dir/objects
    code = receive(db, users)
    doc = upload(db, users, code, store=documents.object_store())
    runner = CliRunner()
    result = runner.invoke(main, ["docs", "verify"])
    assert result.exit_code == 0, result.output
    assert "1 documents, 1 objects: 0 missing, 0 orphaned, 0 corrupted" in result.output
    documents.object_store().delete(doc.sha256)
    orphan = documents.object_store().put(make_pdf(4))
    result = runner.invoke(main, ["docs", "verify"])
    assert result.exit_code == 1 and f"MISSING {doc.sha256}" in result.output and f"ORPHANED {orphan}" in result.output
    result = runner.invoke(main, ["docs", "gc"])
    assert result.exit_code == 0 and "0 orphaned objects removed" in result.output      # younger than 24 h
    result = runner.invoke(main, ["docs", "gc", "--grace-hours", "0"])
    assert result.exit_code == 0 and f"REMOVED {orphan}" in result.output
    assert runner.invoke(main, ["docs", "gc", "--grace-hours", "-1"]).exit_code == 2
    result = runner.invoke(main, ["docs", "keys"])
    assert result.exit_code == 0 and (tmp_path / "keys" / "signer.key.pem").exists()


def test_production_key_from_configuration(db, users, store, configured, tmp_path):
    from storage import signing
    production = signing.generate_dev_keys(tmp_path / "hsm-export", organisation="UBND huyện Tây Sơn",
                                           now=vn(2025, 1, 2, 8, 0))
    configured(signing_key=production.key, signing_cert=production.cert, signing_chain=str(production.ca),
               signing_trust_roots=str(production.ca))
    code = receive(db, users)
    to_return_step(db, users, code)
    at = T0 + timedelta(hours=2)
    doc = documents.issue_result(db, code=code, actor=users["pp.motcua"], store=store, now=at)
    fresh(db)
    served = documents.open_document(db, document_id=doc.id, citizen_id=ANNA["citizen_id"], store=store, now=at)
    assert served.verification.ok and "Tây Sơn" in served.verification.signer
    configured(signing_key=tmp_path / "missing.pem", signing_cert=production.cert)
    with pytest.raises(MotcuaError) as exc:
        documents.unit_signer()
    assert exc.value.code == "signing_key_invalid"


def test_tracking_book_of_a_unit(db, users):
    first = receive(db, users)
    second = receive(db, users, applicant=BINH, at=T0 + timedelta(hours=1))
    later = receive(db, users, at=T0 + timedelta(days=1))
    book = text(documents.render_tracking_book(db, unit_code="TS-PP", start=date(2025, 4, 24), end=date(2025, 4, 24),
                                               now=T0))
    assert squash("SỔ THEO DÕI HỒ SƠ") in book and squash("Mẫu số 06") in book
    assert first in book and second in book and later not in book
