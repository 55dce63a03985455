"""In-process timers for the embedded default (no broker): a daemon thread that runs the deadline scan
and the outbox delivery every `scan_interval_seconds`, the same functions the Celery tasks call."""
from __future__ import annotations

import logging
import threading

from engine.config import settings
from engine.worker import deliver_outbox, scan_deadlines

log = logging.getLogger("motcua.scheduler")


class InProcessTimers:
    def __init__(self, interval: float | None = None):
        self.interval = interval or settings().scan_interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="motcua-timers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for job in (scan_deadlines, deliver_outbox):
                try:
                    job()
                except Exception:      # keep the timers alive; the next round retries
                    log.exception("in-process %s failed", job.__name__)
            self._stop.wait(self.interval)
