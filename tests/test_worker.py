"""A real Celery worker on the local Redis runs the deadline scan and the outbox delivery."""
from __future__ import annotations

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, select

from engine.config import Settings, set_settings, settings
from engine.models import TimerFiring
from tests.conftest import vn
from tests.test_lifecycle import receive

BROKER = "redis://127.0.0.1:6379/15"


@pytest.fixture
def celery_app():
    try:
        redis.Redis.from_url(BROKER).ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (the CI script starts it)")
    before = settings()
    set_settings(Settings(**{**before.model_dump(), "broker_url": BROKER}))
    from engine.worker import make_app
    app = make_app()
    app.conf.update(result_backend=BROKER, task_ignore_result=False)
    try:
        yield app
    finally:
        set_settings(before)


def test_worker_scans_and_delivers(db, users, celery_app):
    # Received in 2024: by the wall clock the worker uses, every timer of it is long due.
    receive(db, users, officer="ts.motcua", at=vn(2024, 3, 5, 9, 0))
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        scanned = celery_app.send_task("motcua.scan_deadlines").get(timeout=60)
        delivered = celery_app.send_task("motcua.deliver_outbox").get(timeout=60)
    assert (scanned["warnings"], scanned["overdue"], scanned["accountability"]) == (2, 2, 1)
    assert delivered == {"delivered": 0, "retried": 0, "failed": 0}      # no channel configured: waiting
    db.rollback()
    assert db.scalar(select(func.count()).select_from(TimerFiring)) == 4
