"""The one working-time calendar used by everything that counts time (SLA, warnings, KPIs).

A working day is Monday-Friday, minus the Vietnamese statutory holidays of the `holidays` package (country VN,
which already moves weekend holidays to the next working day and carries some day-off swaps), plus the worked
weekend days that package knows, then corrected by the operator override files: `days_off` are removed,
`working_days` (made-up Saturdays) are added. Every working day has the same office hours (units differ by
office hours only).

Everything is precomputed once per calendar for a range of years (default 2015-2045): the sorted ordinals of the
working days, the closing instant of every working day and, for every calendar day, the number of working days up
to and including it (that dense table is the answer `bisect_right(working_ordinals, day)` would give, looked up in
O(1) instead of O(log n)). Because every working day has the same office hours, the working-time prefix before
working day *i* is ``i * minutes_per_day``, so an instant maps to one integer "working-time coordinate"
(microseconds) and back with a divmod. Adding working days or minutes is a few index look-ups; nothing loops day by
day. An input outside the precomputed range extends (rebuilds) the range instead of failing, within the years the
`holidays` package has lunar data for (1901-2100).

Civil Code Art. 147: a period counted in days starts on the day after the event.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import holidays as _holidays
import yaml

from engine.errors import InvalidInput

__all__ = [
    "CalendarDay",
    "WorkingCalendar",
    "parse_office_hours",
    "load_overrides",
    "calendar_for",
    "invalidate_calendars",
    "MIN_YEAR",
    "MAX_YEAR",
]

# The `holidays` package has Vietnamese lunar-calendar data for 1901-2100 only; outside it the calendar would be
# silently wrong (no Tết), so the range may not grow beyond these years.
MIN_YEAR = 1901
MAX_YEAR = 2100

_US_PER_SECOND = 1_000_000
_US_PER_MINUTE = 60 * _US_PER_SECOND

_DEFAULT_DAY_OFF_REASON = "Ngày nghỉ theo thông báo"
_DEFAULT_WORKED_REASON = "Ngày làm việc bù"
_SWAP_DATE_RE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_INTERVAL_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class CalendarDay:
    """A day that departs from the Monday-Friday rule: a weekday off or a worked weekend day."""

    date: _dt.date
    working: bool
    reason: str


# --------------------------------------------------------------------------------------------------- parsing


def _check_intervals(intervals: tuple[tuple[time, time], ...],
                     text: str | None = None) -> tuple[tuple[time, time], ...]:
    shown = f"«{text}»" if text is not None else "đã cho"
    if not intervals:
        raise InvalidInput(f"Giờ làm việc {shown} không có khoảng nào.", code="invalid_office_hours")
    previous_end: time | None = None
    for start, end in intervals:
        if not isinstance(start, time) or not isinstance(end, time):
            raise InvalidInput(f"Giờ làm việc {shown}: mỗi khoảng phải là hai giá trị giờ (time).",
                               code="invalid_office_hours")
        if start.tzinfo is not None or end.tzinfo is not None:
            raise InvalidInput(f"Giờ làm việc {shown}: giờ làm việc là giờ địa phương, không kèm múi giờ.",
                               code="invalid_office_hours")
        if not start < end:
            raise InvalidInput(
                f"Giờ làm việc {shown}: khoảng {start:%H:%M}-{end:%H:%M} có giờ bắt đầu không trước giờ kết thúc.",
                code="invalid_office_hours")
        if previous_end is not None and start < previous_end:
            raise InvalidInput(
                f"Giờ làm việc {shown}: các khoảng chồng lấn nhau hoặc không theo thứ tự thời gian "
                f"(khoảng bắt đầu {start:%H:%M} trước khi khoảng trước kết thúc lúc {previous_end:%H:%M}).",
                code="invalid_office_hours")
        previous_end = end
    return intervals


def parse_office_hours(text: str) -> tuple[tuple[time, time], ...]:
    """Parse ``"07:30-11:30,13:30-17:00"`` into ``((time(7,30), time(11,30)), (time(13,30), time(17,0)))``.

    Intervals must be well formed, each non-empty, sorted and not overlapping (touching is allowed)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("Giờ làm việc trống; dạng đúng: 07:30-11:30,13:30-17:00.", code="invalid_office_hours")
    out: list[tuple[time, time]] = []
    for part in text.split(","):
        m = _INTERVAL_RE.match(part)
        if not m:
            raise InvalidInput(
                f"Giờ làm việc «{text}» không hợp lệ ở phần «{part.strip()}»; dạng đúng: 07:30-11:30,13:30-17:00.",
                code="invalid_office_hours")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise InvalidInput(f"Giờ làm việc «{text}»: giờ không tồn tại ở phần «{part.strip()}».",
                               code="invalid_office_hours")
        out.append((time(h1, m1), time(h2, m2)))
    return _check_intervals(tuple(out), text)


def _parse_override_date(value: Any, path: Path, year: int, section: str) -> date:
    if isinstance(value, datetime):
        raise InvalidInput(f"Tệp lịch {path}: mục {section} năm {year} phải là ngày, không phải thời điểm ({value}).",
                           code="calendar_bad_date")
    if isinstance(value, date):
        d = value
    elif isinstance(value, str):
        try:
            d = date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"Tệp lịch {path}: ngày «{value}» trong {section} năm {year} không hợp lệ "
                               f"(dạng đúng YYYY-MM-DD).", code="calendar_bad_date") from None
    else:
        raise InvalidInput(f"Tệp lịch {path}: ngày «{value!r}» trong {section} năm {year} không hợp lệ "
                           f"(dạng đúng YYYY-MM-DD).", code="calendar_bad_date")
    if d.year != year:
        raise InvalidInput(f"Tệp lịch {path}: ngày {d.isoformat()} được ghi dưới năm {year}.",
                           code="calendar_bad_date")
    return d


def _load_override_file(path: Path) -> dict[date, tuple[bool, str]]:
    if not path.is_file():
        raise InvalidInput(f"Không tìm thấy tệp lịch làm việc: {path}", code="calendar_file_missing")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, ValueError) as exc:
        # PyYAML raises ValueError for an impossible date such as 2025-02-30.
        raise InvalidInput(f"Tệp lịch {path} không đọc được (ngày hoặc cú pháp YAML không hợp lệ): {exc}",
                           code="calendar_bad_date") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Không đọc được tệp lịch {path}: {exc}", code="calendar_file_unreadable") from None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"Tệp lịch {path}: nội dung phải là danh sách theo năm (năm: working_days/days_off).",
                           code="calendar_bad_file")
    result: dict[date, tuple[bool, str]] = {}
    for year_key, section in raw.items():
        try:
            year = int(year_key)
        except (TypeError, ValueError):
            raise InvalidInput(f"Tệp lịch {path}: khoá «{year_key}» không phải là năm.",
                               code="calendar_bad_file") from None
        if section is None:
            continue
        if not isinstance(section, Mapping):
            raise InvalidInput(f"Tệp lịch {path}: năm {year} phải có working_days và/hoặc days_off.",
                               code="calendar_bad_file")
        unknown = set(section) - {"working_days", "days_off"}
        if unknown:
            listed = ", ".join(sorted(map(str, unknown)))
            raise InvalidInput(f"Tệp lịch {path}: năm {year} có mục không biết: {listed} "
                               f"(chỉ dùng working_days, days_off).", code="calendar_bad_file")
        for name, working in (("working_days", True), ("days_off", False)):
            entries = section.get(name) or []
            if not isinstance(entries, list):
                raise InvalidInput(f"Tệp lịch {path}: {name} năm {year} phải là một danh sách.",
                                   code="calendar_bad_file")
            for entry in entries:
                if isinstance(entry, Mapping):
                    if "date" not in entry:
                        raise InvalidInput(f"Tệp lịch {path}: một mục {name} năm {year} thiếu «date».",
                                           code="calendar_bad_date")
                    d = _parse_override_date(entry["date"], path, year, name)
                    note = entry.get("note") or ""
                    if not isinstance(note, str):
                        note = str(note)
                else:
                    d = _parse_override_date(entry, path, year, name)
                    note = ""
                if d in result and result[d][0] != working:
                    raise InvalidInput(f"Tệp lịch {path}: ngày {d.isoformat()} vừa là ngày làm việc vừa là ngày nghỉ.",
                                       code="calendar_conflict")
                result[d] = (working, note.strip())
    return result


def load_overrides(paths: Iterable[Path | str]) -> dict[date, tuple[bool, str]]:
    """Read override files: ``date -> (is_working_day, note)``. A later file overrides an earlier one per date.

    Format (YAML): ``{year: {working_days: [{date: YYYY-MM-DD, note: "..."}], days_off: [...]}}``; an entry may
    also be a bare date. A missing file, an impossible date, a date under the wrong year or a date listed both
    as worked and off in one file raise InvalidInput naming the file."""
    merged: dict[date, tuple[bool, str]] = {}
    for p in paths:
        merged.update(_load_override_file(Path(p)))
    return merged


# --------------------------------------------------------------------------------------------------- tables


def _tod_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_SECOND + t.microsecond


class _Tables:
    """Immutable precomputed arrays for first_year..last_year (replaced as a whole when the range grows)."""

    __slots__ = ("first_year", "last_year", "base", "ndays", "flag", "upto", "wd_ord", "nwd", "ends", "by_year")

    def __init__(self, *, tz: _dt.tzinfo, close: time, overrides: Mapping[date, tuple[bool, str]],
                 first_year: int, last_year: int):
        hol = _holidays.country_holidays("VN", years=range(first_year, last_year + 1), language="vi")
        names: dict[date, str] = dict(hol.items())
        # Worked weekend days the package knows (made-up Saturdays); their reason names the swapped day off.
        worked_reason: dict[date, str] = {}
        for d in getattr(hol, "weekend_workdays", ()) or ():
            worked_reason[d] = _DEFAULT_WORKED_REASON
        if worked_reason:
            for off_day, name in names.items():
                for m in _SWAP_DATE_RE.finditer(name):
                    try:
                        worked = date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
                    except ValueError:
                        continue
                    if worked in worked_reason:
                        worked_reason[worked] = (f"{_DEFAULT_WORKED_REASON} (thay cho ngày nghỉ "
                                                 f"{off_day:%d/%m/%Y})")

        start = date(first_year, 1, 1)
        base = start.toordinal()
        ndays = date(last_year, 12, 31).toordinal() - base + 1
        flag = bytearray(ndays)
        upto = [0] * ndays
        wd_ord: list[int] = []
        by_year: dict[int, list[CalendarDay]] = {}
        weekday = start.weekday()
        for k in range(ndays):
            o = base + k
            weekend = weekday >= 5
            d = date.fromordinal(o)
            reason = None
            ov = overrides.get(d)
            if ov is not None:
                working, reason = ov
                if not reason:
                    reason = names.get(d) if not working else worked_reason.get(d)
            elif d in names:
                working, reason = False, names[d]
            elif d in worked_reason:
                working, reason = True, worked_reason[d]
            else:
                working = not weekend
            if working:
                wd_ord.append(o)
                flag[k] = 1
            upto[k] = len(wd_ord)
            if working == weekend:  # departs from the Monday-Friday rule
                if not reason:
                    reason = _DEFAULT_WORKED_REASON if working else _DEFAULT_DAY_OFF_REASON
                by_year.setdefault(d.year, []).append(CalendarDay(d, working, reason))
            weekday = 0 if weekday == 6 else weekday + 1

        self.first_year = first_year
        self.last_year = last_year
        self.base = base
        self.ndays = ndays
        self.flag = bytes(flag)
        self.upto = upto
        self.wd_ord = wd_ord
        self.nwd = len(wd_ord)
        combine = datetime.combine
        fromordinal = date.fromordinal
        self.ends = [combine(fromordinal(o), close, tzinfo=tz) for o in wd_ord]
        self.by_year = by_year


# --------------------------------------------------------------------------------------------------- calendar


def _bad_datetime(value: Any, what: str) -> InvalidInput:
    if isinstance(value, datetime):
        return InvalidInput(f"{what} «{value.isoformat()}» không có múi giờ; cần thời điểm có múi giờ "
                            f"(ví dụ 2025-04-24T09:00:00+07:00).", code="naive_datetime")
    return InvalidInput(f"{what} phải là thời điểm (datetime) có múi giờ, không phải «{value!r}».",
                        code="invalid_datetime")


class WorkingCalendar:
    """Working days and office hours of one unit; all arithmetic O(1)/O(log n) on precomputed arrays."""

    def __init__(self, *, tz: _dt.tzinfo, office_hours: tuple[tuple[time, time], ...],
                 overrides: Mapping[date, tuple[bool, str]], first_year: int = 2015, last_year: int = 2045):
        if not isinstance(tz, _dt.tzinfo):
            raise InvalidInput(f"Múi giờ không hợp lệ: {tz!r}", code="invalid_timezone")
        try:
            intervals = tuple((s, e) for s, e in office_hours)
        except (TypeError, ValueError):
            raise InvalidInput(f"Giờ làm việc không hợp lệ: {office_hours!r}", code="invalid_office_hours") from None
        if not (MIN_YEAR <= first_year <= last_year <= MAX_YEAR):
            raise InvalidInput(f"Khoảng năm của lịch phải nằm trong {MIN_YEAR}-{MAX_YEAR} "
                               f"(đã cho {first_year}-{last_year}).", code="calendar_out_of_range")
        self.tz = tz
        self.office_hours: tuple[tuple[time, time], ...] = _check_intervals(intervals)
        self._overrides = dict(overrides)
        iv = []
        cum = 0
        for s, e in self.office_hours:
            su, eu = _tod_us(s), _tod_us(e)
            iv.append((su, eu, cum, s))
            cum += eu - su
        self._iv = tuple(iv)
        self._day_us = cum
        self.minutes_per_day: int = cum // _US_PER_MINUTE
        self._open = self.office_hours[0][0]
        self._close = self.office_hours[-1][1]
        self._lock = threading.Lock()
        self._t = self._build(first_year, last_year)

    def __repr__(self) -> str:
        hours = ",".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in self.office_hours)
        return f"WorkingCalendar(tz={self.tz}, office_hours={hours!r}, years={self._t.first_year}-{self._t.last_year})"

    @property
    def first_year(self) -> int:
        return self._t.first_year

    @property
    def last_year(self) -> int:
        return self._t.last_year

    # ------------------------------------------------------------------ range management

    def _build(self, first_year: int, last_year: int) -> _Tables:
        return _Tables(tz=self.tz, close=self._close, overrides=self._overrides,
                       first_year=first_year, last_year=last_year)

    def _extend(self, *, first_year: int | None = None, last_year: int | None = None) -> _Tables:
        """Grow the precomputed range so it covers first_year..last_year (rebuild); InvalidInput past the limits."""
        with self._lock:
            t = self._t
            lo = t.first_year if first_year is None else min(t.first_year, first_year)
            hi = t.last_year if last_year is None else max(t.last_year, last_year)
            if lo == t.first_year and hi == t.last_year:
                return t
            if lo < MIN_YEAR or hi > MAX_YEAR:
                if (lo < MIN_YEAR and t.first_year == MIN_YEAR) or (hi > MAX_YEAR and t.last_year == MAX_YEAR):
                    raise InvalidInput(f"Thời hạn vượt ra ngoài khoảng lịch hỗ trợ ({MIN_YEAR}-{MAX_YEAR}).",
                                       code="calendar_out_of_range")
                lo, hi = max(lo, MIN_YEAR), min(hi, MAX_YEAR)
            t = self._build(lo, hi)
            self._t = t
            return t

    def _tables_for(self, d: date) -> tuple[_Tables, int]:
        """Tables covering local date d and d's day index in them."""
        t = self._t
        k = d.toordinal() - t.base
        if 0 <= k < t.ndays:
            return t, k
        y = d.year
        if not MIN_YEAR <= y <= MAX_YEAR:
            raise InvalidInput(f"Ngày {d.isoformat()} nằm ngoài khoảng lịch hỗ trợ ({MIN_YEAR}-{MAX_YEAR}).",
                               code="calendar_out_of_range")
        # Grow with a margin so that a stream of dates just past the range does not rebuild for each year.
        if y < t.first_year:
            t = self._extend(first_year=max(MIN_YEAR, y - 5))
        else:
            t = self._extend(last_year=min(MAX_YEAR, y + 5))
        return t, d.toordinal() - t.base

    def _grow_for_index(self, t: _Tables, idx: int) -> None:
        """Extend the range so that working-day index idx exists (roughly 245 working days a year)."""
        missing = idx - t.nwd + 1
        self._extend(last_year=t.last_year + missing // 240 + 1)

    def _local(self, t: Any, what: str = "Thời điểm") -> datetime:
        if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
            raise _bad_datetime(t, what)
        return t.astimezone(self.tz)

    # ------------------------------------------------------------------ days

    def is_working_day(self, d: date) -> bool:
        """Whether d is a working day (an aware datetime is taken at its local date)."""
        if isinstance(d, datetime):
            d = self._local(d, "Ngày").date()
        elif not isinstance(d, date):
            raise InvalidInput(f"Ngày không hợp lệ: {d!r}", code="invalid_date")
        t, k = self._tables_for(d)
        return bool(t.flag[k])

    def end_of_working_day(self, d: date) -> datetime:
        """Closing time of the last office interval on d (an aware datetime is taken at its local date)."""
        if isinstance(d, datetime):
            d = self._local(d, "Ngày").date()
        elif not isinstance(d, date):
            raise InvalidInput(f"Ngày không hợp lệ: {d!r}", code="invalid_date")
        return datetime.combine(d, self._close, tzinfo=self.tz)

    def days(self, year: int) -> list[CalendarDay]:
        """The weekdays off and the worked weekend days of year, each with its reason, sorted by date."""
        if not isinstance(year, int) or isinstance(year, bool):
            raise InvalidInput(f"Năm không hợp lệ: {year!r}", code="invalid_year")
        t = self._t
        if not t.first_year <= year <= t.last_year:
            if not MIN_YEAR <= year <= MAX_YEAR:
                raise InvalidInput(f"Năm {year} nằm ngoài khoảng lịch hỗ trợ ({MIN_YEAR}-{MAX_YEAR}).",
                                   code="calendar_out_of_range")
            t = self._extend(first_year=year, last_year=year)
        return list(t.by_year.get(year, ()))

    def _check_days_args(self, received: Any, days: Any, cutoff: Any) -> tuple[int, time | None]:
        """Slow path of add_working_days validation: raise, or return normalised (days, cutoff)."""
        self._local(received, "Thời điểm tiếp nhận")
        if isinstance(days, bool) or not hasattr(days, "__index__"):
            raise InvalidInput(f"Số ngày làm việc phải là số nguyên, không phải «{days!r}».", code="invalid_days")
        days = int(days.__index__())
        if days < 0:
            raise InvalidInput(f"Số ngày làm việc không được âm (đã cho {days}).", code="negative_days")
        if cutoff is not None:
            if not isinstance(cutoff, time) or isinstance(cutoff, datetime):
                raise InvalidInput(f"Giờ chốt tiếp nhận phải là giờ (time), không phải «{cutoff!r}».",
                                   code="invalid_cutoff")
            if cutoff.tzinfo is not None:
                cutoff = cutoff.replace(tzinfo=None)
        return days, cutoff

    def add_working_days(self, received: datetime, days: int, *, cutoff: time | None = None) -> datetime:
        """Appointment for a procedure of `days` working days received at `received` (Civil Code Art. 147).

        D = local date of received; E = D if D is a working day and (no cutoff or local time < cutoff), else the
        next working day after D. days == 0: closing time of E. days >= 1: closing time of the days-th working day
        strictly after D (no cutoff) or strictly after E (with a cutoff)."""
        # Hot path: keep it to a handful of attribute reads and index look-ups.
        if (received.__class__ is not datetime or received.tzinfo is None or days.__class__ is not int or days < 0
                or (cutoff is not None and (cutoff.__class__ is not time or cutoff.tzinfo is not None))):
            days, cutoff = self._check_days_args(received, days, cutoff)
        local = received.astimezone(self.tz)
        t = self._t
        k = local.toordinal() - t.base
        if 0 <= k < t.ndays:
            if cutoff is None:
                if days:
                    i = t.upto[k] + days - 1
                elif t.flag[k]:
                    i = t.upto[k] - 1
                else:
                    i = t.upto[k]
            elif t.flag[k] and local.time() < cutoff:
                i = t.upto[k] - 1 + days
            else:
                i = t.upto[k] + days
            if i < t.nwd:
                return t.ends[i]
            self._grow_for_index(t, i)
        else:
            self._tables_for(local.date())
        return self.add_working_days(received, days, cutoff=cutoff)

    # ------------------------------------------------------------------ minutes

    def _coord(self, t: _Tables, k: int, local: datetime) -> int:
        """Working time (µs) from the start of the table range to the instant `local` on table day k."""
        upto = t.upto[k]
        if not t.flag[k]:
            return upto * self._day_us
        tod = ((local.hour * 60 + local.minute) * 60 + local.second) * _US_PER_SECOND + local.microsecond
        inday = 0
        for s, e, _cum, _st in self._iv:
            if tod <= s:
                break
            inday += (e if tod > e else tod) - s
        return (upto - 1) * self._day_us + inday

    def _instant(self, t: _Tables, w: int) -> datetime | None:
        """The earliest instant whose working-time coordinate is w (> 0): an exact interval end stays an end."""
        idx, r = divmod(w - 1, self._day_us)
        if idx >= t.nwd:
            return None
        r += 1
        tod = 0
        for s, e, cum, _st in self._iv:
            if r <= cum + (e - s):
                tod = s + (r - cum)
                break
        d = date.fromordinal(t.wd_ord[idx])
        sec, us = divmod(tod, _US_PER_SECOND)
        minute, sec = divmod(sec, 60)
        hour, minute = divmod(minute, 60)
        return datetime(d.year, d.month, d.day, hour, minute, sec, us, tzinfo=self.tz)

    def next_working_instant(self, t: datetime) -> datetime:
        """t itself (in tz) if inside the office hours of a working day, else the next opening."""
        local = self._local(t)
        tb, k = self._tables_for(local.date())
        if tb.flag[k]:
            tod = ((local.hour * 60 + local.minute) * 60 + local.second) * _US_PER_SECOND + local.microsecond
            for s, e, _cum, start in self._iv:
                if tod < s:
                    return datetime.combine(local.date(), start, tzinfo=self.tz)
                if tod < e:
                    return local
        idx = tb.upto[k]
        while idx >= tb.nwd:
            self._grow_for_index(tb, idx)
            tb, k = self._tables_for(local.date())
            idx = tb.upto[k]
        return datetime.combine(date.fromordinal(tb.wd_ord[idx]), self._open, tzinfo=self.tz)

    def add_working_minutes(self, start: datetime, minutes: int) -> datetime:
        """The instant after `minutes` working minutes from start (start first clamped to next_working_instant).

        A result exactly at the end of an office interval is that end (11:30, 17:00), not the next opening."""
        if isinstance(minutes, bool) or not hasattr(minutes, "__index__"):
            raise InvalidInput(f"Số phút làm việc phải là số nguyên, không phải «{minutes!r}».",
                               code="invalid_minutes")
        minutes = int(minutes.__index__())
        if minutes < 0:
            raise InvalidInput(f"Số phút làm việc không được âm (đã cho {minutes}).", code="negative_minutes")
        if minutes == 0:
            return self.next_working_instant(start)
        local = self._local(start)
        while True:
            tb, k = self._tables_for(local.date())
            w = self._coord(tb, k, local) + minutes * _US_PER_MINUTE
            result = self._instant(tb, w)
            if result is not None:
                return result
            self._grow_for_index(tb, (w - 1) // self._day_us)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """add_working_minutes(start, round(hours * 60))."""
        try:
            if isinstance(hours, bool) or not math.isfinite(hours):
                raise TypeError
            minutes = round(hours * 60)
        except (TypeError, ValueError, OverflowError):
            raise InvalidInput(f"Số giờ làm việc không hợp lệ: «{hours!r}».", code="invalid_hours") from None
        if hours < 0:
            raise InvalidInput(f"Số giờ làm việc không được âm (đã cho {hours}).", code="negative_hours")
        return self.add_working_minutes(start, minutes)

    def working_minutes_between(self, start: datetime, end: datetime) -> int:
        """Whole working minutes in [start, end) (truncated); negative (same magnitude) if end < start."""
        a = self._local(start, "Thời điểm bắt đầu")
        b = self._local(end, "Thời điểm kết thúc")
        lo, hi = (a, b) if a <= b else (b, a)
        self._tables_for(lo.date())
        tb, khi = self._tables_for(hi.date())
        klo = lo.toordinal() - tb.base  # same tables for both ends
        if not 0 <= klo < tb.ndays:  # the range was replaced concurrently; retry on the current one
            return self.working_minutes_between(start, end)
        diff = self._coord(tb, khi, hi) - self._coord(tb, klo, lo)
        minutes = diff // _US_PER_MINUTE
        return minutes if a <= b else -minutes

    # ------------------------------------------------------------------ look-ups for reports

    def working_days_between(self, start: date, end: date) -> int:
        """Working days d with start < d <= end (Art. 147 counting); negative if end < start."""
        if isinstance(start, datetime):
            start = self._local(start, "Ngày bắt đầu").date()
        if isinstance(end, datetime):
            end = self._local(end, "Ngày kết thúc").date()
        if not isinstance(start, date) or not isinstance(end, date):
            raise InvalidInput("Ngày không hợp lệ.", code="invalid_date")
        lo, hi = (start, end) if start <= end else (end, start)
        self._tables_for(lo)
        tb, khi = self._tables_for(hi)
        klo = lo.toordinal() - tb.base
        if not 0 <= klo < tb.ndays:
            return self.working_days_between(start, end)
        n = tb.upto[khi] - tb.upto[klo]
        return n if start <= end else -n


# --------------------------------------------------------------------------------------------------- cache

_cache: dict[tuple[str, str, tuple[str, ...]], WorkingCalendar] = {}
_cache_lock = threading.Lock()


def calendar_for(office_hours: str | None = None) -> WorkingCalendar:
    """The calendar for an office-hours string (default settings().office_hours), cached.

    Uses settings().tz and settings().calendar_files(); the cache key also holds the time zone name and the
    override file list, so changing settings never returns a stale calendar."""
    from engine.config import settings

    s = settings()
    hours = s.office_hours if office_hours is None else office_hours
    files = tuple(str(p) for p in s.calendar_files())
    key = (hours, s.timezone, files)
    cal = _cache.get(key)
    if cal is None:
        with _cache_lock:
            cal = _cache.get(key)
            if cal is None:
                cal = WorkingCalendar(tz=s.tz, office_hours=parse_office_hours(hours),
                                      overrides=load_overrides([Path(f) for f in files]))
                _cache[key] = cal
    return cal


def invalidate_calendars() -> None:
    """Forget every cached calendar (an operator changed an override file)."""
    with _cache_lock:
        _cache.clear()
