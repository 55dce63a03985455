"""Engine benchmark: N dossiers of the 6-user-task construction permit (tiếp nhận, thẩm định, kiểm tra hiện
trạng, trưởng phòng duyệt, ký giấy phép, trả kết quả) driven through the persisted engine — one
transaction per command, workflow restored from and saved to the database at every step — on SQLite and
on PostgreSQL, and in the same run the same lifecycles through raw in-memory SpiffWorkflow serializing
the full JSON (spec included) at every step, the baseline. Prints lifecycles/s and the ratios.

    python -m bench.engine [--dossiers 200] [--runs 3] [--pg-url postgresql+psycopg://…/motcua_bench]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.util.task import TaskState

REPO = Path(__file__).resolve().parent.parent
VN = ZoneInfo("Asia/Ho_Chi_Minh")
PROCEDURE = "XD.GPXD.01"
# The benchmarks' database (created if missing, rebuilt by each benchmark: run them one at a time).
BENCH_PG_URL = os.environ.get("MOTCUA_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/motcua_bench")
# (step, actor, decision) after intake: the normal path of the permit.
PATH = [("tham_dinh", "ts.ktht.cv", "dat"), ("kiem_tra_hien_truong", "ts.ktht.cv", None),
        ("truong_phong_duyet", "ts.ktht.ld", "dong_y"), ("ky_giay_phep", "ts.ubnd.ld", "dong_y")]
APPLICANT = {"full_name": "Nguyễn Văn An", "citizen_id": "052088004321",
             "address": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội"}
# What a dossier carries through its life. The baseline keeps it in task data, as a raw SpiffWorkflow
# application does (and as the reference measurement did); the engine keeps it in its tables.
FORM = {"ho_ten": APPLICANT["full_name"], "cccd": APPLICANT["citizen_id"], "dia_chi": APPLICANT["address"],
        "thanh_phan_ho_so": ["Đơn đề nghị", "Bản sao CCCD", "Giấy tờ đất"]}


# --- baseline: raw SpiffWorkflow, full JSON at every step ------------------------------------------

def raw_lifecycles(n: int, with_data: bool = True) -> float:
    defn = yaml.safe_load((REPO / "bpmn" / "xd-gpxd-nha-o.yaml").read_text(encoding="utf-8"))
    parser = BpmnParser()
    parser.add_bpmn_str(defn["diagram"].encode())
    spec = parser.get_spec(defn["process_id"])
    subs = parser.get_subprocess_specs(defn["process_id"])
    ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(DEFAULT_CONFIG))
    decisions = {"tiep_nhan": None, **{step: decision for step, _, decision in PATH}, "tra_kq": None}
    start = time.perf_counter()
    for _ in range(n):
        wf = BpmnWorkflow(spec, subs)
        wf.do_engine_steps()
        blob = ser.serialize_json(wf)
        k = 0
        while True:
            wf = ser.deserialize_json(blob)
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            step = task.task_spec.bpmn_id
            if with_data:
                task.data.update(FORM if k == 0 else {f"y_kien_{k}": "Đồng ý", "nguoi_xu_ly": f"cb{k}"})
            if decisions[step] is not None:
                task.data[step] = decisions[step]
            k += 1
            task.run()
            wf.do_engine_steps()
            blob = ser.serialize_json(wf)
            if wf.completed:
                break
    return n / (time.perf_counter() - start)


# --- the persisted engine ---------------------------------------------------------------------------

def prepare(url: str) -> None:
    from engine.catalog import load_catalog
    from engine.config import Settings, set_settings
    from engine.db import get_engine, session_scope
    from engine.migrate import upgrade
    from engine.org import load_org_dir
    from sqlalchemy import text
    set_settings(Settings(database_url=url))
    if url.startswith("postgresql"):
        with get_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(url)
    with session_scope(url) as db:
        load_org_dir(db, REPO / "data" / "org")
        load_catalog(db, REPO / "bpmn", now=datetime(2020, 1, 1, tzinfo=VN))


def engine_lifecycles(url: str, n: int, day: int) -> float:
    from sqlalchemy import select
    from engine import dossiers as cmd
    from engine.catalog import version_for
    from engine.db import session_scope
    from engine.models import User
    with session_scope(url) as db:
        users = {u.username: u for u in db.scalars(select(User))}
        rules = cmd.rules_of(version_for(db, PROCEDURE, datetime(2025, 4, 24).date()))
        components = [c["code"] for c in rules.components if c.get("required")]
    t0 = datetime(2025, 4, 1, 8, 0, tzinfo=VN) + timedelta(days=day)
    start = time.perf_counter()
    for i in range(n):
        now = t0 + timedelta(seconds=i)
        with session_scope(url) as db:
            code = cmd.receive(db, actor=users["ts.motcua"], procedure_code=PROCEDURE, applicant=APPLICANT,
                               components=components, now=now).dossier.code
        for k, (_, actor, decision) in enumerate(PATH):
            with session_scope(url) as db:
                cmd.complete_step(db, code=code, actor=users[actor], decision=decision, note="Đồng ý",
                                  now=now + timedelta(hours=k + 1))
        with session_scope(url) as db:
            cmd.return_result(db, code=code, actor=users["ts.motcua"], now=now + timedelta(hours=8))
    return n / (time.perf_counter() - start)


def _client(args: tuple[str, int, int]) -> float:
    url, n, day = args
    from engine.config import Settings, set_settings
    set_settings(Settings(database_url=url))
    return engine_lifecycles(url, n, day)


def concurrent_lifecycles(url: str, n: int, day: int, clients: int) -> float:
    """Aggregate throughput of `clients` processes, each driving n / clients dossiers (same agency, same
    day: the code counter is shared, as at a real counter)."""
    import multiprocessing
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        pool.map(_client, [(url, 5, day)] * clients)              # warm-up: imports, caches, connections
        start = time.perf_counter()
        pool.map(_client, [(url, n // clients, day)] * clients)
        return (n // clients * clients) / (time.perf_counter() - start)


def raw_concurrent(n: int, clients: int) -> float:
    import multiprocessing
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        pool.map(raw_lifecycles, [5] * clients)
        start = time.perf_counter()
        pool.map(raw_lifecycles, [n // clients] * clients)
        return (n // clients * clients) / (time.perf_counter() - start)


def ensure_pg_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url
    u = make_url(url)
    with psycopg.connect(f"host={u.host} port={u.port or 5432} user={u.username} dbname=postgres",
                         autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (u.database,)).fetchone():
            conn.execute(f'CREATE DATABASE "{u.database}"')


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dossiers", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=2, help="processes for the concurrent figures (0: skip)")
    ap.add_argument("--pg-url", default=BENCH_PG_URL)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/bench.db"
        ensure_pg_database(args.pg_url)
        results: dict[str, list[float]] = {"raw": [], "raw_bare": [], "sqlite": [], "postgresql": [],
                                           "raw_conc": [], "pg_conc": []}
        prepare(sqlite_url)
        prepare(args.pg_url)
        raw_lifecycles(10)                                       # warm-up: imports, caches
        engine_lifecycles(sqlite_url, 10, day=0)
        engine_lifecycles(args.pg_url, 10, day=0)
        for run in range(1, args.runs + 1):                      # interleaved, so load drifts hit all three
            results["raw"].append(raw_lifecycles(args.dossiers))
            results["raw_bare"].append(raw_lifecycles(args.dossiers, with_data=False))
            results["sqlite"].append(engine_lifecycles(sqlite_url, args.dossiers, day=run))
            results["postgresql"].append(engine_lifecycles(args.pg_url, args.dossiers, day=run))
            if args.clients > 1:
                results["raw_conc"].append(raw_concurrent(args.dossiers, args.clients))
                results["pg_conc"].append(concurrent_lifecycles(args.pg_url, args.dossiers, 100 + run, args.clients))
    med = {k: statistics.median(v) for k, v in results.items() if v}
    print(f"{args.dossiers} dossiers x {args.runs} runs, 6 user tasks each (median lifecycles/s; runs in brackets)")
    rows = [("raw SpiffWorkflow, full JSON, in memory", "raw"),
            ("  the same without the dossier's data", "raw_bare"),
            ("motcua engine on SQLite", "sqlite"), ("motcua engine on PostgreSQL", "postgresql")]
    if args.clients > 1:
        rows += [(f"raw SpiffWorkflow, {args.clients} processes", "raw_conc"),
                 (f"motcua engine on PostgreSQL, {args.clients} processes", "pg_conc")]
    for label, key in rows:
        runs = ", ".join(f"{r:.1f}" for r in results[key])
        print(f"  {label:42} {med[key]:7.1f}/s  [{runs}]")
    print(f"  ratio PostgreSQL engine / raw baseline: {med['postgresql'] / med['raw']:.2f}x (target >= 1.0)")
    print(f"  ratio SQLite engine / raw baseline:     {med['sqlite'] / med['raw']:.2f}x")
    print(f"  ratio PostgreSQL engine / raw without data: {med['postgresql'] / med['raw_bare']:.2f}x")
    if args.clients > 1:
        print(f"  ratio PostgreSQL engine, {args.clients} processes / raw baseline (one core): "
              f"{med['pg_conc'] / med['raw']:.2f}x")
        print(f"  ratio PostgreSQL engine, {args.clients} processes / raw, {args.clients} processes: "
              f"{med['pg_conc'] / med['raw_conc']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
