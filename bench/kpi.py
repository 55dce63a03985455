"""Indicator benchmark: a year of dossiers (1,000,000 by default) spread over 150 units in PostgreSQL, with
their documents, results, payments, ratings, feedback and work files. Times the full indicator table for the
year by unit (engine.kpi.indicators: grouped SQL) and, in the same run, the same computation done by loading
the rows into Python; checks that both give the same numbers; prints both times and the ratio.

    python -m bench.kpi [--dossiers 1000000] [--runs 3] [--pg-url postgresql+psycopg://…/motcua_bench]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from datetime import date

from sqlalchemy import and_, or_, select, text

from bench.engine import BENCH_PG_URL, ensure_pg_database, prepare

ROOT = "BENCH"
START, END = date(2025, 1, 1), date(2026, 1, 1)
DISTRICTS, CHILDREN = 10, 14              # 10 districts of 14 units each: 150 units under the root


def populate(url: str, n: int) -> None:
    """Units, then everything else with INSERT … SELECT over generate_series: deterministic, no Python loop."""
    from engine.db import get_engine
    from engine.org import invalidate_units
    with get_engine(url).begin() as conn:
        ts = conn.execute(text("SELECT id FROM units WHERE code = 'TS'")).scalar()
        officer = conn.execute(text("SELECT id FROM users WHERE username = 'ts.motcua'")).scalar()
        conn.execute(text("INSERT INTO units (code, name, level, one_stop, fields, org_set, sample, parent_id) "
                          "VALUES (:c, 'Tỉnh mẫu (đo hiệu năng)', 'province', false, '[]', 'bench', true, NULL)"),
                     {"c": ROOT})
        conn.execute(text("""
            INSERT INTO units (code, name, level, one_stop, fields, org_set, sample, parent_id)
            SELECT 'BENCH-D' || lpad(d::text, 2, '0'), 'Huyện mẫu ' || d, 'district', true, '[]', 'bench', true,
                   (SELECT id FROM units WHERE code = :root)
            FROM generate_series(1, :districts) d"""), {"root": ROOT, "districts": DISTRICTS})
        conn.execute(text("""
            INSERT INTO units (code, name, level, one_stop, fields, org_set, sample, parent_id)
            SELECT p.code || '-' || lpad(c::text, 2, '0'), 'Đơn vị mẫu ' || p.code || '-' || c,
                   CASE WHEN c % 3 = 0 THEN 'commune' ELSE 'department' END, false, '[]', 'bench', true, p.id
            FROM units p, generate_series(1, :children) c WHERE p.code LIKE 'BENCH-D%'"""), {"children": CHILDREN})
        # Lookup tables for the generators: unit k (0..149) and procedure version k with its component lists.
        conn.execute(text("CREATE TEMP TABLE bu AS SELECT (row_number() OVER (ORDER BY id) - 1)::int AS k, id "
                          "FROM units WHERE code LIKE 'BENCH-%'"))
        conn.execute(text("""
            CREATE TEMP TABLE bv AS
            SELECT (row_number() OVER (ORDER BY id) - 1)::int AS k, id,
                   (SELECT json_agg(c->>'code') FROM json_array_elements(definition->'components') c
                    WHERE (c->>'required')::boolean) AS required,
                   (SELECT json_agg(c->>'code') FROM json_array_elements(definition->'components') c) AS every
            FROM procedure_versions"""))
        units = conn.execute(text("SELECT count(*) FROM bu")).scalar()
        versions = conn.execute(text("SELECT count(*) FROM bv")).scalar()
        # A year of receipts; 60% online; 1 in 20 stopped, 1 in 20 refused, 2 in 20 open, the rest granted;
        # finished 0–71 hours after receipt against a 48-hour appointment; some supplements and extensions.
        conn.execute(text("""
            INSERT INTO dossiers (code, procedure_version_id, receiving_unit_id, handling_unit_id, received_by_id,
                status, channel, applicant, components, received_at, due_at, budget_minutes, original_due_at,
                supplement_count, extended_at, unextended_due_at, finished_at, outcome, workflow_state,
                last_event_seq, last_event_hash, version)
            SELECT 'B-' || g, v.id, :ts, u.id, :officer,
                   CASE WHEN g % 20 = 0 THEN 'stopped' WHEN g % 20 = 1 THEN 'refused'
                        WHEN g % 20 IN (2, 3) THEN 'processing' ELSE 'returned' END,
                   CASE WHEN g % 10 < 6 THEN 'online' WHEN g % 10 = 6 THEN 'post' ELSE 'counter' END,
                   '{"full_name": "Nguyễn Văn A", "citizen_id": "052088004321"}',
                   CASE WHEN g % 4 = 0 THEN v.every ELSE v.required END,
                   r.at, r.at + interval '48 hours' + CASE WHEN g % 31 = 0 THEN interval '24 hours' ELSE interval '0' END,
                   960, r.at + interval '48 hours',
                   CASE WHEN g % 17 = 0 THEN 2 WHEN g % 17 < 4 THEN 1 ELSE 0 END,
                   CASE WHEN g % 31 = 0 THEN r.at + interval '40 hours' END,
                   CASE WHEN g % 31 = 0 THEN r.at + interval '48 hours' END,
                   CASE WHEN g % 20 NOT IN (2, 3) THEN r.at + ((g * 13) % 72) * interval '1 hour' END,
                   CASE WHEN g % 20 = 0 THEN 'stopped' WHEN g % 20 = 1 THEN 'refused'
                        WHEN g % 20 IN (2, 3) THEN NULL ELSE 'granted' END,
                   '', 0, '', 1
            FROM generate_series(1, :n) g
            JOIN bu u ON u.k = g % :units
            JOIN bv v ON v.k = (g / :units) % :versions
            CROSS JOIN LATERAL (SELECT timestamp '2024-12-31 17:00' + ((g * 7919::bigint) % 525600) * interval '1 minute'
                                AS at) r"""),
                     {"ts": ts, "officer": officer, "n": n, "units": units, "versions": versions})
        # Documents: a pool of component files; every 10th dossier files none, others miss one in nine
        # components; 1 in 5 links is reused from the data store. Results for 4 in 5 granted dossiers.
        conn.execute(text("""
            INSERT INTO documents (sha256, size, pages, kind, component_code, name, owner_id, digitized, original_type,
                                   signed, created_at)
            SELECT md5(g::text) || md5(g::text), 1000, 1, 'component', 'TP1', 'Giấy tờ ' || g, '052088004321', true,
                   'pdf', false, timestamp '2024-12-01'
            FROM generate_series(1, 1000) g"""))
        conn.execute(text("""
            INSERT INTO dossier_documents (dossier_id, document_id, component_code, reused, attached_at, attached_by_id)
            SELECT d.id, (d.id * 7 + e.ord) % 1000 + 1, e.code, (d.id + e.ord) % 5 = 0, d.received_at, :officer
            FROM dossiers d CROSS JOIN LATERAL json_array_elements_text(d.components) WITH ORDINALITY AS e(code, ord)
            WHERE d.id % 10 <> 0 AND (d.id + e.ord) % 9 <> 0"""), {"officer": officer})
        conn.execute(text("""
            INSERT INTO documents (sha256, size, pages, kind, name, owner_id, source_dossier_id, digitized, original_type,
                                   signed, created_at)
            SELECT md5(id::text) || md5(code), 20000, 1, 'result', code || '-KQ1', '052088004321', id, false, 'pdf',
                   true, finished_at
            FROM dossiers WHERE outcome = 'granted' AND id % 5 <> 0"""))
        conn.execute(text("""
            INSERT INTO payments (dossier_id, amount, online, paid_at, recorded_by_id, recorded_at)
            SELECT d.id, 10000, d.id % 4 <> 0, d.received_at, :officer, d.received_at
            FROM dossiers d JOIN procedure_versions v ON v.id = d.procedure_version_id
            WHERE (v.definition->'fee'->>'amount')::int > 0 AND d.id % 7 <> 0"""), {"officer": officer})
        conn.execute(text("""
            INSERT INTO ratings (dossier_id, rating, via, rated_at)
            SELECT id, CASE WHEN id % 10 < 8 THEN 'satisfied' WHEN id % 10 = 8 THEN 'normal' ELSE 'not_satisfied' END,
                   'lookup', finished_at + interval '1 hour'
            FROM dossiers WHERE status = 'returned' AND id % 3 = 0"""))
        conn.execute(text("""
            INSERT INTO feedback (unit_id, content, sender_name, state, received_at, due_at, closed_at, answer)
            SELECT u.id, 'Phản ánh ' || g, 'Người dân', CASE WHEN g % 10 = 0 THEN 'received' ELSE 'answered' END,
                   r.at, r.at + interval '21 days',
                   CASE WHEN g % 10 <> 0 THEN r.at + ((g * 11) % 25) * interval '1 day' END, 'Đã trả lời'
            FROM generate_series(1, :n) g JOIN bu u ON u.k = g % :units
            CROSS JOIN LATERAL (SELECT timestamp '2024-12-31 17:00' + ((g * 7919::bigint) % 525600) * interval '1 minute'
                                AS at) r"""), {"n": max(n // 50, 100), "units": units})
        conn.execute(text("""
            INSERT INTO work_files (unit_id, title, electronic, created_at, recorded_by_id, recorded_at)
            SELECT u.id, 'Hồ sơ công việc ' || g, g % 4 <> 0, r.at, :officer, r.at
            FROM generate_series(1, :n) g JOIN bu u ON u.k = g % :units
            CROSS JOIN LATERAL (SELECT timestamp '2024-12-31 17:00' + ((g * 7919::bigint) % 525600) * interval '1 minute'
                                AS at) r"""), {"n": max(n // 7, 100), "units": units, "officer": officer})
    with get_engine(url).connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    invalidate_units()


# --- the same computation in Python -----------------------------------------------------------------

def python_indicators(db, *, unit_code: str, start: date, end: date) -> dict[int, Counter]:
    """Every unit's own counts (before the roll-up), from rows loaded into Python: what engine.kpi does
    in the database, done the way a report that loads its dossiers would do it."""
    from engine import kpi, org
    from engine.accountability import subtree_ids
    D, LINK, DOC, PAY, R, F, W = kpi.D, kpi.LINK, kpi.DOC, kpi.PAY, kpi.R, kpi.F, kpi.W
    facts = kpi.catalog_facts(db)
    unit_ids = subtree_ids(db, org.unit_by_code(db, unit_code).id)
    lo, hi = kpi._instants(start, end)
    filed: dict[int, set[str]] = {}
    reused: set[int] = set()
    for dossier_id, component, was_reused in db.execute(select(LINK.c.dossier_id, LINK.c.component_code, LINK.c.reused)):
        filed.setdefault(dossier_id, set()).add(component)
        if was_reused:
            reused.add(dossier_id)
    results = set(db.scalars(select(DOC.c.source_dossier_id).where(DOC.c.kind == "result")))
    paid = set(db.scalars(select(PAY.c.dossier_id).where(PAY.c.online.is_(True), PAY.c.amount > 0)))
    to_digitize = {v: facts.to_digitize(v) for v in facts.required}
    counts: dict[int, Counter] = {}
    rows = db.execute(select(D.c.id, D.c.handling_unit_id, D.c.procedure_version_id, D.c.channel, D.c.components,
                             D.c.received_at, D.c.finished_at, D.c.status, D.c.outcome, D.c.due_at,
                             D.c.unextended_due_at, D.c.supplement_count)
                      .where(D.c.handling_unit_id.in_(unit_ids),
                             or_(and_(D.c.received_at >= lo, D.c.received_at < hi),
                                 and_(D.c.finished_at >= lo, D.c.finished_at < hi))))
    for r in rows:
        c = counts.setdefault(r.handling_unit_id, Counter())
        if lo <= r.received_at < hi:
            c["received"] += 1
            c["online"] += r.channel == "online"
            needed = to_digitize[r.procedure_version_id] & set(r.components)
            c["digitized"] += needed <= filed.get(r.id, set()) and (r.outcome != "granted" or r.id in results)
            c["reused"] += r.id in reused
            if r.procedure_version_id in facts.fee_versions:
                c["fee_received"] += 1
                c["paid_online"] += r.id in paid
        if r.finished_at is not None and lo <= r.finished_at < hi and r.status != "stopped":
            c["finished"] += 1
            c["on_time"] += r.finished_at <= (r.unextended_due_at or r.due_at) and r.supplement_count <= 1
            if r.outcome == "granted":
                c["granted"] += 1
                c["electronic_result"] += r.id in results
    for unit_id, rating in db.execute(select(D.c.handling_unit_id, R.c.rating).join(D, D.c.id == R.c.dossier_id)
                                      .where(D.c.handling_unit_id.in_(unit_ids), R.c.rated_at >= lo, R.c.rated_at < hi)):
        c = counts.setdefault(unit_id, Counter())
        c["ratings"] += 1
        c["satisfied"] += rating == "satisfied"
    for unit_id, due, closed in db.execute(select(F.c.unit_id, F.c.due_at, F.c.closed_at)
                                           .where(F.c.unit_id.in_(unit_ids), F.c.due_at >= lo, F.c.due_at < hi)):
        c = counts.setdefault(unit_id, Counter())
        c["feedback_due"] += 1
        c["feedback_on_time"] += closed is not None and closed <= due
    for unit_id, electronic in db.execute(select(W.c.unit_id, W.c.electronic)
                                          .where(W.c.unit_id.in_(unit_ids), W.c.created_at >= lo, W.c.created_at < hi)):
        c = counts.setdefault(unit_id, Counter())
        c["work_files"] += 1
        c["work_files_electronic"] += bool(electronic)
    return counts


def python_table(db, **kw):
    """The Python counts made into the same rows (roll-up and rates done by the engine's own code)."""
    from engine import kpi, org
    root = org.unit_by_code(db, kw["unit_code"])
    totals = kpi._roll_up(db, root, python_indicators(db, **kw))
    targets = kpi.load_targets(kw["start"].year)
    return [kpi._row(u.code, u.name, totals[u.id], targets, u.level, parent) for u, parent in kpi._tree(db, root)]


def timed(fn, url: str):
    from engine.db import session_scope
    with session_scope(url) as db:
        t0 = time.perf_counter()
        rows = fn(db, unit_code=ROOT, start=START, end=END)
        return time.perf_counter() - t0, rows


def sql_table(db, **kw):
    from engine.kpi import indicators
    return indicators(db, group_by="unit", **kw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dossiers", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg-url", default=BENCH_PG_URL)
    args = ap.parse_args(argv)
    ensure_pg_database(args.pg_url)
    prepare(args.pg_url)
    t0 = time.perf_counter()
    populate(args.pg_url, args.dossiers)
    print(f"{args.dossiers:,} dossiers over {DISTRICTS * (CHILDREN + 1)} units written in {time.perf_counter() - t0:.1f} s")
    timed(sql_table, args.pg_url)                                  # warm-up: caches, the catalog facts
    runs = [timed(sql_table, args.pg_url) for _ in range(args.runs)]
    sql_time, sql_rows = statistics.median(t for t, _ in runs), runs[0][1]
    py_time, py_rows = timed(python_table, args.pg_url)
    assert [r.as_dict() for r in sql_rows] == [r.as_dict() for r in py_rows], "SQL and Python disagree"
    whole = sql_rows[0].values
    print(f"  indicator table for {START.year} by unit ({len(sql_rows)} rows), SQL: {sql_time * 1000:8.1f} ms median "
          f"[{', '.join(f'{t * 1000:.1f}' for t, _ in runs)}]")
    print(f"  same computation loading the rows into Python:  {py_time * 1000:8.1f} ms (same numbers)")
    print(f"  e.g. on time {whole['on_time'].numerator:,}/{whole['on_time'].denominator:,}, online "
          f"{whole['online'].numerator:,}/{whole['online'].denominator:,}, digitized "
          f"{whole['digitized'].numerator:,}/{whole['digitized'].denominator:,}")
    print(f"ratio Python / SQL: {py_time / sql_time:.1f}x (target: SQL < 2 s for the year, >= 20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
