"""Login, logout, the start page for each role, and the front-end packages installed from npm."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.deps import Now, Session, commit
from api.web.console import (COOKIE, HERE, CurrentViewer, render, safe_next, set_session_cookie)
from engine.auth import console_login
from engine.errors import MotcuaError, NotFound

router = APIRouter(include_in_schema=False)

START_PAGE = {"counter": "/intake", "specialist": "/inbox", "leader": "/inbox", "supervisor": "/supervision",
              "admin": "/inbox"}

# npm packages (api/web/package.json, installed by `make install`): only these files are served.
NODE_MODULES = HERE / "node_modules"
VENDOR = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "bpmn-navigated-viewer.js": "bpmn-js/dist/bpmn-navigated-viewer.production.min.js",
    "bpmn-js.css": "bpmn-js/dist/assets/bpmn-js.css",
    "diagram-js.css": "bpmn-js/dist/assets/diagram-js.css",
    "bpmn-font/css/bpmn-embedded.css": "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css",
}


@router.get("/")
def home(viewer: CurrentViewer) -> Response:
    return RedirectResponse(START_PAGE.get(viewer.role, "/inbox"), status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None, expired: int = 0) -> Response:
    message = "Phiên làm việc đã hết hạn; hãy đăng nhập lại" if expired else None
    return render(request, "login.html", next=safe_next(next), notice=message, errors={}, username="")


@router.post("/login")
def login(request: Request, db: Session, now: Now, username: Annotated[str, Form(max_length=64)] = "",
          password: Annotated[str, Form(max_length=256)] = "", next: Annotated[str, Form(max_length=500)] = "/"
          ) -> Response:
    errors = {}
    if not username.strip():
        errors["username"] = "Nhập tên đăng nhập"
    if not password:
        errors["password"] = "Nhập mật khẩu"
    if not errors:
        client = request.client.host if request.client else "unknown"
        try:
            token = console_login(db, username=username.strip(), password=password, client=client, now=now)
        except MotcuaError as exc:
            commit(db)                  # the failed attempt counts towards the throttle
            errors["_"] = exc.message
        else:
            commit(db)
            response = RedirectResponse(safe_next(next), status_code=303)
            set_session_cookie(response, token, request)
            return response
    return render(request, "login.html", status_code=422 if "_" not in errors else 401, next=safe_next(next),
                  errors=errors, username=username, notice=None)


@router.post("/logout")
def logout(viewer: CurrentViewer) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/static/vendor/{name:path}")
def vendor(name: str) -> Response:
    relative = VENDOR.get(name)
    path = NODE_MODULES / relative if relative else None
    if path is None or not path.is_file():
        raise NotFound("Không có tệp này; nếu là thư viện giao diện, hãy chạy `make install` (npm ci)",
                       code="asset_not_found")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


def static_dir() -> Path:
    return HERE / "static"
