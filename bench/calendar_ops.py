"""Benchmark of the working-time calendar: `python -m bench.calendar_ops`.

Prints add_working_days ops/s of engine.calendar (target >= 200,000/s), the ops/s of a naive day-by-day loop
over the same inputs (it steps one day at a time through precomputed sets of days off / worked weekend days, the
cheapest honest naive version), their ratio, and for information add_working_minutes / working_minutes_between.
Both implementations must agree on every input. Exit status 1 when the target is missed."""
from __future__ import annotations

import sys

import argparse  # noqa: E402
import random  # noqa: E402
import time as _time  # noqa: E402
from datetime import date, datetime, time, timedelta, timezone  # noqa: E402

from engine.calendar import WorkingCalendar, calendar_for  # noqa: E402

TARGET = 200_000
CUTOFF = time(15, 0)


def make_inputs(cal: WorkingCalendar, n: int, seed: int) -> list[tuple[datetime, int, time | None]]:
    """Receipt instants 2016-2040 (3/4 in local time, 1/4 in UTC as stored), typical SLA lengths, some cut-offs."""
    rnd = random.Random(seed)
    start = datetime(2016, 1, 1, tzinfo=cal.tz)
    span_minutes = 25 * 365 * 24 * 60
    out = []
    for _ in range(n):
        received = start + timedelta(minutes=rnd.randrange(span_minutes))
        if rnd.random() < 0.25:
            received = received.astimezone(timezone.utc)
        days = rnd.choice([0, 1, 2, 3, 5, 5, 7, 10, 10, 12, 15, 15, 20, 30, 45, 60])
        cutoff = CUTOFF if rnd.random() < 0.25 else None
        out.append((received, days, cutoff))
    return out


class NaiveCalendar:
    """Day-by-day loop, with the day classification itself precomputed (sets), so only the loop is measured."""

    def __init__(self, cal: WorkingCalendar, first_year: int, last_year: int):
        self.tz = cal.tz
        self.close = cal.office_hours[-1][1]
        self.off_weekdays: set[date] = set()
        self.worked_weekend: set[date] = set()
        for year in range(first_year, last_year + 1):
            for day in cal.days(year):
                (self.worked_weekend if day.working else self.off_weekdays).add(day.date)

    def is_working(self, d: date) -> bool:
        if d.weekday() < 5:
            return d not in self.off_weekdays
        return d in self.worked_weekend

    def add_working_days(self, received: datetime, days: int, *, cutoff: time | None = None) -> datetime:
        one = timedelta(days=1)
        local = received.astimezone(self.tz)
        d = local.date()
        e = d
        if not self.is_working(d) or (cutoff is not None and local.time() >= cutoff):
            e = d + one
            while not self.is_working(e):
                e += one
        if days == 0:
            return datetime.combine(e, self.close, tzinfo=self.tz)
        day = d if cutoff is None else e
        for _ in range(days):
            day += one
            while not self.is_working(day):
                day += one
        return datetime.combine(day, self.close, tzinfo=self.tz)


def ops_per_second(fn, inputs, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = _time.perf_counter()
        fn(inputs)
        best = min(best, _time.perf_counter() - t0)
    return len(inputs) / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="number of inputs (default 50000)")
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs (default 5)")
    parser.add_argument("--seed", type=int, default=20250424)
    args = parser.parse_args(argv)

    t0 = _time.perf_counter()
    cal = calendar_for()
    build = _time.perf_counter() - t0
    inputs = make_inputs(cal, args.n, args.seed)
    naive = NaiveCalendar(cal, 2015, 2045)

    fast_results = [cal.add_working_days(r, d, cutoff=c) for r, d, c in inputs]
    naive_results = [naive.add_working_days(r, d, cutoff=c) for r, d, c in inputs]
    mismatches = sum(a != b for a, b in zip(fast_results, naive_results))
    if mismatches:
        print(f"ERROR: {mismatches} results differ between the calendar and the naive loop", file=sys.stderr)
        return 1

    def run_fast(items):
        f = cal.add_working_days
        for r, d, c in items:
            f(r, d, cutoff=c)

    def run_naive(items):
        f = naive.add_working_days
        for r, d, c in items:
            f(r, d, cutoff=c)

    def run_minutes(items):
        f = cal.add_working_minutes
        for r, d, _c in items:
            f(r, d * 97)

    def run_between(items):
        f = cal.working_minutes_between
        for (a, _d, _c), (b, _e, _f) in zip(items, items[1:]):
            f(a, b)

    fast = ops_per_second(run_fast, inputs, args.repeat)
    slow = ops_per_second(run_naive, inputs, args.repeat)
    minutes = ops_per_second(run_minutes, inputs, args.repeat)
    between = ops_per_second(run_between, inputs, args.repeat)
    mean_days = sum(d for _r, d, _c in inputs) / len(inputs)

    print(f"calendar build (holidays + tables {cal.first_year}-{cal.last_year}): {build * 1000:.0f} ms")
    print(f"inputs: {len(inputs)} receipts 2016-2040, mean {mean_days:.1f} working days, "
          f"25% with a 15:00 cut-off, 25% given in UTC; results identical")
    print(f"add_working_days (engine.calendar): {fast:>12,.0f} ops/s   (target >= {TARGET:,})")
    print(f"add_working_days (naive day loop):  {slow:>12,.0f} ops/s")
    print(f"ratio calendar / naive:             {fast / slow:>12.1f} x")
    print(f"add_working_minutes:                {minutes:>12,.0f} ops/s")
    print(f"working_minutes_between:            {between:>12,.0f} ops/s")
    if fast < TARGET:
        print(f"FAIL: below the {TARGET:,} ops/s target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
