"""What every console page shares: the Jinja2 templates and their filters (dates as dd/mm/yyyy in the
configured zone, Vietnamese names of roles and states), the signed-cookie session, the CSRF check and
the rendering of errors as pages. The pages call the same engine functions as the JSON API, with the
same user object, so the authorisation is the engine's, never the console's own."""
from __future__ import annotations

import hmac
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from api.deps import Now, Session
from engine import org
from engine.auth import ConsoleSession, Unauthorized, console_user
from engine.config import settings
from engine.errors import Forbidden, MotcuaError
from engine.models import User

HERE = Path(__file__).parent
COOKIE = "motcua_session"
CSRF_HEADER = "X-CSRF-Token"
templates = Jinja2Templates(directory=HERE / "templates")

ROLES_VI = {"counter": "Cán bộ một cửa", "specialist": "Chuyên viên", "leader": "Lãnh đạo",
            "supervisor": "Giám sát", "admin": "Quản trị"}
STATUSES_VI = {"processing": "Đang giải quyết", "waiting_supplement": "Chờ bổ sung",
               "result_ready": "Chờ trả kết quả", "returned": "Đã trả kết quả", "refused": "Từ chối giải quyết",
               "stopped": "Dừng giải quyết"}
SLA_VI = {"on_track": "Trong hạn", "due_soon": "Đến hạn trong 1 ngày làm việc", "overdue": "Quá hạn"}
TIMING_VI = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn"}
STEP_STATES_VI = {"ready": "Đang chờ xử lý", "completed": "Đã xong", "waiting": "Chưa đến", "cancelled": "Đã hủy"}


def _zone() -> ZoneInfo:
    return ZoneInfo(settings().timezone)


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def vn_datetime(value: Any) -> str:
    """dd/mm/yyyy HH:MM in Asia/Ho_Chi_Minh (or the configured zone)."""
    moment = _as_datetime(value)
    return moment.astimezone(_zone()).strftime("%d/%m/%Y %H:%M") if moment else ""


def vn_date(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.strftime("%d/%m/%Y")
    return _as_datetime(value).astimezone(_zone()).strftime("%d/%m/%Y")


def iso(value: Any) -> str:
    moment = _as_datetime(value)
    return moment.isoformat() if moment else ""


templates.env.filters.update(vn_datetime=vn_datetime, vn_date=vn_date, iso=iso,
                             role_vi=lambda r: ROLES_VI.get(r, r), status_vi=lambda s: STATUSES_VI.get(s, s),
                             sla_vi=lambda s: SLA_VI.get(s, s), timing_vi=lambda t: TIMING_VI.get(t, t or ""),
                             step_state_vi=lambda s: STEP_STATES_VI.get(s, s))


# --- the session ------------------------------------------------------------------------------------

class LoginRequired(Exception):
    """Raised by a page dependency when there is no valid session: answered with the login page."""

    def __init__(self, message: str | None = None):
        self.message = message


class Viewer:
    """The signed-in user as a page sees them: the engine's User plus what the header shows."""

    def __init__(self, user: User, unit: org.UnitInfo, csrf: str):
        self.user, self.unit, self.csrf = user, unit, csrf

    @property
    def role(self) -> str:
        return self.user.role


def get_viewer(request: Request, db: Session, now: Now) -> Viewer:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired()
    try:
        session: ConsoleSession = console_user(db, token, now)
    except Unauthorized as exc:
        raise LoginRequired(exc.message)
    request.state.user_id = session.user.id
    if session.renewed:
        request.state.renewed_session = session.renewed
    if request.method not in ("GET", "HEAD") and not _csrf_ok(request, session.csrf):
        raise Forbidden("Biểu mẫu đã cũ hoặc không đến từ trang của hệ thống; hãy tải lại trang và thử lại",
                        code="csrf_failed")
    return Viewer(session.user, org.unit(db, session.user.unit_id), session.csrf)


def _csrf_ok(request: Request, expected: str) -> bool:
    """htmx sends the token as a header; plain forms carry it in a hidden field (read by the route)."""
    sent = request.headers.get(CSRF_HEADER) or getattr(request.state, "form_csrf", None)
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


async def read_form_csrf(request: Request) -> None:
    """Read the hidden field before get_viewer checks it (form bodies are parsed once and cached)."""
    if request.method not in ("GET", "HEAD") and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        request.state.form_csrf = form.get("csrf")


def viewer_dependency(request: Request, _csrf: Annotated[None, Depends(read_form_csrf)], db: Session,
                      now: Now) -> Viewer:
    return get_viewer(request, db, now)


CurrentViewer = Annotated[Viewer, Depends(viewer_dependency)]


def require_role(*roles: str):
    """A page for some roles only; others get the same 403 page the API would answer."""
    def check(viewer: CurrentViewer) -> Viewer:
        if viewer.role not in roles:
            raise Forbidden("Trang này không dành cho vai trò của bạn", code="role_not_allowed")
        return viewer
    return Depends(check)


def _secure(scheme: str | None) -> bool:
    """Send the cookie over HTTPS only when the console is served over HTTPS: directly, or behind a proxy
    that ends TLS (then MOTCUA_PUBLIC_URL, the address people use, says https)."""
    return scheme == "https" or settings().public_url.startswith("https://")


def set_session_cookie(response: Response, token: str, request: Request) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=_secure(request.url.scheme), path="/")


class RenewSession:
    """ASGI middleware: a page that slid the idle window sends the fresh cookie with its answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_cookie(message):
            renewed = scope.get("state", {}).get("renewed_session")
            if message["type"] == "http.response.start" and renewed:
                secure = "; Secure" if _secure(scope.get("scheme")) else ""
                cookie = f"{COOKIE}={renewed}; HttpOnly; Path=/; SameSite=lax{secure}"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)
        await self.app(scope, receive, send_with_cookie)


# --- rendering --------------------------------------------------------------------------------------

def render(request: Request, template: str, viewer: Viewer | None = None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"viewer": viewer, **context}, status_code=status_code)


def is_console(request: Request) -> bool:
    return is_console_path(request.url.path)


def is_console_path(path: str) -> bool:
    """A console page (HTML), as opposed to the JSON API, the health routes, the docs and static files."""
    return not (path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/redoc")
                or path.startswith("/docs") or path.startswith("/static/"))


def login_redirect(request: Request, message: str | None = None) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/login?next={quote(target, safe='')}"
    if message:
        url += "&expired=1"
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": url})   # htmx follows it as a full page
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, exc: MotcuaError) -> HTMLResponse:
    """An engine error on a console page: the message where the user is looking. For htmx requests, a
    fragment the page shows next to the form that was sent (see console.js)."""
    if request.headers.get("HX-Request"):
        return render(request, "_error.html", status_code=exc.status, error=exc)
    return render(request, "error.html", _signed_in(request), status_code=exc.status, error=exc)


def _signed_in(request: Request) -> Viewer | None:
    """The header of an error page still says who is signed in (when someone is)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    from api.deps import get_now
    from engine.db import session_factory
    from engine.dossiers import utcnow
    clock = request.app.dependency_overrides.get(get_now)     # the tests' clock, when they set one
    with session_factory()() as db:
        try:
            session = console_user(db, token, clock() if clock else utcnow())
        except Unauthorized:
            return None
        return Viewer(session.user, org.unit(db, session.user.unit_id), session.csrf)


def field_errors(exc: MotcuaError) -> dict[str, str]:
    """{field name: message} for an error that concerns one field (data["field"]), else {"_": message}."""
    field = (exc.data or {}).get("field") if isinstance(exc.data, dict) else None
    return {field or "_": exc.message}


def safe_next(target: str | None) -> str:
    """Only a path of this site after login (an open redirect would help phishing)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def hidden_csrf(viewer: Viewer) -> Markup:
    return Markup(f'<input type="hidden" name="csrf" value="{viewer.csrf}">')


templates.env.globals.update(hidden_csrf=hidden_csrf)


def invalid_request(exc) -> MotcuaError:
    """FastAPI's validation error as an engine error (a form field out of bounds, a bad query value)."""
    from engine.errors import InvalidInput
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors()]
    return InvalidInput("Dữ liệu nhập không hợp lệ: " + "; ".join(parts)[:400], code="validation_failed")


def routers() -> list:
    """Every console router, in the order their paths must be matched."""
    from api.web import pages_auth, pages_dossier, pages_inbox, pages_intake, pages_lookup, pages_supervision
    return [pages_auth.router, pages_intake.router, pages_lookup.router, pages_inbox.router, pages_dossier.router,
            pages_supervision.router]
