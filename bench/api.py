"""API benchmark: step completions over HTTP against uvicorn on loopback with 32 concurrent clients, versus
the same completions through the engine in-process (one thread) in the same run, on PostgreSQL. Prints
throughput, p50/p95 latency and the ratio.

    python -m bench.api [--completions 600] [--clients 32] [--workers 2] [--pg-url …/motcua_bench]
"""
from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import select, update

from bench.engine import BENCH_PG_URL, ensure_pg_database, prepare

PASSWORD = "bench-password"
APPLICANT = {"full_name": "Nguyễn Văn An", "citizen_id": "052088004321"}


def make_dossiers(url: str, n: int, start: datetime) -> list[tuple[str, int]]:
    """n certified signatures received at the district, each with its appraisal step ready."""
    from engine import dossiers as cmd
    from engine.db import session_scope
    from engine.models import Step, User
    with session_scope(url) as db:
        counter = db.scalar(select(User).where(User.username == "ts.motcua"))
    out = []
    for i in range(n):
        with session_scope(url) as db:
            code = cmd.receive(db, actor=counter, procedure_code="2.000884", applicant=APPLICANT,
                               components=["TP1", "TP2"], now=start + timedelta(seconds=i)).dossier.code
        with session_scope(url) as db:
            step = db.scalar(select(Step.id).join(cmd.D, cmd.D.c.id == Step.dossier_id)
                             .where(cmd.D.c.code == code, Step.state == "ready"))
        out.append((code, step))
    return out


def in_process(url: str, work: list[tuple[str, int]]) -> tuple[float, list[float]]:
    from engine import dossiers as cmd
    from engine.db import session_scope
    from engine.models import User
    with session_scope(url) as db:
        official = db.scalar(select(User).where(User.username == "ts.tp.cv"))
    latencies = []
    start = time.perf_counter()
    for code, step_id in work:
        t = time.perf_counter()
        with session_scope(url) as db:
            cmd.complete_step(db, code=code, actor=official, decision="dat", step_id=step_id)
        latencies.append(time.perf_counter() - t)
    return len(work) / (time.perf_counter() - start), latencies


def over_http(base: str, work: list[tuple[str, int]], clients: int) -> tuple[float, list[float], int]:
    token = httpx.post(f"{base}/api/auth/token", data={"username": "ts.tp.cv", "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    jobs: queue.Queue = queue.Queue()
    for item in work:
        jobs.put(item)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            while True:
                try:
                    code, step_id = jobs.get_nowait()
                except queue.Empty:
                    return
                t = time.perf_counter()
                r = c.post(f"/api/dossiers/{code}/steps/{step_id}/complete", json={"decision": "dat"})
                with lock:
                    latencies.append(time.perf_counter() - t)
                    errors[0] += r.status_code != 200

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(work) / (time.perf_counter() - start), latencies, errors[0]


def start_server(url: str, workers: int, data_dir: str) -> tuple[subprocess.Popen, str]:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MOTCUA_DATABASE_URL": url, "MOTCUA_DATA_DIR": data_dir,
           "MOTCUA_SCAN_INTERVAL_SECONDS": "3600", "MOTCUA_SECRET_KEY": "bench-only-secret-key-of-32-bytes-or-more"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port",
                             str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
                            env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                return proc, base
        except httpx.TransportError:
            try:
                proc.wait(timeout=0.1)
                raise SystemExit("uvicorn exited")
            except subprocess.TimeoutExpired:
                pass
    raise SystemExit("uvicorn did not start")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--completions", type=int, default=600)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pg-url", default=BENCH_PG_URL)
    args = ap.parse_args(argv)
    ensure_pg_database(args.pg_url)
    prepare(args.pg_url)
    from engine.auth import hash_password
    from engine.db import session_scope
    from engine.models import User
    with session_scope(args.pg_url) as db:
        db.execute(update(User).values(password_hash=hash_password(PASSWORD)))
    start = datetime.now(timezone.utc) - timedelta(minutes=5)
    n = args.completions
    work = make_dossiers(args.pg_url, 2 * n + 20, start)
    in_process(args.pg_url, work[:10])                                   # warm-up
    rate_local, lat_local = in_process(args.pg_url, work[10:10 + n])
    with tempfile.TemporaryDirectory() as data_dir:
        proc, base = start_server(args.pg_url, args.workers, data_dir)
        try:
            over_http(base, work[10 + n:20 + n], 4)                      # warm-up: connections, caches
            rate_http, lat_http, errors = over_http(base, work[20 + n:], args.clients)
            p50_http, p95_http = pct(lat_http, 50), pct(lat_http, 95)
            rate_light, lat_light, _ = over_http(base, make_dossiers(args.pg_url, 100, start)[:100], 1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"{n} step completions each way (PostgreSQL; uvicorn with {args.workers} worker processes)")
    print(f"  in-process, one thread:        {rate_local:7.1f}/s  p50 {pct(lat_local, 50):6.1f} ms  "
          f"p95 {pct(lat_local, 95):6.1f} ms")
    print(f"  HTTP, {args.clients} concurrent clients:   {rate_http:7.1f}/s  p50 {p50_http:6.1f} ms  "
          f"p95 {p95_http:6.1f} ms  ({errors} errors; the clients are threads of this process)")
    print(f"  HTTP, one client (latency):    {rate_light:7.1f}/s  p50 {pct(lat_light, 50):6.1f} ms  "
          f"p95 {pct(lat_light, 95):6.1f} ms")
    print(f"  ratio HTTP / in-process throughput: {rate_http / rate_local:.2f}x (target >= 0.5); "
          f"p95 with {args.clients} clients {p95_http:.1f} ms (target < 50 ms)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
