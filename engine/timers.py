"""The deadline scan: fire due warnings and overdue timers exactly once.

Open deadlines are the dossier rows (the appointment) and the ready step rows (the control sheet's
deadlines); each carries `next_fire_at`, indexed where not null. A scan, in one transaction:
  1. claims the dossiers having something due, locking their rows (PostgreSQL: FOR UPDATE SKIP LOCKED, so
     concurrent scanners split the work; SQLite: the transaction itself is exclusive);
  2. for every due timer writes a firing row (unique per deadline and kind: exactly once even if two
     scanners race), an event in the dossier's hash chain, for an overdue step an accountability record,
     and the notifications;
  3. moves each timer on (warning → overdue → none).
Locking the dossier first is the order every command uses too (its guarded update comes first), so a scan
and a command never deadlock; a command that loses the race gets a 409 and is retried by the official.
A scan that dies half-way commits nothing; the next one fires the same timers."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from datetime import datetime, timezone

from sqlalchemy import bindparam, insert, select, union, update
from sqlalchemy.orm import Session

from engine import notify, sla
from engine.events import new_event
from engine.models import (AccountabilityRecord, Dossier, Event, OutboxMessage, Step, TimerFiring, User)

Row = SimpleNamespace    # a claimed row: plain attributes, no change tracking (the scan writes in bulk)
D, S, F, A, E, O, U = (Dossier.__table__, Step.__table__, TimerFiring.__table__, AccountabilityRecord.__table__,
                       Event.__table__, OutboxMessage.__table__, User.__table__)


@dataclass
class ScanResult:
    dossiers: int = 0
    warnings: int = 0
    overdue: int = 0
    accountability: int = 0
    fired: list[tuple[str, int, str]] = field(default_factory=list)   # (target, id, kind)

    def as_dict(self) -> dict:
        return {"dossiers": self.dossiers, "warnings": self.warnings, "overdue": self.overdue,
                "accountability": self.accountability}


# What the scan needs of a dossier (not its workflow instance, the largest column).
CLAIMED = [D.c.id, D.c.code, D.c.warn_at, D.c.due_at, D.c.warned_at, D.c.overdue_at, D.c.paused_at, D.c.finished_at,
           D.c.next_fire_at, D.c.last_event_seq, D.c.last_event_hash]
STEP_TIMER = [S.c.id, S.c.dossier_id, S.c.bpmn_id, S.c.name, S.c.unit_id, S.c.assignee_id, S.c.warn_at, S.c.due_at,
              S.c.warned_at, S.c.overdue_at, S.c.next_fire_at]


def _claim(db: Session, now: datetime, limit: int) -> list[Row]:
    due = union(select(D.c.id).where(D.c.next_fire_at <= now),
                select(S.c.dossier_id).where(S.c.next_fire_at <= now)).subquery()
    ids = select(due.c[0]).limit(limit)
    query = select(*CLAIMED).where(D.c.id.in_(ids)).order_by(D.c.id)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [SimpleNamespace(**row._mapping) for row in db.connection().execute(query)]


def scan(db: Session, *, now: datetime, limit: int = 1000) -> ScanResult:
    """Fire what is due at `now`. The caller commits (one transaction per scan)."""
    result = ScanResult()
    dossiers = _claim(db, now, limit)
    if not dossiers:
        return result
    conn = db.connection()
    by_id = {d.id: d for d in dossiers}
    steps = [SimpleNamespace(**row._mapping) for row in conn.execute(
        select(*STEP_TIMER).where(S.c.dossier_id.in_(list(by_id)), S.c.next_fire_at <= now).order_by(S.c.id))]
    holders = _emails(db, {s.assignee_id for s in steps if s.assignee_id})
    rows: dict[str, list[dict]] = {"firings": [], "events": [], "records": [], "outbox": []}
    for step in steps:
        _fire_step(by_id[step.dossier_id], step, now, rows, result, holders)
    for d in dossiers:
        _fire_dossier(d, now, rows, result)
    _write(db, dossiers, steps, rows)
    result.dossiers = len(dossiers)
    return result


def _emails(db: Session, user_ids: set[int]) -> dict[int, str | None]:
    if not user_ids:
        return {}
    return dict(db.connection().execute(select(U.c.id, U.c.email).where(U.c.id.in_(list(user_ids)))).all())


def _due_kinds(warn_at, due_at, warned_at, overdue_at, now) -> list[str]:
    """The timers of one deadline that are due now, in order (a late scan may fire both)."""
    kinds = []
    if warn_at is not None and warned_at is None and overdue_at is None and warn_at <= now:
        kinds.append("warning")
    if due_at is not None and overdue_at is None and due_at <= now:
        kinds.append("overdue")
    return kinds


def _fire_step(d: Row, step: Row, now: datetime, rows: dict, result: ScanResult,
               holders: dict[int, str | None]) -> None:
    for kind in _due_kinds(step.warn_at, step.due_at, step.warned_at, step.overdue_at, now):
        rows["firings"].append(dict(dossier_id=d.id, target="step", target_id=step.id, kind=kind,
                                    due_at=step.due_at, fired_at=now))
        result.fired.append(("step", step.id, kind))
        if kind == "warning":
            step.warned_at = now
            result.warnings += 1
            rows["outbox"] += [m.changes() for m in notify.to_official(
                holders.get(step.assignee_id), "step_warning", dossier_id=d.id, now=now,
                key=f"{d.code}:warning:{step.id}", code=d.code, step=step.name, due=step.due_at)]
        else:
            step.overdue_at = now
            result.overdue += 1
            result.accountability += 1
            rows["records"].append(dict(dossier_id=d.id, step_id=step.id, unit_id=step.unit_id,
                                        holder_id=step.assignee_id, due_at=step.due_at, created_at=now))
        rows["events"].append(new_event(d, f"step_{kind}", None, now, {
            "step": step.bpmn_id, "step_id": step.id, "unit_id": step.unit_id, "holder_id": step.assignee_id,
            "due_at": step.due_at.isoformat()}).changes())
    step.next_fire_at = sla.next_fire(step.warn_at, step.due_at, step.warned_at, step.overdue_at)


def _fire_dossier(d: Row, now: datetime, rows: dict, result: ScanResult) -> None:
    if d.paused_at is not None or d.finished_at is not None:
        d.next_fire_at = None
        return
    for kind in _due_kinds(d.warn_at, d.due_at, d.warned_at, d.overdue_at, now):
        rows["firings"].append(dict(dossier_id=d.id, target="dossier", target_id=d.id, kind=kind,
                                    due_at=d.due_at, fired_at=now))
        result.fired.append(("dossier", d.id, kind))
        if kind == "warning":
            d.warned_at = now
            result.warnings += 1
        else:
            d.overdue_at = now
            result.overdue += 1
        rows["events"].append(new_event(d, f"dossier_{kind}", None, now,
                                        {"due_at": d.due_at.isoformat()}).changes())
    d.next_fire_at = sla.next_fire(d.warn_at, d.due_at, d.warned_at, d.overdue_at)


def _write(db: Session, dossiers: list[Row], steps: list[Row], rows: dict) -> None:
    """Set-based writes: one statement per table whatever the number of timers."""
    conn = db.connection()
    # executemany: psycopg pipelines the rows, one round trip per table rather than one per row.
    for table, key in ((F, "firings"), (E, "events"), (A, "records"), (O, "outbox")):
        if rows[key]:                         # timer_firings: its unique key refuses a second firing
            conn.execute(insert(table), rows[key])
    timer_columns = ("warned_at", "overdue_at", "next_fire_at")
    _update_steps(conn, steps)
    if not dossiers:
        return
    # The bump of the version tells a command that loaded the dossier before this scan that it changed
    # (the rows are locked, or on SQLite the database is, so nothing else changed them meanwhile).
    columns = (*timer_columns, "last_event_seq", "last_event_hash")
    if conn.dialect.name == "postgresql":
        _update_dossiers_pg(conn, dossiers)
    else:
        _update_from_values(conn, D, dossiers, columns, version=D.c.version + 1)


def _naive_utc(value: datetime | None) -> datetime | None:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value else None


def _update_dossiers_pg(conn, dossiers: list[Row]) -> None:
    """PostgreSQL: every dossier's new timer state and chain head in one statement, from arrays."""
    conn.exec_driver_sql(
        "UPDATE dossiers AS d SET warned_at = v.warned_at, overdue_at = v.overdue_at, next_fire_at = v.next_fire_at,"
        " last_event_seq = v.seq, last_event_hash = v.hash, version = d.version + 1"
        " FROM unnest(%(ids)s::int[], %(warned)s::timestamp[], %(overdue)s::timestamp[], %(next)s::timestamp[],"
        " %(seqs)s::int[], %(hashes)s::text[]) AS v(id, warned_at, overdue_at, next_fire_at, seq, hash)"
        " WHERE d.id = v.id",
        {"ids": [d.id for d in dossiers], "warned": [_naive_utc(d.warned_at) for d in dossiers],
         "overdue": [_naive_utc(d.overdue_at) for d in dossiers],
         "next": [_naive_utc(d.next_fire_at) for d in dossiers],
         "seqs": [d.last_event_seq for d in dossiers], "hashes": [d.last_event_hash for d in dossiers]})


def _update_steps(conn, steps: list[Row]) -> None:
    """Steps that fired the same timers this scan change the same way: one UPDATE … WHERE id IN per group."""
    groups: dict[tuple, list[int]] = {}
    for s in steps:
        groups.setdefault((s.warned_at, s.overdue_at, s.next_fire_at is None), []).append(s.id)
    for (warned_at, overdue_at, closed), ids in groups.items():
        conn.execute(update(S).where(S.c.id.in_(ids)).values(
            warned_at=warned_at, overdue_at=overdue_at, next_fire_at=None if closed else S.c.due_at))


def _update_from_values(conn, table, records: list[Row], columns: tuple[str, ...], **extra) -> None:
    """One executemany for all the records (psycopg pipelines it: one round trip, not one per row)."""
    stmt = update(table).where(table.c.id == bindparam("_id")).values(
        **{name: bindparam(name) for name in columns}, **extra)
    conn.execute(stmt, [{"_id": r.id, **{name: getattr(r, name) for name in columns}} for r in records])


def naive_scan_count(db: Session, *, now: datetime) -> int:
    """The baseline of the benchmark: load every open deadline into Python and pick the due ones."""
    due = 0
    for row in db.connection().execute(select(S.c.id, S.c.warn_at, S.c.due_at, S.c.warned_at, S.c.overdue_at)
                                       .where(S.c.state == "ready")):
        due += bool(_due_kinds(row.warn_at, row.due_at, row.warned_at, row.overdue_at, now))
    return due



def scan_all(*, now: datetime, batch: int | None = None, url: str | None = None) -> ScanResult:
    """Scan in batches, one transaction each, until nothing due is left (the task and CLI entry point)."""
    from engine.config import settings
    from engine.db import session_scope
    batch = batch or settings().scan_batch
    total = ScanResult()
    while True:
        with session_scope(url) as db:
            result = scan(db, now=now, limit=batch)
        for key in ("dossiers", "warnings", "overdue", "accountability"):
            setattr(total, key, getattr(total, key) + getattr(result, key))
        total.fired += result.fired
        if result.dossiers < batch:
            return total
