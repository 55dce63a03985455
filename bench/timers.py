"""Timer-scan benchmark: many open deadlines in PostgreSQL, a thousand of them due. Times one scan
(claim + mark + events + accountability, committed) and, in the same run, a naive scan that loads every
open deadline into Python to find the due ones; prints both, the ratio, and the scan time at two sizes
to show it does not grow with the number of open deadlines.

    python -m bench.timers [--open 1000000] [--due 1000] [--runs 3] [--pg-url …/motcua_bench]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from bench.engine import BENCH_PG_URL, ensure_pg_database, prepare

NOW = datetime(2025, 6, 2, 3, 0, tzinfo=timezone.utc)      # 10:00 in Hà Nội


def populate(url: str, n_open: int, n_due: int) -> None:
    """n_open ready steps (each of its own dossier) with a future timer; n_due of them with a warning due."""
    from engine.db import get_engine
    with get_engine(url).begin() as conn:
        ids = conn.execute(text("SELECT (SELECT id FROM procedure_versions ORDER BY id LIMIT 1), "
                                "(SELECT id FROM units WHERE code = 'TS-VP'), (SELECT id FROM units WHERE code = 'TS-TP'), "
                                "(SELECT id FROM users WHERE username = 'ts.motcua')")).one()
        conn.execute(text("TRUNCATE timer_firings, accountability_entries, accountability_records, events, outbox, "
                          "control_sheet, pauses, steps, dossiers RESTART IDENTITY CASCADE"))
        conn.execute(text("""
            INSERT INTO dossiers (code, procedure_version_id, receiving_unit_id, handling_unit_id, received_by_id,
                status, channel, applicant, components, received_at, due_at, budget_minutes, original_due_at,
                supplement_count, workflow_state, last_event_seq, last_event_hash, version)
            SELECT 'BENCH-' || g, :pv, :recv, :handling, :officer, 'processing', 'counter',
                   '{"full_name": "Nguyễn Văn A", "citizen_id": "052088004321"}', '[]',
                   :now - interval '1 day', :now + interval '30 days', 7200, :now + interval '30 days', 0, '{}', 0, '', 1
            FROM generate_series(1, :n) AS g"""), {"pv": ids[0], "recv": ids[1], "handling": ids[2], "officer": ids[3],
                                                   "now": NOW.replace(tzinfo=None), "n": n_open})
        conn.execute(text("""
            INSERT INTO steps (dossier_id, task_id, bpmn_id, name, role, unit_id, state, started_at, due_at, warn_at,
                               next_fire_at)
            SELECT id, md5(id::text), 'tham_dinh', 'Thẩm định hồ sơ', 'specialist', :handling, 'ready',
                   :now - interval '1 day',
                   CASE WHEN id <= :due THEN :now + interval '1 hour' ELSE :now + interval '5 days' END,
                   CASE WHEN id <= :due THEN :now - interval '1 minute' ELSE :now + interval '4 days' END,
                   CASE WHEN id <= :due THEN :now - interval '1 minute' ELSE :now + interval '4 days' END
            FROM dossiers"""), {"handling": ids[2], "now": NOW.replace(tzinfo=None), "due": n_due})
        conn.execute(text("ANALYZE dossiers; ANALYZE steps"))


def rearm(url: str, n_due: int) -> None:
    """Put the due timers back, so every run scans the same work."""
    from engine.db import get_engine
    with get_engine(url).begin() as conn:
        conn.execute(text("DELETE FROM timer_firings; DELETE FROM events; DELETE FROM outbox"))
        conn.execute(text("UPDATE steps SET warned_at = NULL, next_fire_at = :t WHERE id <= :due"),
                     {"t": (NOW - timedelta(minutes=1)).replace(tzinfo=None), "due": n_due})
        conn.execute(text("UPDATE dossiers SET last_event_seq = 0, last_event_hash = '' WHERE id <= :due"),
                     {"due": n_due})


def time_scan(url: str, n_due: int) -> tuple[float, int]:
    from engine.db import session_scope
    from engine.timers import scan
    rearm(url, n_due)
    start = time.perf_counter()
    with session_scope(url) as db:
        result = scan(db, now=NOW, limit=n_due)
    return time.perf_counter() - start, result.warnings


def time_naive(url: str) -> tuple[float, int]:
    from engine.db import session_scope
    from engine.timers import naive_scan_count
    start = time.perf_counter()
    with session_scope(url) as db:
        due = naive_scan_count(db, now=NOW)
    return time.perf_counter() - start, due


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--open", type=int, default=1_000_000, dest="n_open")
    ap.add_argument("--due", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg-url", default=BENCH_PG_URL)
    args = ap.parse_args(argv)
    ensure_pg_database(args.pg_url)
    prepare(args.pg_url)
    sizes = sorted({max(args.n_open // 10, args.due * 2), args.n_open})
    scan_times: dict[int, float] = {}
    for size in sizes:
        t0 = time.perf_counter()
        populate(args.pg_url, size, args.due)
        print(f"{size:,} open deadlines ({args.due:,} due) written in {time.perf_counter() - t0:.1f} s")
        time_scan(args.pg_url, args.due)                         # warm-up: caches, prepared statements
        runs = [time_scan(args.pg_url, args.due) for _ in range(args.runs)]
        assert all(fired == args.due for _, fired in runs), runs
        scan_times[size] = statistics.median(t for t, _ in runs)
        print(f"  scan (claim + mark + events, committed): {scan_times[size] * 1000:8.1f} ms median "
              f"[{', '.join(f'{t * 1000:.1f}' for t, _ in runs)}]")
    rearm(args.pg_url, args.due)
    naive_time, naive_due = time_naive(args.pg_url)
    assert naive_due == args.due
    big = sizes[-1]
    print(f"  naive scan loading all {big:,} open deadlines:  {naive_time * 1000:8.1f} ms (finds only; writes nothing)")
    print(f"ratio naive / scan at {big:,} open: {naive_time / scan_times[big]:.1f}x; "
          f"scan at {big:,} vs {sizes[0]:,} open: {scan_times[big] / scan_times[sizes[0]]:.2f}x "
          f"(target: <= 100 ms for {args.due:,} due, independent of the open count)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
