"""Celery: the deadline scan and outbox delivery as periodic tasks. Tasks are thin shells around engine
functions. With MOTCUA_BROKER_URL unset (the embedded default) there is no broker: `motcua serve` runs the
same functions on a thread (engine.scheduler)."""
from __future__ import annotations

from celery import Celery

from engine.config import settings
from engine.db import session_factory
from engine.dossiers import utcnow
from engine.notify import deliver_pending
from engine.timers import scan_all


def make_app() -> Celery:
    s = settings()
    app = Celery("motcua", broker=s.broker_url or "memory://")
    app.conf.update(
        task_always_eager=s.broker_url is None,
        task_ignore_result=True,
        task_acks_late=True,              # a worker killed mid-task leaves it to be redelivered
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        beat_schedule={
            "scan-deadlines": {"task": "motcua.scan_deadlines", "schedule": float(s.scan_interval_seconds)},
            "deliver-outbox": {"task": "motcua.deliver_outbox", "schedule": float(s.scan_interval_seconds)},
        })
    app.task(name="motcua.scan_deadlines")(scan_deadlines)
    app.task(name="motcua.deliver_outbox")(deliver_outbox)
    return app


def scan_deadlines() -> dict:
    return scan_all(now=utcnow()).as_dict()


def deliver_outbox() -> dict:
    result = deliver_pending(session_factory(), now=utcnow())
    return {"delivered": result.delivered, "retried": result.retried, "failed": result.failed}


app = make_app()
