"""The HTTP application. Small for now: health, readiness and the procedure catalog (read-only).
Routes hold no business rule; they call engine functions."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from engine.db import get_engine, session_scope
from engine.errors import MotcuaError
from engine.models import ProcedureVersion

@asynccontextmanager
async def lifespan(_app: FastAPI):
    """Without a broker (the embedded default) the timers run on a thread of this process."""
    from engine.config import settings
    timers = None
    if not settings().broker_url:
        from engine.scheduler import InProcessTimers
        timers = InProcessTimers()
        timers.start()
    yield
    if timers:
        timers.stop()


app = FastAPI(title="motcua", description="Một cửa: hồ sơ thủ tục hành chính", version="0.1.0",
              lifespan=lifespan)


@app.exception_handler(MotcuaError)
async def motcua_error(_request: Request, exc: MotcuaError) -> JSONResponse:
    return JSONResponse(exc.problem(), status_code=exc.status, media_type="application/problem+json")


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@app.get("/readyz")
def readyz() -> JSONResponse:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:   # report, don't crash: this is what a load balancer polls
        return JSONResponse({"status": "unavailable", "database": str(exc.__class__.__name__)}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@app.get("/api/procedures")
def procedures() -> list[dict]:
    with session_scope() as db:
        rows = db.scalars(select(ProcedureVersion).order_by(ProcedureVersion.code, ProcedureVersion.version))
        return [{"code": r.code, "version": r.version, "name": r.name, "field": r.field,
                 "effective_from": r.effective_from, "effective_to": r.effective_to,
                 "time_limit": r.definition.get("time_limit"), "sha256": r.sha256} for r in rows]
