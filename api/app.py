"""The HTTP application: routers, errors as application/problem+json, health, metrics, request logs.
Routes hold no business rule; they call engine functions."""
from __future__ import annotations

import hmac
import json
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.routers import accountability, admin, auth, documents, dossiers, inbox, lookup, procedures
from api.web import console as web
from api.web import pages_auth
from engine.config import settings
from engine.db import get_engine
from engine.errors import MotcuaError

log = logging.getLogger("motcua.api")
REQUESTS = Counter("motcua_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("motcua_http_request_seconds", "HTTP request latency", ["method", "route"])
PROBLEM = "application/problem+json"


@asynccontextmanager
async def lifespan(_app: FastAPI):
    """Without a broker (the embedded default) the timers run on a thread of this process."""
    timers = None
    if not settings().broker_url:
        from engine.scheduler import InProcessTimers
        timers = InProcessTimers()
        timers.start()
    yield
    if timers:
        timers.stop()


def create_app(*, timers: bool = True) -> FastAPI:
    app = FastAPI(title="motcua", version="0.1.0", lifespan=lifespan if timers else None,
                  description="Một cửa: tiếp nhận và giải quyết hồ sơ thủ tục hành chính")
    for router in (auth.router, procedures.router, dossiers.router, inbox.router, lookup.router, documents.router,
                   accountability.router, admin.router):
        app.include_router(router)
    _console(app)
    _errors(app)
    _observability(app)
    return app


def _console(app: FastAPI) -> None:
    """The web console at `/` and the citizen lookup page at `/tra-cuu` (api/web)."""
    from fastapi.staticfiles import StaticFiles
    for router in web.routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=pages_auth.static_dir()), name="static")
    app.add_middleware(web.RenewSession)


def problem(status: int, title: str, code: str, **extra) -> JSONResponse:
    body = {"type": f"urn:motcua:error:{code}", "title": title, "status": status, "detail": code, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(web.LoginRequired)
    async def login_required(request: Request, exc: web.LoginRequired):
        return web.login_redirect(request, exc.message)

    @app.exception_handler(MotcuaError)
    async def motcua_error(request: Request, exc: MotcuaError):
        if web.is_console(request):
            return web.error_page(request, exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = JSONResponse(exc.problem(), status_code=exc.status, media_type=PROBLEM, headers=headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        if web.is_console(request):
            return web.error_page(request, web.invalid_request(exc))
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg")}
                  for e in exc.errors()]
        return problem(422, "Dữ liệu gửi lên không hợp lệ: " + "; ".join(f"{e['field']}: {e['message']}"
                                                                          for e in errors)[:500],
                       "validation_failed", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        titles = {404: "Không có địa chỉ này", 405: "Phương thức không được hỗ trợ ở địa chỉ này"}
        if web.is_console(request):
            error = MotcuaError(titles.get(exc.status_code, str(exc.detail)), code=f"http_{exc.status_code}")
            error.status = exc.status_code
            return web.error_page(request, error)
        return problem(exc.status_code, titles.get(exc.status_code, str(exc.detail)), f"http_{exc.status_code}")

    @app.exception_handler(DataError)
    async def bad_data(_request: Request, exc: DataError):
        # The database refused a value the checks let through (a NUL character, a number out of range).
        log.info("data error: %s", exc.orig)
        return problem(422, "Dữ liệu gửi lên có ký tự hoặc giá trị không hợp lệ", "invalid_value")

    @app.exception_handler(IntegrityError)
    async def integrity(_request: Request, exc: IntegrityError):
        # Two requests raced on a unique key: the loser is told to reload, like any version conflict.
        log.info("integrity conflict: %s", exc.orig)
        return problem(409, "Dữ liệu vừa được người khác cập nhật; hãy tải lại và thử lại", "conflict")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        log.exception("unexpected error")
        return problem(500, "Lỗi hệ thống; đã ghi nhận để khắc phục", "internal_error")


class Observe:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): a metric and a log line per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, status[0]).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                state = scope.get("state", {})
                log.info("request", extra={"method": scope["method"], "path": scope["path"], "status": status[0],
                                           "duration_ms": round(elapsed * 1000, 1), "user_id": state.get("user_id"),
                                           "client": (scope.get("client") or ("",))[0]})


class TooLarge:
    """Starlette's request-body limit answers 413 in plain text before any route runs; say it the way the
    rest of the application does (problem+json for the API, a page for the console)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        replaced = False

        async def send_own(message):
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413 and \
                    dict(message.get("headers", [])).get(b"content-type", b"").startswith(b"text/plain"):
                replaced = True
                body, media_type = _too_large(scope["path"])
                await send({"type": "http.response.start", "status": 413,
                            "headers": [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
            elif not replaced:                    # the plain-text body that followed is dropped
                await send(message)
        await self.app(scope, receive, send_own)


def _too_large(path: str) -> tuple[bytes, bytes]:
    limit = settings().max_upload_bytes / (1024 * 1024)
    title = (f"Dữ liệu gửi lên quá lớn: mỗi tệp tối đa {limit:.0f} MB; hãy quét với độ phân giải thấp hơn "
             "(200 dpi) hoặc tách thành nhiều tệp")
    if web.is_console_path(path):
        html = f'<p class="error" role="alert" data-code="request_too_large">{title}</p>'
        return html.encode(), b"text/html; charset=utf-8"
    body = {"type": "urn:motcua:error:request_too_large", "title": title, "status": 413, "detail": "request_too_large"}
    return json.dumps(body, ensure_ascii=False).encode(), PROBLEM.encode()


def _observability(app: FastAPI) -> None:
    app.add_middleware(TooLarge)
    app.add_middleware(Observe)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        checks = {"database": _check_database(), "object_store": _check_store(), "broker": _check_broker()}
        ok = all(v in ("ok", "not configured") for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def metrics(request: Request) -> Response:
        token = settings().metrics_token
        given = request.headers.get("authorization", "")
        if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            refused = problem(401, "Cần mã truy cập số liệu đo: Authorization: Bearer <MOTCUA_METRICS_TOKEN> "
                                   "(metrics need the bearer token)", "metrics_token_required")
            refused.headers["WWW-Authenticate"] = "Bearer"
            return refused
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _check_database() -> str:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:    # reported, not raised: this is what a load balancer polls
        return f"error: {exc.__class__.__name__}"


def _check_store() -> str:
    try:
        from engine.documents import object_store
        object_store().stat("0" * 64)      # answers None for a missing key, raises when unreachable
        return "ok"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"


def _check_broker() -> str:
    url = settings().broker_url
    if not url:
        return "not configured"
    try:
        from kombu import Connection
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return "ok"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"


app = create_app()
