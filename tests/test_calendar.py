"""The working-time calendar: real `holidays` data plus the shipped override file; no wall clock, no sleeping.

The property tests compare the precomputed O(1)/O(log n) calendar with a deliberately simple day-by-day
reference written below, which reads the `holidays` package and the override file directly."""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest

from engine.calendar import (  # noqa: E402
    CalendarDay,
    WorkingCalendar,
    calendar_for,
    invalidate_calendars,
    load_overrides,
    parse_office_hours,
)
from engine.errors import InvalidInput  # noqa: E402

OVERRIDES = Path(__file__).resolve().parent.parent / "data" / "calendar" / "vn-calendar-overrides.yaml"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
HOURS = "07:30-11:30,13:30-17:00"
CUTOFF = time(15, 0)


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar(tz=VN, office_hours=parse_office_hours(HOURS), overrides=load_overrides([OVERRIDES]))


# --------------------------------------------------------------------------------------------------- reference


class Reference:
    """Day-by-day reference: the obvious loops, no precomputation."""

    def __init__(self, overrides: dict[date, tuple[bool, str]], hours: str = HOURS):
        self.overrides = overrides
        self.hol = holidays.country_holidays("VN", years=range(2014, 2047))
        self.weekend_workdays = set(getattr(self.hol, "weekend_workdays", ()))
        self.intervals = [(s, e) for s, e in parse_office_hours(hours)]

    def is_working(self, d: date) -> bool:
        if d in self.overrides:
            return self.overrides[d][0]
        if d in self.hol:
            return False
        if d in self.weekend_workdays:
            return True
        return d.weekday() < 5

    def next_working_day(self, d: date) -> date:
        d += timedelta(days=1)
        while not self.is_working(d):
            d += timedelta(days=1)
        return d

    def close(self, d: date) -> datetime:
        return datetime.combine(d, self.intervals[-1][1], tzinfo=VN)

    def add_working_days(self, received: datetime, n: int, cutoff: time | None = None) -> datetime:
        local = received.astimezone(VN)
        d = local.date()
        if self.is_working(d) and (cutoff is None or local.time() < cutoff):
            e = d
        else:
            e = self.next_working_day(d)
        if n == 0:
            return self.close(e)
        day = d if cutoff is None else e
        for _ in range(n):
            day = self.next_working_day(day)
        return self.close(day)

    def segments(self, d: date):
        for s, e in self.intervals:
            yield datetime.combine(d, s, tzinfo=VN), datetime.combine(d, e, tzinfo=VN)

    def next_working_instant(self, t: datetime) -> datetime:
        t = t.astimezone(VN)
        d = t.date()
        while True:
            if self.is_working(d):
                for s, e in self.segments(d):
                    if t < e:
                        return max(s, t)
            d += timedelta(days=1)
            t = datetime.combine(d, time(0), tzinfo=VN)

    def add_working_minutes(self, start: datetime, minutes: int) -> datetime:
        t = self.next_working_instant(start)
        if minutes == 0:
            return t
        remaining = timedelta(minutes=minutes)
        d = t.date()
        while True:
            if self.is_working(d):
                for s, e in self.segments(d):
                    begin = max(s, t)
                    if begin >= e:
                        continue
                    if remaining <= e - begin:
                        return begin + remaining
                    remaining -= e - begin
            d += timedelta(days=1)

    def working_minutes_between(self, start: datetime, end: datetime) -> int:
        if end < start:
            return -self.working_minutes_between(end, start)
        total = timedelta(0)
        d = start.astimezone(VN).date()
        while d <= end.astimezone(VN).date():
            if self.is_working(d):
                for s, e in self.segments(d):
                    lo, hi = max(s, start), min(e, end)
                    if lo < hi:
                        total += hi - lo
            d += timedelta(days=1)
        return total // timedelta(minutes=1)


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference(load_overrides([OVERRIDES]))


def random_instant(rnd: random.Random) -> datetime:
    """Random instants 2016-2044 biased towards office-hour boundaries, in VN time or UTC."""
    day = date(2016, 1, 1) + timedelta(days=rnd.randrange(0, 29 * 365))
    choice = rnd.random()
    if choice < 0.3:
        t = rnd.choice([time(7, 30), time(11, 30), time(13, 30), time(17, 0), time(0, 0), time(15, 0),
                        time(14, 59, 59), time(11, 29, 30)])
    else:
        t = time(rnd.randrange(24), rnd.randrange(60), rnd.randrange(60) if rnd.random() < 0.3 else 0)
    local = datetime.combine(day, t, tzinfo=VN)
    return local.astimezone(timezone.utc) if rnd.random() < 0.3 else local


# --------------------------------------------------------------------------------------------------- working days


def test_tet_2025_crossed(cal):
    # Fri 24/1/2025 16:00 + 3 working days: 27/1-31/1 are Tết (Mon-Fri), so Mon 3/2, Tue 4/2, Wed 5/2.
    assert cal.add_working_days(vn(2025, 1, 24, 16), 3) == vn(2025, 2, 5, 17)
    for d in range(27, 32):
        assert not cal.is_working_day(date(2025, 1, d))
    assert cal.add_working_days(vn(2025, 1, 24, 16), 1) == vn(2025, 2, 3, 17)


def test_tet_2026_crossed(cal):
    # Tết Bính Ngọ: Mon 16/2 - Fri 20/2/2026 off.
    for d in range(16, 21):
        assert not cal.is_working_day(date(2026, 2, d))
    assert cal.is_working_day(date(2026, 2, 13)) and cal.is_working_day(date(2026, 2, 23))
    assert cal.add_working_days(vn(2026, 2, 12, 10), 2) == vn(2026, 2, 23, 17)
    assert cal.add_working_days(vn(2026, 2, 13, 10), 1) == vn(2026, 2, 23, 17)
    assert cal.add_working_days(vn(2026, 2, 13, 10), 5) == vn(2026, 2, 27, 17)


def test_swap_saturday_2025_counted_and_friday_skipped(cal):
    assert cal.is_working_day(date(2025, 4, 26))       # Saturday worked
    assert not cal.is_working_day(date(2025, 5, 2))    # Friday off in exchange
    # Thu 24/4 09:00 + 2: Fri 25/4 is day 1, Sat 26/4 is day 2.
    assert cal.add_working_days(vn(2025, 4, 24, 9), 2) == datetime.fromisoformat("2025-04-26T17:00:00+07:00")
    # Tue 29/4 + 1: 30/4, 1/5 holidays, 2/5 swapped off, weekend -> Mon 5/5.
    assert cal.add_working_days(vn(2025, 4, 29, 10), 1) == vn(2025, 5, 5, 17)


def test_swap_2026(cal):
    assert cal.is_working_day(date(2026, 8, 22))       # Saturday worked
    assert not cal.is_working_day(date(2026, 8, 31))   # Monday off in exchange
    assert not cal.is_working_day(date(2026, 8, 23))   # the Sunday stays off
    assert cal.add_working_days(vn(2026, 8, 21, 9), 1) == vn(2026, 8, 22, 17)
    # Fri 28/8 + 1: Mon 31/8 swapped, 1/9 and 2/9 National Day -> Thu 3/9.
    assert cal.add_working_days(vn(2026, 8, 28, 9), 1) == vn(2026, 9, 3, 17)


def test_weekend_holiday_moved_gio_to_2026(cal):
    # Giỗ Tổ Hùng Vương falls on Sunday 26/4/2026 -> Monday 27/4 off.
    assert not cal.is_working_day(date(2026, 4, 27))
    assert cal.add_working_days(vn(2026, 4, 24, 9), 1) == vn(2026, 4, 28, 17)


def test_same_day_cutoff_both_sides(cal):
    assert cal.add_working_days(vn(2025, 6, 11, 14, 59), 0, cutoff=CUTOFF) == vn(2025, 6, 11, 17)
    assert cal.add_working_days(vn(2025, 6, 11, 14, 59, 59, 999999), 0, cutoff=CUTOFF) == vn(2025, 6, 11, 17)
    assert cal.add_working_days(vn(2025, 6, 11, 15, 0), 0, cutoff=CUTOFF) == vn(2025, 6, 12, 17)
    # Friday after the cut-off -> Monday.
    assert cal.add_working_days(vn(2025, 6, 13, 15, 30), 0, cutoff=CUTOFF) == vn(2025, 6, 16, 17)


def test_cutoff_on_non_working_day(cal):
    assert cal.add_working_days(vn(2025, 6, 15, 10), 0, cutoff=CUTOFF) == vn(2025, 6, 16, 17)   # Sunday
    assert cal.add_working_days(vn(2025, 6, 15, 10), 0) == vn(2025, 6, 16, 17)                  # no cut-off
    # Sunday 26/4/2026 (Giỗ Tổ) -> Monday 27/4 is off too -> Tuesday 28/4.
    assert cal.add_working_days(vn(2026, 4, 26, 8), 0, cutoff=CUTOFF) == vn(2026, 4, 28, 17)
    # Received on a day off with a cut-off: counting starts from the next working day.
    assert cal.add_working_days(vn(2025, 6, 15, 10), 1, cutoff=CUTOFF) == vn(2025, 6, 17, 17)
    assert cal.add_working_days(vn(2025, 6, 15, 10), 1) == vn(2025, 6, 16, 17)


def test_cutoff_with_days(cal):
    assert cal.add_working_days(vn(2025, 6, 11, 14, 59), 1, cutoff=CUTOFF) == vn(2025, 6, 12, 17)
    assert cal.add_working_days(vn(2025, 6, 11, 15, 0), 1, cutoff=CUTOFF) == vn(2025, 6, 13, 17)
    # Without a cut-off the time of day does not matter.
    assert cal.add_working_days(vn(2025, 6, 11, 23, 0), 1) == vn(2025, 6, 12, 17)


def test_cutoff_uses_local_time_of_aware_input(cal):
    # 08:00Z = 15:00 in Hà Nội: after the cut-off.
    received = datetime(2025, 6, 11, 8, 0, tzinfo=timezone.utc)
    assert cal.add_working_days(received, 0, cutoff=CUTOFF) == vn(2025, 6, 12, 17)
    # 17:30Z on 10/6 is 00:30 on 11/6 locally: the local date counts.
    assert cal.add_working_days(datetime(2025, 6, 10, 17, 30, tzinfo=timezone.utc), 1) == vn(2025, 6, 12, 17)


def test_results_are_aware_in_vn(cal):
    r = cal.add_working_days(datetime(2025, 4, 24, 2, tzinfo=timezone.utc), 2)
    assert r.tzinfo is not None and r.utcoffset() == timedelta(hours=7)
    assert r.isoformat() == "2025-04-26T17:00:00+07:00"
    r = cal.add_working_minutes(datetime(2025, 6, 11, 2, tzinfo=timezone.utc), 10)
    assert r.isoformat() == "2025-06-11T09:10:00+07:00"


def test_end_of_working_day(cal):
    assert cal.end_of_working_day(date(2025, 6, 11)) == vn(2025, 6, 11, 17)
    morning = WorkingCalendar(tz=VN, office_hours=parse_office_hours("08:00-12:00"), overrides={})
    assert morning.end_of_working_day(date(2025, 6, 11)) == vn(2025, 6, 11, 12)
    assert morning.minutes_per_day == 240
    assert morning.add_working_days(vn(2025, 6, 11, 9), 2) == vn(2025, 6, 13, 12)
    assert morning.add_working_minutes(vn(2025, 6, 11, 11), 60) == vn(2025, 6, 11, 12)
    assert morning.add_working_minutes(vn(2025, 6, 11, 11), 90) == vn(2025, 6, 12, 8, 30)


# --------------------------------------------------------------------------------------------------- working time


def test_minutes_per_day(cal):
    assert cal.minutes_per_day == 450
    assert cal.office_hours == ((time(7, 30), time(11, 30)), (time(13, 30), time(17, 0)))
    assert cal.tz == VN


def test_hours_across_lunch_break(cal):
    assert cal.add_working_hours(vn(2025, 6, 12, 11), 1) == vn(2025, 6, 12, 14)
    assert cal.add_working_minutes(vn(2025, 6, 12, 11, 45), 30) == vn(2025, 6, 12, 14)   # lunch start clamped
    assert cal.working_minutes_between(vn(2025, 6, 12, 11), vn(2025, 6, 12, 14)) == 60


def test_hours_across_weekend(cal):
    assert cal.add_working_hours(vn(2025, 6, 13, 16), 2) == vn(2025, 6, 16, 8, 30)
    assert cal.add_working_hours(vn(2025, 6, 14, 10), 1.5) == vn(2025, 6, 16, 9)        # Saturday start
    assert cal.working_minutes_between(vn(2025, 6, 13, 16), vn(2025, 6, 16, 8, 30)) == 120


def test_hours_across_tet_and_swap(cal):
    assert cal.add_working_hours(vn(2025, 1, 24, 16), 2) == vn(2025, 2, 3, 8, 30)
    assert cal.working_minutes_between(vn(2025, 1, 24, 16), vn(2025, 2, 3, 8, 30)) == 120
    # Friday 25/4/2025 16:30 + 1h: the swap Saturday is worked.
    assert cal.add_working_hours(vn(2025, 4, 25, 16, 30), 1) == vn(2025, 4, 26, 8)


def test_result_exactly_at_end_of_interval(cal):
    assert cal.add_working_minutes(vn(2025, 6, 12, 10, 30), 60) == vn(2025, 6, 12, 11, 30)
    assert cal.add_working_minutes(vn(2025, 6, 12, 16), 60) == vn(2025, 6, 12, 17)
    assert cal.add_working_minutes(vn(2025, 6, 12, 7, 30), 450) == vn(2025, 6, 12, 17)   # a whole day
    assert cal.add_working_minutes(vn(2025, 6, 12, 7, 30), 451) == vn(2025, 6, 13, 7, 31)
    assert cal.add_working_minutes(vn(2025, 6, 12, 11, 30), 210) == vn(2025, 6, 12, 17)
    assert cal.add_working_minutes(vn(2025, 6, 13, 17), 450) == vn(2025, 6, 16, 17)      # Friday close + 1 day
    assert cal.add_working_hours(vn(2025, 6, 12, 7, 30), 4) == vn(2025, 6, 12, 11, 30)


def test_zero_minutes_is_next_working_instant(cal):
    assert cal.add_working_minutes(vn(2025, 6, 12, 11, 30), 0) == vn(2025, 6, 12, 13, 30)
    assert cal.add_working_minutes(vn(2025, 6, 12, 9, 15), 0) == vn(2025, 6, 12, 9, 15)


def test_next_working_instant(cal):
    t = vn(2025, 6, 12, 9, 15, 30, 5)
    assert cal.next_working_instant(t) == t
    assert cal.next_working_instant(vn(2025, 6, 12, 7, 30)) == vn(2025, 6, 12, 7, 30)
    assert cal.next_working_instant(vn(2025, 6, 12, 6)) == vn(2025, 6, 12, 7, 30)
    assert cal.next_working_instant(vn(2025, 6, 12, 12)) == vn(2025, 6, 12, 13, 30)
    assert cal.next_working_instant(vn(2025, 6, 12, 17)) == vn(2025, 6, 13, 7, 30)
    assert cal.next_working_instant(vn(2025, 4, 25, 18)) == vn(2025, 4, 26, 7, 30)    # swap Saturday
    assert cal.next_working_instant(vn(2025, 1, 24, 17, 1)) == vn(2025, 2, 3, 7, 30)  # Tết
    r = cal.next_working_instant(datetime(2025, 6, 12, 2, tzinfo=timezone.utc))
    assert r == vn(2025, 6, 12, 9) and r.utcoffset() == timedelta(hours=7)


def test_minutes_between_sign_and_truncation(cal):
    a, b = vn(2025, 6, 12, 9), vn(2025, 6, 12, 9, 10, 59)
    assert cal.working_minutes_between(a, b) == 10
    assert cal.working_minutes_between(b, a) == -10
    assert cal.working_minutes_between(a, a) == 0
    assert cal.working_minutes_between(vn(2025, 6, 14, 8), vn(2025, 6, 15, 16)) == 0   # weekend


def test_working_days_between(cal):
    assert cal.working_days_between(date(2025, 1, 24), date(2025, 2, 5)) == 3
    assert cal.working_days_between(date(2025, 2, 5), date(2025, 1, 24)) == -3
    assert cal.working_days_between(date(2025, 4, 24), date(2025, 4, 26)) == 2


# --------------------------------------------------------------------------------------------------- properties


def test_add_working_days_matches_reference(cal, ref):
    rnd = random.Random(20250424)
    for _ in range(3000):
        received = random_instant(rnd)
        n = rnd.choice([0, 0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, rnd.randrange(0, 200)])
        cutoff = rnd.choice([None, None, CUTOFF, time(11, 30), time(16, 0)])
        assert cal.add_working_days(received, n, cutoff=cutoff) == ref.add_working_days(received, n, cutoff), \
            (received, n, cutoff)


def test_add_working_minutes_matches_reference(cal, ref):
    rnd = random.Random(7)
    for _ in range(1500):
        start = random_instant(rnd)
        minutes = rnd.choice([0, 1, 30, 60, 210, 240, 449, 450, 451, 900, 2250, rnd.randrange(0, 20000)])
        got = cal.add_working_minutes(start, minutes)
        assert got == ref.add_working_minutes(start, minutes), (start, minutes)
        assert got.utcoffset() == timedelta(hours=7)
        assert cal.working_minutes_between(start, got) == minutes, (start, minutes)


def test_working_minutes_between_matches_reference(cal, ref):
    rnd = random.Random(11)
    for _ in range(1500):
        a = random_instant(rnd)
        b = a + timedelta(minutes=rnd.randrange(-40 * 24 * 60, 40 * 24 * 60), seconds=rnd.choice([0, 0, 17]))
        expected = ref.working_minutes_between(a, b)
        assert cal.working_minutes_between(a, b) == expected, (a, b)
        assert cal.working_minutes_between(b, a) == -expected
        if expected > 0:
            # Adding the measured minutes to a lands at or before b, never after.
            assert cal.add_working_minutes(a, expected) <= b


def test_next_working_instant_matches_reference(cal, ref):
    rnd = random.Random(3)
    for _ in range(1500):
        t = random_instant(rnd)
        assert cal.next_working_instant(t) == ref.next_working_instant(t), t


def test_is_working_day_matches_reference_every_day(cal, ref):
    d = date(2015, 1, 1)
    while d <= date(2045, 12, 31):
        assert cal.is_working_day(d) == ref.is_working(d), d
        d += timedelta(days=1)


# --------------------------------------------------------------------------------------------------- days()


def test_days_2026(cal):
    days = cal.days(2026)
    assert days == sorted(days, key=lambda c: c.date)
    by_date = {c.date: c for c in days}
    for d in range(16, 21):
        c = by_date[date(2026, 2, d)]
        assert c.working is False and "Tết" in c.reason
    assert by_date[date(2026, 8, 22)] == CalendarDay(date(2026, 8, 22), True, by_date[date(2026, 8, 22)].reason)
    assert by_date[date(2026, 8, 22)].working is True and "31/8/2026" in by_date[date(2026, 8, 22)].reason
    assert by_date[date(2026, 8, 31)].working is False and by_date[date(2026, 8, 31)].reason
    assert by_date[date(2026, 4, 27)].working is False and "Hùng Vương" in by_date[date(2026, 4, 27)].reason
    assert date(2026, 4, 26) not in by_date        # a Sunday is off anyway
    assert date(2026, 2, 23) not in by_date        # an ordinary Monday
    for c in days:
        assert c.date.year == 2026 and c.reason
        assert c.working == (c.date.weekday() >= 5)


def test_days_2025_swap(cal):
    by_date = {c.date: c for c in cal.days(2025)}
    assert by_date[date(2025, 4, 26)].working is True
    assert by_date[date(2025, 5, 2)].working is False
    assert date(2025, 2, 1) not in by_date         # Tết day on a Saturday: not a weekday off


def test_days_out_of_range_year_extends(cal):
    local = WorkingCalendar(tz=VN, office_hours=parse_office_hours(HOURS), overrides={},
                            first_year=2025, last_year=2025)
    assert [c.date for c in local.days(2024) if c.working] == [date(2024, 5, 4)]  # package-known swap Saturday
    assert local.first_year <= 2024


# --------------------------------------------------------------------------------------------------- overrides


def test_extra_override_file_adds_day_off(tmp_path):
    extra = tmp_path / "unit.yaml"
    extra.write_text(
        "2025:\n"
        "  days_off:\n"
        "    - date: 2025-06-16\n"
        "      note: \"Nghỉ bù theo quyết định của UBND tỉnh\"\n", encoding="utf-8")
    overrides = load_overrides([OVERRIDES, extra])
    assert overrides[date(2025, 6, 16)] == (False, "Nghỉ bù theo quyết định của UBND tỉnh")
    assert overrides[date(2025, 4, 26)][0] is True          # the shipped file is still there
    c = WorkingCalendar(tz=VN, office_hours=parse_office_hours(HOURS), overrides=overrides)
    assert not c.is_working_day(date(2025, 6, 16))
    assert c.add_working_days(vn(2025, 6, 13, 9), 1) == vn(2025, 6, 17, 17)
    assert CalendarDay(date(2025, 6, 16), False, "Nghỉ bù theo quyết định của UBND tỉnh") in c.days(2025)


def test_later_override_file_wins(tmp_path):
    extra = tmp_path / "cancel.yaml"
    extra.write_text("2025:\n  days_off:\n    - date: 2025-04-26\n      note: cancelled\n", encoding="utf-8")
    assert load_overrides([OVERRIDES, extra])[date(2025, 4, 26)] == (False, "cancelled")
    assert load_overrides([extra, OVERRIDES])[date(2025, 4, 26)][0] is True


def test_override_file_missing_names_it(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InvalidInput) as exc:
        load_overrides([OVERRIDES, missing])
    assert str(missing) in exc.value.message


@pytest.mark.parametrize("body", [
    "2025:\n  days_off:\n    - date: 2025-02-30\n",          # impossible date
    "2025:\n  days_off:\n    - date: \"26/04/2025\"\n",      # wrong format
    "2025:\n  days_off:\n    - date: 2026-01-02\n",          # listed under the wrong year
    "2025:\n  day_off:\n    - date: 2025-01-02\n",           # misspelt section
    "2025:\n  days_off:\n    - 2025-06-16\n  working_days:\n    - 2025-06-16\n",  # both
])
def test_override_file_bad_content(tmp_path, body):
    bad = tmp_path / "bad.yaml"
    bad.write_text(body, encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        load_overrides([bad])
    assert str(bad) in exc.value.message


def test_override_bare_dates_and_empty_file(tmp_path):
    f = tmp_path / "bare.yaml"
    f.write_text("2027:\n  working_days: [2027-02-06]\n", encoding="utf-8")
    assert load_overrides([f]) == {date(2027, 2, 6): (True, "")}
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    assert load_overrides([empty]) == {}


# --------------------------------------------------------------------------------------------------- bad input


def test_naive_datetime_rejected(cal):
    naive = datetime(2025, 6, 11, 9)
    for call in (lambda: cal.add_working_days(naive, 1),
                 lambda: cal.add_working_days(naive, 0, cutoff=CUTOFF),
                 lambda: cal.add_working_minutes(naive, 10),
                 lambda: cal.add_working_hours(naive, 1),
                 lambda: cal.next_working_instant(naive),
                 lambda: cal.working_minutes_between(naive, vn(2025, 6, 12, 9)),
                 lambda: cal.working_minutes_between(vn(2025, 6, 12, 9), naive)):
        with pytest.raises(InvalidInput) as exc:
            call()
        assert exc.value.code == "naive_datetime"
        assert "múi giờ" in exc.value.message


def test_not_a_datetime_rejected(cal):
    with pytest.raises(InvalidInput):
        cal.add_working_days(date(2025, 6, 11), 1)
    with pytest.raises(InvalidInput):
        cal.add_working_days("2025-06-11T09:00:00+07:00", 1)


def test_negative_counts_rejected(cal):
    with pytest.raises(InvalidInput):
        cal.add_working_days(vn(2025, 6, 11, 9), -1)
    with pytest.raises(InvalidInput):
        cal.add_working_minutes(vn(2025, 6, 11, 9), -1)
    with pytest.raises(InvalidInput):
        cal.add_working_hours(vn(2025, 6, 11, 9), -0.5)
    with pytest.raises(InvalidInput):
        cal.add_working_days(vn(2025, 6, 11, 9), 1.5)
    with pytest.raises(InvalidInput):
        cal.add_working_hours(vn(2025, 6, 11, 9), float("nan"))


@pytest.mark.parametrize("text", [
    "", "   ", "07:30-11:30;13:30-17:00", "7h30-11h30", "11:30-07:30", "07:30-07:30",
    "13:30-17:00,07:30-11:30", "07:30-12:00,11:30-17:00", "25:00-26:00", "07:60-11:30", "07:30-11:30,",
])
def test_bad_office_hours(text):
    with pytest.raises(InvalidInput) as exc:
        parse_office_hours(text)
    assert exc.value.code == "invalid_office_hours"


def test_good_office_hours():
    assert parse_office_hours(" 7:30 - 11:30 , 13:30-17:00 ") == ((time(7, 30), time(11, 30)),
                                                                  (time(13, 30), time(17, 0)))
    assert parse_office_hours("08:00-17:00") == ((time(8), time(17)),)


# --------------------------------------------------------------------------------------------------- range, cache


def test_range_extends_instead_of_failing(cal):
    small = WorkingCalendar(tz=VN, office_hours=parse_office_hours(HOURS), overrides=load_overrides([OVERRIDES]),
                            first_year=2025, last_year=2025)
    assert small.add_working_days(vn(2025, 12, 20, 9), 30) == cal.add_working_days(vn(2025, 12, 20, 9), 30)
    assert small.add_working_days(vn(2010, 3, 1, 9), 2) == cal.add_working_days(vn(2010, 3, 1, 9), 2)
    assert small.add_working_minutes(vn(2025, 12, 31, 16), 450 * 40) == \
        cal.add_working_minutes(vn(2025, 12, 31, 16), 450 * 40)
    assert small.working_minutes_between(vn(2024, 12, 31, 16), vn(2027, 1, 4, 8)) == \
        cal.working_minutes_between(vn(2024, 12, 31, 16), vn(2027, 1, 4, 8))
    assert small.first_year <= 2010 and small.last_year >= 2027
    with pytest.raises(InvalidInput):
        small.add_working_days(vn(2300, 1, 1, 9), 1)


def test_calendar_for_is_cached_and_invalidated():
    invalidate_calendars()
    try:
        a = calendar_for()
        assert calendar_for() is a
        assert calendar_for(HOURS) is calendar_for(HOURS)
        other = calendar_for("08:00-12:00,13:00-17:00")
        assert other is not a and other.minutes_per_day == 480
        invalidate_calendars()
        assert calendar_for() is not a
        with pytest.raises(InvalidInput):
            calendar_for("not hours")
    finally:
        invalidate_calendars()
