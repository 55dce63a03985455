"""Documents over HTTP: multipart uploads of real PDFs, refusals that store nothing, the citizen's data
store and reuse, downloads (bytes from the local store, a redirect to a presigned link from S3), and the
signed electronic result."""
from __future__ import annotations

import hashlib
import urllib.request
import uuid

import pytest
from sqlalchemy import func, select

from api.routers.documents import UPLOAD_BODY_LIMIT
from engine import documents
from engine.config import set_settings, settings
from engine.models import Document, DossierDocument
from storage import signing
from tests.conftest import vn
from tests.documents_support import encrypted_pdf, javascript_pdf, jpeg, make_pdf

pytest_plugins = ["tests.api_support", "tests.admin_support", "tests.documents_fixtures"]

ANNA = {"full_name": "Nguyễn Thị Hướng", "citizen_id": "052190001234", "phone": "0905123456"}


@pytest.fixture
def configured():
    """Settings changed for one test, restored after."""
    original = settings()
    yield lambda **values: set_settings(original.model_copy(update=values))
    set_settings(original)


def receive(c, applicant=ANNA) -> dict:
    r = c.post("/api/dossiers", json={"procedure_code": "2.000815", "applicant": applicant, "components": ["TP1"]})
    assert r.status_code == 201, r.text
    return r.json()


def upload(c, code: str, data: bytes, *, name="ban-sao.pdf", media="application/pdf", **fields):
    return c.post(f"/api/dossiers/{code}/documents", files={"file": (name, data, media)},
                  data={"component": "TP2", **fields})


def count(db, model) -> int:
    db.rollback()               # a fresh read: the requests wrote on other connections
    return db.scalar(select(func.count()).select_from(model))


def stored_objects() -> set[str]:
    return {info.key for info in documents.object_store().list()}


def test_upload_list_and_download(client, db):
    counter = client("pp.motcua")
    dossier = receive(counter)
    data = make_pdf(3)
    r = upload(counter, dossier["code"], data, valid_until="2030-01-01", expected_version=dossier["version"])
    assert r.status_code == 201, r.text
    doc = r.json()["document"]
    assert (doc["pages"], doc["component"], doc["sha256"], doc["valid_until"], doc["digitized"]) == \
        (3, "TP2", hashlib.sha256(data).hexdigest(), "2030-01-01", True)
    assert r.json()["dossier"]["version"] == dossier["version"] + 1
    listed = client("pp.cv").get(f"/api/dossiers/{dossier['code']}/documents").json()
    assert [(d["id"], d["component"], d["reused"]) for d in listed["components"]] == [(doc["id"], "TP2", False)]
    got = client("pp.ld").get(f"/api/documents/{doc['id']}/download")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith('attachment; filename="ban-sao.pdf"')
    # A scanned photo is converted to PDF; a client that declares nothing useful is sniffed.
    photo = upload(counter, dossier["code"], jpeg(), name="ảnh chụp.bin", media="application/octet-stream")
    assert photo.status_code == 201 and photo.json()["document"]["pages"] == 1
    named = counter.get(f"/api/documents/{photo.json()['document']['id']}/download").headers["content-disposition"]
    assert named == """attachment; filename="_nh ch_p.bin.pdf"; filename*=UTF-8''%E1%BA%A3nh%20ch%E1%BB%A5p.bin.pdf"""


@pytest.mark.parametrize("make, code", [
    (lambda: b"day khong phai PDF", "file_type_not_allowed"),
    (encrypted_pdf, "pdf_encrypted"),
    (javascript_pdf, "pdf_javascript"),
    (lambda: make_pdf(80), "file_too_large"),
], ids=["not-pdf", "encrypted", "javascript", "oversized"])
def test_refused_files_store_nothing(client, db, configured, make, code):
    configured(max_upload_bytes=30_000)
    counter = client("pp.motcua")
    dossier = receive(counter)
    objects = stored_objects()
    r = upload(counter, dossier["code"], make())
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == code and not r.json()["title"].isascii()      # Vietnamese, for the officer
    assert count(db, Document) == 0 and stored_objects() == objects
    assert counter.get(f"/api/dossiers/{dossier['code']}").json()["version"] == dossier["version"]


def test_bad_requests_are_clear_and_store_nothing(client, db):
    counter = client("pp.motcua")
    code = receive(counter)["code"]
    cases = [
        (upload(counter, code, make_pdf(), component="TP9"), 422, "unknown_component"),
        (counter.post(f"/api/dossiers/{code}/documents", data={"component": "TP2"}), 422, "validation_failed"),
        (upload(counter, code, make_pdf(), valid_until="2025-04-01"), 422, "valid_until_past"),
        (upload(counter, code, make_pdf(), expected_version=99), 409, "version_conflict"),
        (upload(client("tv.motcua"), code, make_pdf()), 404, "dossier_not_found"),     # another commune's counter
        (upload(client("pp.cv"), code, make_pdf()), 403, "role_not_allowed"),
    ]
    for r, status, detail in cases:
        assert (r.status_code, r.json()["detail"]) == (status, detail), r.text
        assert r.headers["content-type"] == "application/problem+json"
    # Far over the limit, the transport refuses the body before it is spooled to disk.
    huge = upload(counter, code, b"%PDF-1.7\n" + b"0" * UPLOAD_BODY_LIMIT)
    assert huge.status_code == 413 and huge.headers["content-type"] == "application/problem+json"
    assert huge.json()["detail"] == "request_too_large" and "tối đa 20 MB" in huge.json()["title"]
    assert count(db, Document) == 0


def test_the_citizens_data_store_and_reuse(client, db, api_clock):
    counter = client("pp.motcua")
    first = receive(counter)["code"]
    kept = upload(counter, first, make_pdf(1), valid_until="2025-12-31").json()["document"]
    short = upload(counter, first, make_pdf(2), valid_until="2025-04-30").json()["document"]
    api_clock.now = vn(2025, 5, 5, 9, 0)                 # a week later: one document has expired
    counter = client("pp.motcua")
    second = receive(counter)["code"]
    store = counter.get(f"/api/citizens/{ANNA['citizen_id']}/documents")
    assert store.status_code == 200 and [d["id"] for d in store.json()["items"]] == [kept["id"]]
    assert store.json()["items"][0]["dossier"] == first
    r = counter.post(f"/api/dossiers/{second}/documents/attach", json={"document_id": kept["id"], "component": "TP2"})
    assert r.status_code == 201 and r.json()["reused"] is True
    again = counter.post(f"/api/dossiers/{second}/documents/attach", json={"document_id": kept["id"], "component": "TP2"})
    assert again.status_code == 409 and again.json()["detail"] == "document_already_attached"
    expired = counter.post(f"/api/dossiers/{second}/documents/attach", json={"document_id": short["id"],
                                                                              "component": "TP2"})
    assert expired.status_code == 422 and expired.json()["detail"] == "document_expired"
    assert count(db, DossierDocument) == 3
    # Officials who cannot see one of this citizen's dossiers cannot read the store; supervisors have no intake.
    assert client("tv.cv").get(f"/api/citizens/{ANNA['citizen_id']}/documents").status_code == 404
    assert client("ts.nv.gs").get(f"/api/citizens/{ANNA['citizen_id']}/documents").status_code == 403
    assert client("pp.cv").get("/api/citizens/12345/documents").status_code == 422


def test_reuse_across_communes_does_not_name_the_other_dossier(client):
    pp = client("pp.motcua")
    first = receive(pp)["code"]
    doc = upload(pp, first, make_pdf(1)).json()["document"]
    tv = client("tv.motcua")
    second = receive(tv)["code"]                         # the same citizen, at the neighbouring commune
    items = tv.get(f"/api/citizens/{ANNA['citizen_id']}/documents").json()["items"]
    assert [(d["id"], d["dossier"], d["name"]) for d in items] == [(doc["id"], None, "Thành phần TP2")]
    assert first not in str(items)
    r = tv.post(f"/api/dossiers/{second}/documents/attach", json={"document_id": doc["id"], "component": "TP2"})
    assert r.status_code == 201
    # Attached, it belongs to a dossier Tây Vinh can see, so Tây Vinh may download it.
    assert client("tv.cv").get(f"/api/documents/{doc['id']}/download").status_code == 200
    assert client("xts.cv").get(f"/api/documents/{doc['id']}/download").status_code == 404


def test_signed_result_issued_and_served(client, dev_keys, db):
    counter = client("pp.motcua")
    code = receive(counter)["code"]
    early = counter.post(f"/api/dossiers/{code}/result")
    assert early.status_code == 409 and early.json()["detail"] == "result_not_ready"
    for user, decision in (("pp.cv", "dat"), ("pp.ld", "dong_y")):
        c = client(user)
        step = next(s["id"] for s in c.get(f"/api/dossiers/{code}").json()["steps"] if s["state"] == "ready")
        assert c.post(f"/api/dossiers/{code}/steps/{step}/complete", json={"decision": decision}).status_code == 200
    r = client("pp.cv").post(f"/api/dossiers/{code}/result")
    assert r.status_code == 201, r.text
    result = r.json()["document"]
    assert (result["name"], result["kind"], result["signed"]) == (f"{code}-KQ1", "result", True)
    pdf = counter.get(f"/api/documents/{result['id']}/download").content
    assert signing.verify_pdf(pdf, trust_roots=documents.trust_roots(), now=vn(2025, 4, 24, 9, 0)).ok
    own = counter.post(f"/api/dossiers/{code}/result", files={"file": ("kq.pdf", make_pdf(1), "application/pdf")},
                       data={"valid_until": "2030-01-01"})
    assert own.status_code == 201 and own.json()["document"]["name"] == f"{code}-KQ2"
    listed = counter.get(f"/api/dossiers/{code}/documents").json()
    assert [d["name"] for d in listed["results"]] == [f"{code}-KQ1", f"{code}-KQ2"]
    assert client("ts.nv.gs").post(f"/api/dossiers/{code}/result").status_code == 403
    assert count(db, Document) == 2


def test_download_from_s3_is_a_redirect_to_a_short_lived_link(client, configured, moto_endpoint):
    configured(s3_endpoint=moto_endpoint, s3_access_key="testing", s3_secret_key="testing",
               s3_bucket=f"motcua-api-{uuid.uuid4().hex[:12]}")
    counter = client("pp.motcua")
    data = make_pdf(2)
    doc = upload(counter, receive(counter)["code"], data).json()["document"]
    r = counter.get(f"/api/documents/{doc['id']}/download", follow_redirects=False)
    assert r.status_code == 307
    link = r.headers["location"]
    assert f"X-Amz-Expires={settings().presign_seconds}" in link and doc["sha256"] in link
    with urllib.request.urlopen(link) as response:     # moto serves it (it does not check the link's age)
        assert response.read() == data
    assert client("tv.cv").get(f"/api/documents/{doc['id']}/download", follow_redirects=False).status_code == 404
