"""Console sign-in: the session cookie, its idle expiry, CSRF on every change, the header that always
shows who is working, and the same 401 throttle as the API."""
from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.api_support import PASSWORD

pytest_plugins = ["tests.api_support", "tests.browser_support"]


@pytest.fixture
def web(app):
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def sign_in(web: TestClient, username: str, password: str = PASSWORD):
    return web.post("/login", data={"username": username, "password": password, "next": "/inbox"})


def test_login_sets_an_http_only_session_and_redirects_to_next(web):
    r = sign_in(web, "ts.tp.cv")
    assert r.status_code == 303 and r.headers["location"] == "/inbox"
    cookie = r.headers["set-cookie"]
    assert "motcua_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()


def test_wrong_password_is_shown_on_the_form_and_sets_no_cookie(web):
    r = sign_in(web, "ts.tp.cv", "sai-mat-khau")
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert "Tên đăng nhập hoặc mật khẩu không đúng" in r.text


def test_a_page_without_session_redirects_to_login_with_the_way_back(web):
    r = web.get("/?state=overdue")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2F%3Fstate%3Doverdue"


def test_open_redirect_after_login_is_refused(web):
    r = web.post("/login", data={"username": "ts.tp.cv", "password": PASSWORD, "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


def test_session_expires_after_thirty_idle_minutes(web, api_clock):
    sign_in(web, "ts.tp.cv")
    assert web.get("/").status_code == 303 and web.get("/").headers["location"] == "/inbox"
    api_clock.now += timedelta(minutes=29)
    r = web.get("/")                                  # activity slides the window
    assert r.status_code == 303 and r.headers["location"] == "/inbox"
    api_clock.now += timedelta(minutes=29)
    assert web.get("/").headers["location"] == "/inbox"
    api_clock.now += timedelta(minutes=31)
    r = web.get("/")
    assert r.headers["location"].startswith("/login?next=") and "expired=1" in r.headers["location"]


def test_session_ends_at_the_absolute_limit_even_when_active(web, api_clock):
    sign_in(web, "ts.tp.cv")
    for _ in range(21):                                # 21 × 29 min > 10 h
        api_clock.now += timedelta(minutes=29)
        last = web.get("/")
    assert last.headers["location"].startswith("/login")


def test_a_disabled_user_is_signed_out_at_the_next_request(web, db_url):
    from sqlalchemy import update
    from engine.db import session_scope
    from engine.models import User
    sign_in(web, "ts.tp.cv")
    with session_scope(db_url) as s:
        s.execute(update(User).where(User.username == "ts.tp.cv").values(active=False))
    try:
        assert web.get("/").headers["location"].startswith("/login")
    finally:
        with session_scope(db_url) as s:
            s.execute(update(User).where(User.username == "ts.tp.cv").values(active=True))


def test_a_change_without_the_csrf_token_is_refused(web):
    sign_in(web, "ts.tp.cv")
    r = web.post("/logout")
    assert r.status_code == 403 and "Biểu mẫu đã cũ" in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_an_unknown_console_address_is_an_html_page_and_the_api_stays_json(web):
    sign_in(web, "ts.tp.cv")
    page = web.get("/khong-co")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    api = web.get("/api/khong-co")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"


def test_vendor_files_come_from_npm_and_nothing_else_is_served(web):
    assert web.get("/static/vendor/htmx.min.js").status_code == 200
    assert web.get("/static/vendor/bpmn-navigated-viewer.js").status_code == 200
    assert web.get("/static/vendor/../../package.json").status_code == 404
    assert web.get("/static/vendor/bpmn-js/package.json").status_code == 404


@pytest.mark.browser
def test_login_in_the_browser_shows_name_role_and_unit(new_page, shot):
    page = new_page()
    page.goto("/login")
    shot(page, "login")
    page.get_by_label("Tên đăng nhập").fill("ts.tp.cv")
    page.get_by_label("Mật khẩu").fill("sai-mat-khau")
    page.get_by_role("button", name="Đăng nhập").click()
    assert "không đúng" in page.get_by_role("alert").inner_text()
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    who = page.get_by_test_id("who").inner_text()
    assert "Lê Thị Hoa" in who and "Chuyên viên" in who and "Tư pháp" in who
    shot(page, "after-login")
    page.get_by_role("button", name="Đăng xuất").click()
    assert "/login" in page.url


def test_a_body_over_the_limit_is_told_in_the_console_s_words():
    """Starlette's body limit answers in plain English text; the console shows its own message instead."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from api.app import TooLarge
    inner = Starlette(routes=[Route("/intake", lambda request: PlainTextResponse("Content Too Large", 413),
                                    methods=["POST"])])
    with TestClient(TooLarge(inner)) as c:
        r = c.post("/intake", content=b"x")
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
    assert "quá lớn" in r.text and "Content Too Large" not in r.text


def test_behind_a_tls_proxy_the_session_cookie_is_https_only(web):
    from engine.config import set_settings, settings
    before = settings()
    set_settings(before.model_copy(update={"public_url": "https://motcua.gialai.gov.vn"}))
    try:
        r = sign_in(web, "ts.tp.cv")
    finally:
        set_settings(before)
    assert "Secure" in r.headers["set-cookie"]
    assert "Secure" not in sign_in(web, "ts.tp.cv").headers["set-cookie"]      # plain http: a test set-up
