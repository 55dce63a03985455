"""The HTTP API: two procedures' whole lifecycle, errors as problem+json, tokens, the citizen lookup."""
from __future__ import annotations

from datetime import timedelta

from tests.conftest import vn

pytest_plugins = ["tests.api_support"]

APPLICANT = {"full_name": "Nguyễn Văn An", "citizen_id": "052088004321", "phone": "0905123456"}


def step_id(c, code: str, step: str) -> int:
    r = c.get(f"/api/dossiers/{code}")
    assert r.status_code == 200, r.text
    detail = r.json()
    return next(s["id"] for s in detail["steps"] if s["state"] == "ready" and s["step"] == step)


def act(c, code: str, path: str, body: dict | None = None, status: int = 200) -> dict:
    r = c.post(f"/api/dossiers/{code}/{path}", json=body or {})
    assert r.status_code == status, r.text
    return r.json()


def test_certified_copy_over_http(client, api_clock):
    counter, specialist, leader = client("pp.motcua"), client("pp.cv"), client("pp.ld")
    r = counter.post("/api/dossiers", json={"procedure_code": "2.000815", "applicant": APPLICANT,
                                            "components": ["TP1", "TP2"]})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    assert r.json()["receipt"]["appointment"] == vn(2025, 4, 24, 17, 0).isoformat()
    inbox = specialist.get("/api/inbox").json()
    assert [i["code"] for i in inbox["items"]] == [code] and inbox["items"][0]["sla"] == "due_soon"   # same day: due within a working day
    api_clock.now += timedelta(minutes=10)
    done = act(specialist, code, f"steps/{step_id(specialist, code, 'tham_dinh')}/complete", {"decision": "dat"})
    assert done["status"] == "processing"
    act(leader, code, f"steps/{step_id(leader, code, 'phe_duyet')}/complete", {"decision": "dong_y"})
    assert act(counter, code, "return")["status"] == "returned"
    detail = counter.get(f"/api/dossiers/{code}").json()
    assert [e["kind"] for e in detail["events"]] == ["received", "step_completed", "step_completed", "returned"]
    assert len(detail["control_sheet"]) == 4 and detail["actions"] == []


def test_construction_permit_with_supplement_transfer_and_extension(client, api_clock):
    # Access tokens live 15 minutes on the injected clock: each action signs in at its own time.
    api_clock.now = vn(2025, 4, 24, 9, 30)
    code = client("ts.motcua").post("/api/dossiers", json={"procedure_code": "XD.GPXD.01", "applicant": APPLICANT,
                                                           "components": ["TP1", "TP2", "TP3"]}).json()["code"]

    def do(user: str, path: str, body: dict | None = None, step: str | None = None, status: int = 200) -> dict:
        c = client(user)
        target = f"steps/{step_id(c, code, step)}/{path}" if step else path
        return act(c, code, target, body, status)

    version = client("ts.ktht.cv").get(f"/api/dossiers/{code}").json()["version"]
    assert do("ts.ktht.cv", "claim", {"expected_version": version}, step="tham_dinh")["version"] == version + 1
    do("ts.ktht.cv", "complete", {"decision": "lay_y_kien"}, step="tham_dinh")
    do("ts.ktht.cv", "transfer", {"to_unit": "BD-SXD"}, step="lay_y_kien_lien_thong")
    # The other agency now sees the dossier and acts on its step.
    do("sxd.cv", "complete", {"note": "Thống nhất"}, step="lay_y_kien_lien_thong")
    form = do("ts.ktht.cv", "request-supplement", {"missing": ["Bản vẽ móng"], "note": "Thiếu bản vẽ móng"},
              step="tham_dinh")["form"]
    assert form["form"] == "02" and form["missing"] == ["Bản vẽ móng"]
    api_clock.now = vn(2025, 5, 14, 8, 0)
    assert do("ts.motcua", "supplement", {"note": "Đã nộp"})["status"] == "processing"
    do("ts.ktht.cv", "complete", {"decision": "dat"}, step="tham_dinh")
    do("ts.ktht.cv", "complete", {}, step="kiem_tra_hien_truong")
    do("ts.ktht.ld", "complete", {"decision": "dong_y"}, step="truong_phong_duyet")
    assert do("ts.ubnd.ld", "extend", {"reason": "Chờ họp", "extra_working_days": 3})["form"]["form"] == "04"
    again = do("ts.ubnd.ld", "extend", {"reason": "lần hai", "extra_working_days": 1}, status=409)
    assert again["detail"] == "already_extended"
    do("ts.ubnd.ld", "complete", {"decision": "dong_y"}, step="ky_giay_phep")
    assert do("ts.motcua", "return")["status"] == "returned"


def test_errors_are_problem_json_in_vietnamese(client):
    counter = client("pp.motcua")
    r = counter.post("/api/dossiers", json={"procedure_code": "2.000815",
                                            "applicant": dict(APPLICANT, citizen_id="123"), "components": ["TP1", "TP2"]})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "citizen_id_invalid" and "12 chữ số" in r.json()["title"]
    incomplete = counter.post("/api/dossiers", json={"procedure_code": "1.001193", "applicant": APPLICANT,
                                                     "components": []})
    assert incomplete.status_code == 422 and incomplete.json()["data"]["form"] == "02"
    bad_body = counter.post("/api/dossiers", json={"procedure_code": "2.000815", "applicant": {}})
    assert bad_body.status_code == 422 and bad_body.json()["detail"] == "validation_failed"
    assert counter.get("/api/khong-co").headers["content-type"].startswith("application/problem+json")
    missing = counter.get("/api/dossiers/KHONG-CO-HO-SO")
    assert missing.status_code == 404 and missing.json()["detail"] == "dossier_not_found"


def test_tokens_refresh_and_throttled_login(client, api_clock):
    anonymous = client()
    assert anonymous.get("/api/inbox").status_code == 401
    r = anonymous.post("/api/auth/token", data={"username": "pp.cv", "password": "mat-khau-thu-nghiem"})
    tokens = r.json()
    me = anonymous.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["unit"]["code"] == "TS-PP"
    api_clock.now += timedelta(minutes=16)                   # access tokens live 15 minutes
    expired = anonymous.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert expired.status_code == 401 and expired.json()["detail"] == "token_expired"
    renewed = anonymous.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200
    reused = anonymous.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401                          # rotated: a refresh token is spent once
    for _ in range(5):
        bad = anonymous.post("/api/auth/token", data={"username": "tv.cv", "password": "sai-mat-khau"})
        assert bad.status_code == 401
    blocked = anonymous.post("/api/auth/token", data={"username": "tv.cv", "password": "mat-khau-thu-nghiem"})
    assert blocked.status_code == 429 and blocked.json()["detail"] == "too_many_attempts"
    api_clock.now += timedelta(minutes=16)
    assert anonymous.post("/api/auth/token", data={"username": "tv.cv",
                                                   "password": "mat-khau-thu-nghiem"}).status_code == 200


def test_citizen_lookup_discloses_only_status(client):
    counter = client("pp.motcua")
    receipt = counter.post("/api/dossiers", json={"procedure_code": "2.000815", "applicant": APPLICANT,
                                                  "components": ["TP1", "TP2"]}).json()["receipt"]
    anonymous = client()
    by_id = anonymous.get("/api/lookup", params={"code": receipt["code"], "id_last4": "4321"})
    assert by_id.status_code == 200
    assert set(by_id.json()) == {"code", "procedure", "status", "received_at", "appointment", "finished_at", "missing"}
    by_code = anonymous.get("/api/lookup", params={"code": receipt["code"], "lookup_code": receipt["lookup_code"]})
    assert by_code.json()["status"] == "processing"
    wrong = anonymous.get("/api/lookup", params={"code": receipt["code"], "id_last4": "9999"})
    assert wrong.status_code == 404
    codes = [anonymous.get("/api/lookup", params={"code": "X", "id_last4": "0000"}).status_code for _ in range(30)]
    assert codes[-1] == 429


def test_bad_values_answer_4xx_never_500(client):
    counter = client("pp.motcua")
    assert counter.get("/api/dossiers/%00").status_code in (404, 422)
    nul = counter.post("/api/dossiers", json={"procedure_code": "2.000815\x00", "applicant": APPLICANT,
                                              "components": ["TP1", "TP2"]})
    assert nul.status_code in (404, 422) and nul.headers["content-type"].startswith("application/problem+json")
    assert counter.get("/api/dossiers", params={"due_before": "2025-05-01T00:00:00"}).json()["detail"] == \
        "naive_datetime"
    assert counter.get("/api/dossiers", params={"received_from": "0001-01-01"}).status_code == 422
    assert counter.post("/api/dossiers/X/steps/9223372036854775807/complete", json={}).status_code == 422


def test_intake_cannot_hand_a_dossier_to_another_agency(client):
    r = client("pp.motcua").post("/api/dossiers", json={"procedure_code": "2.000815", "applicant": APPLICANT,
                                                        "components": ["TP1", "TP2"], "handling_unit": "XTS-VHXH"})
    assert r.status_code == 422 and r.json()["detail"] == "handling_unit_foreign"


def test_only_the_receiving_counter_or_a_handling_leader_stops(client):
    code = client("ts.motcua").post("/api/dossiers", json={"procedure_code": "XD.GPXD.01", "applicant": APPLICANT,
                                                           "components": ["TP1", "TP2", "TP3"]}).json()["code"]
    cv = client("ts.ktht.cv")
    act(cv, code, f"steps/{step_id(cv, code, 'tham_dinh')}/complete", {"decision": "lay_y_kien"})
    act(cv, code, f"steps/{step_id(cv, code, 'lay_y_kien_lien_thong')}/transfer", {"to_unit": "BD-SXD"})
    # A leader of another department does not even see it; the handling department's leader stops it.
    assert client("ts.tp.ld").post(f"/api/dossiers/{code}/stop", json={"reason": "x"}).status_code == 404
    assert act(client("ts.ktht.ld"), code, "stop", {"reason": "Công dân rút hồ sơ"})["status"] == "stopped"


def test_metrics_answer_only_the_bearer_of_the_token_when_one_is_set(client):
    from engine.config import set_settings, settings
    anonymous = client()
    assert anonymous.get("/metrics").status_code == 200               # unset: open, for a private scraper
    before = settings()
    set_settings(before.model_copy(update={"metrics_token": "scrape-token-of-the-monitoring-host"}))
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": "scrape-token-of-the-monitoring-host"}):
            r = anonymous.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
            assert r.json()["detail"] == "metrics_token_required" and "motcua_http" not in r.text
        r = anonymous.get("/metrics", headers={"Authorization": "Bearer scrape-token-of-the-monitoring-host"})
        assert r.status_code == 200 and "motcua_http_requests_total" in r.text
    finally:
        set_settings(before)
