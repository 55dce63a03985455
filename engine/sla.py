"""Deadlines in working time: the appointment, step deadlines, pauses for supplements, the extension.
Everything goes through the one working-time calendar (engine.calendar)."""
from __future__ import annotations

from datetime import datetime

from engine.calendar import WorkingCalendar, calendar_for
from engine.catalog import ProcedureRules
from engine.models import Unit


def calendar_of(unit: Unit) -> WorkingCalendar:
    return calendar_for(unit.office_hours)


def appointment(cal: WorkingCalendar, rules: ProcedureRules, received: datetime) -> tuple[datetime, int]:
    """(due time, working minutes granted) for a dossier received at `received`."""
    if rules.limit_unit == "working_days":
        due = cal.add_working_days(received, int(rules.limit_amount), cutoff=rules.cutoff)
    else:
        due = cal.add_working_hours(received, rules.limit_amount)
    return due, max(cal.working_minutes_between(received, due), 0)


def warning_minutes(cal: WorkingCalendar, rules: ProcedureRules) -> int:
    unit, amount = next(iter(rules.warning_before.items()))
    return int(amount * cal.minutes_per_day) if unit == "working_days" else int(amount * 60)


def warn_time(cal: WorkingCalendar, start: datetime, budget: int, before: int) -> datetime:
    """The instant `before` working minutes ahead of the end of a budget that starts at `start`."""
    return cal.add_working_minutes(start, max(budget - before, 0))


def step_deadline(cal: WorkingCalendar, rules: ProcedureRules, bpmn_id: str, start: datetime,
                  dossier_budget: int, dossier_due: datetime) -> tuple[datetime | None, datetime | None]:
    """(due, warn) of a step: its share of the procedure's time, never past the appointment.
    Waiting for the citizen's supplement has no deadline: that time is the citizen's."""
    step = rules.step(bpmn_id)
    if step.get("kind") == "supplement":
        return None, None
    budget = round(float(step.get("sla_share", 0)) * dossier_budget)
    due = min(cal.add_working_minutes(start, budget), max(dossier_due, start))
    budget = max(cal.working_minutes_between(start, due), 0)
    warn = warn_time(cal, start, budget, min(warning_minutes(cal, rules), budget // 2))
    return due, warn


def timing(finished: datetime, due: datetime | None, cal: WorkingCalendar) -> str | None:
    """Control-sheet result: late after the due time, on time on the due day, early before it."""
    if due is None:
        return None
    if finished > due:
        return "late"
    if finished.astimezone(cal.tz).date() == due.astimezone(cal.tz).date():
        return "on_time"
    return "early"


def remaining_minutes(cal: WorkingCalendar, now: datetime, due: datetime) -> int:
    """Working minutes left before the appointment (negative when already late)."""
    return cal.working_minutes_between(now, due)


def resumed_due(cal: WorkingCalendar, rules: ProcedureRules, now: datetime, remaining: int,
                old_due: datetime) -> tuple[datetime, int | None]:
    """New appointment when the supplement arrives: continue the paused clock, or restart it as if
    the dossier had been received now (per procedure). Returns (due, new budget or None)."""
    if rules.resume == "reset":
        return appointment(cal, rules, now)
    if remaining <= 0:
        return old_due, None        # it was already late when paused: pausing does not cure that
    return cal.add_working_minutes(now, remaining), None


def next_fire(warn_at: datetime | None, due_at: datetime | None, warned_at: datetime | None,
              overdue_at: datetime | None) -> datetime | None:
    """When an open deadline's timer fires next: its warning, then its overdue, each once."""
    if warn_at is not None and warned_at is None and overdue_at is None:
        return warn_at
    if due_at is not None and overdue_at is None:
        return due_at
    return None
