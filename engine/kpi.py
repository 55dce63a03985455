"""The reform plan's indicators (Decision 766/QĐ-TTg items), computed from the records by SQL aggregation.

One function serves the CLI, the API and the dashboard:

    indicators(db, unit_code="TS", start=date(2025, 4, 1), end=date(2025, 7, 1), group_by="unit")

gives one IndicatorRow per unit of the subtree (each with its sub-units rolled up), per field, per
procedure, or a single row for the whole (group_by=None); each value sits beside its target, read from
the targets file (data/kpi-targets.yaml, MOTCUA_KPI_TARGETS). The database does the counting, in a
handful of grouped statements (Core `select`, `count(*) FILTER (WHERE …)`, `group_by`) that run on SQLite
and PostgreSQL alike; Python only adds the per-unit counts up the unit tree and divides. How the dossier
statement stays fast at a million dossiers a year: the catalog's facts (fee, components to digitize) join
as a small VALUES table; the components filed for a dossier are one bit mask (bit_or); the side tables
(components filed, results, payments, ratings) are merge-joined by dossier id over index-only scans, only
for the id range of the dossiers in question, cut into slices that PostgreSQL runs in parallel.

Periods are half-open ranges of local dates [start, end): `period_bounds("2025-Q2")` is (1/4/2025,
1/7/2025); an instant t is in the period when start 00:00 <= t < end 00:00, local time.

Whose figures: a dossier counts for its handling unit (the department competent for it, whose timeliness
the on-time rate judges); its payments and its rating count with it. Feedback counts for the unit it is
addressed to, a work file for the unit that made it. A unit's figures include its sub-units.

The formulas — n(X) is the number of X; "received" / "finished" mean received_at / finished_at in the period:
  on_time             n(finished, not stopped, finished_at <= appointment, at most one supplement request)
                      / n(finished, not stopped). The appointment is the one moved by supplement pauses
                      only (`unextended_due_at`, else `due_at`): the pause is the citizen's time and is left
                      out; an extension is the unit's delay and is not. A refused dossier is finished (its
                      refusal was returned) and counts.
  online              n(received through the online channel) / n(received)
  digitized           n(received whose components marked `digitize` in the procedure and present in the
                      dossier all have a document filed (scanned, born electronic or reused), and which,
                      when granted, has an electronic result) / n(received)
  electronic_result   n(finished with outcome granted, with a result document) / n(finished with outcome granted)
  reuse               n(received with at least one component reused from the data store) / n(received)
  online_payment      n(received, of a procedure with a fee (amount > 0), with a payment made online)
                      / n(received, of a procedure with a fee)
  feedback_on_time    n(feedback due in the period, answered or rejected at or before its deadline)
                      / n(feedback due in the period)
  satisfaction        n(ratings given in the period that are "satisfied") / n(ratings given in the period)
  internal_electronic n(work files created in the period electronically) / n(work files created in the period)
A rate whose denominator is zero is None (no data), never 0% or 100%.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import (BigInteger, Text, and_, case, cast, column, distinct, func, literal, or_, select, text,
                        union_all)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from engine import org
from engine.accountability import subtree_ids
from engine.catalog import procedure_names
from engine.config import settings
from engine.errors import InvalidInput, MotcuaError
from engine.models import Document, Dossier, DossierDocument, Feedback, Payment, ProcedureVersion, Rating, WorkFile

D, LINK, DOC, PAY = Dossier.__table__, DossierDocument.__table__, Document.__table__, Payment.__table__
R, F, W, PV = Rating.__table__, Feedback.__table__, WorkFile.__table__, ProcedureVersion.__table__

GROUPS = ("unit", "field", "procedure", None)


@dataclass(frozen=True)
class Spec:
    key: str
    name: str           # as printed in reports
    numerator: str      # names of counts (see _dossier_counts and friends)
    denominator: str
    formula: str        # the formula in words, for the reports


INDICATORS: tuple[Spec, ...] = (
    Spec("on_time", "Tỷ lệ hồ sơ giải quyết đúng hạn", "on_time", "finished",
         "Hồ sơ giải quyết đúng hạn (không tính thời gian chờ bổ sung; yêu cầu bổ sung quá một lần tính là trễ "
         "hạn; gia hạn không được trừ) / hồ sơ đã giải quyết trong kỳ (trừ hồ sơ dừng giải quyết)"),
    Spec("online", "Tỷ lệ hồ sơ tiếp nhận trực tuyến", "online", "received",
         "Hồ sơ tiếp nhận trực tuyến / hồ sơ tiếp nhận trong kỳ"),
    Spec("digitized", "Tỷ lệ số hóa hồ sơ, kết quả", "digitized", "received",
         "Hồ sơ có đủ các thành phần phải số hóa đã được số hóa (và có kết quả điện tử khi được giải quyết) / "
         "hồ sơ tiếp nhận trong kỳ"),
    Spec("electronic_result", "Tỷ lệ cấp kết quả điện tử", "electronic_result", "granted",
         "Hồ sơ có kết quả điện tử / hồ sơ giải quyết cấp kết quả trong kỳ"),
    Spec("reuse", "Tỷ lệ tái sử dụng dữ liệu đã số hóa", "reused", "received",
         "Hồ sơ có thành phần lấy lại từ kho dữ liệu / hồ sơ tiếp nhận trong kỳ"),
    Spec("online_payment", "Tỷ lệ thanh toán trực tuyến", "paid_online", "fee_received",
         "Hồ sơ nộp phí, lệ phí trực tuyến / hồ sơ tiếp nhận trong kỳ của thủ tục có thu phí, lệ phí"),
    Spec("feedback_on_time", "Tỷ lệ phản ánh, kiến nghị được xử lý đúng hạn", "feedback_on_time", "feedback_due",
         "Phản ánh, kiến nghị được trả lời trong thời hạn / phản ánh, kiến nghị đến hạn trong kỳ"),
    Spec("satisfaction", "Tỷ lệ hài lòng", "satisfied", "ratings",
         "Đánh giá hài lòng / tổng số đánh giá trong kỳ"),
    Spec("internal_electronic", "Tỷ lệ hồ sơ công việc tạo lập điện tử", "work_files_electronic", "work_files",
         "Hồ sơ công việc tạo lập điện tử / tổng số hồ sơ công việc tạo lập trong kỳ"),
)
INDICATOR_KEYS = tuple(s.key for s in INDICATORS)


# --- periods ----------------------------------------------------------------------------------------

PERIOD_FORMS = "2025 (năm), 2025-H1 hoặc 2025-H2 (6 tháng), 2025-Q1 … 2025-Q4 (quý), 2025-06 (tháng)"
_PERIOD = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|H([12])|(0[1-9]|1[0-2])))?$")
_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


def period_bounds(period: str) -> tuple[date, date]:
    """[start, end) of a period: "2025" (year), "2025-H1" (6 months), "2025-Q2" (quarter), "2025-06" (month)."""
    match = _PERIOD.match((period or "").strip().upper())
    if not match or int(match.group(1)) < 1:
        raise InvalidInput(f"Kỳ báo cáo '{period}' không hợp lệ; dùng một trong các dạng: {PERIOD_FORMS}",
                           code="period_invalid")
    year, quarter, half, month = match.groups()
    year = int(year)
    first, months = (3 * int(quarter) - 2, 3) if quarter else (6 * int(half) - 5, 6) if half else \
        (int(month), 1) if month else (1, 12)
    start = date(year, first, 1)
    end_month = first + months
    return start, date(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1)


def period_label(period: str) -> str:
    """How a report names the period: "Quý II năm 2025", "6 tháng đầu năm 2025", "Tháng 6 năm 2025"."""
    period_bounds(period)
    year, _, part = period.strip().upper().partition("-")
    if not part:
        return f"Năm {year}"
    if part.startswith("Q"):
        return f"Quý {_ROMAN[int(part[1])]} năm {year}"
    if part.startswith("H"):
        return f"6 tháng {'đầu' if part == 'H1' else 'cuối'} năm {year}"
    return f"Tháng {int(part)} năm {year}"


def _instants(start: date, end: date) -> tuple[datetime, datetime]:
    tz = settings().tz
    return datetime.combine(start, time(0), tz), datetime.combine(end, time(0), tz)


# --- targets ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Targets:
    """The targets of one year of the plan, in percent. internal_electronic is per unit level."""
    year: int | None
    source: str | None
    values: dict[str, Any] = field(default_factory=dict)

    def of(self, key: str, level: str | None = None) -> float | None:
        value = self.values.get(key)
        if isinstance(value, dict):
            value = value.get(level)
        return None if value is None else float(value)


def load_targets(year: int, path: Path | None = None) -> Targets:
    """The targets for a year: that year's entry in the file, else the latest earlier one (targets carry
    over until a plan sets new ones); none before the first year listed."""
    path = path or settings().kpi_targets
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise _targets_error(f"Không đọc được tệp mục tiêu chỉ số {path}: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(y, int) and isinstance(v, dict) for y, v in data.items()):
        raise _targets_error(f"Tệp mục tiêu chỉ số {path} phải có dạng <năm>: {{<chỉ số>: <phần trăm>}}")
    for y, values in data.items():
        unknown = set(values) - set(INDICATOR_KEYS) - {"source"}
        if unknown:
            raise _targets_error(f"Tệp mục tiêu {path}, năm {y}: không có chỉ số {', '.join(sorted(unknown))}; "
                                 f"các chỉ số: {', '.join(INDICATOR_KEYS)}")
    years = [y for y in data if y <= year]
    if not years:
        return Targets(None, None, {})
    chosen = max(years)
    values = dict(data[chosen])
    return Targets(chosen, values.pop("source", None), values)


def _targets_error(message: str) -> MotcuaError:
    err = MotcuaError(message, code="kpi_targets_invalid")
    err.status = 500
    return err


# --- results ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Indicator:
    key: str
    numerator: int
    denominator: int
    target: float | None        # percent

    @property
    def percent(self) -> float | None:
        return 100 * self.numerator / self.denominator if self.denominator else None

    @property
    def met(self) -> bool | None:
        """Target reached? None without data or without a target. (Compared in integers: 49/50 meets 98%.)"""
        if not self.denominator or self.target is None:
            return None
        return self.numerator * 100 >= self.target * self.denominator

    def as_dict(self) -> dict[str, Any]:
        pct = self.percent
        return {"numerator": self.numerator, "denominator": self.denominator,
                "percent": None if pct is None else round(pct, 2), "target": self.target, "met": self.met}


@dataclass
class IndicatorRow:
    group: str | None           # unit code, field, procedure code; None for the whole unit
    label: str                  # unit name, field, procedure name
    values: dict[str, Indicator]
    level: str | None = None    # unit rows: the unit's level (it picks the internal_electronic target)
    parent: str | None = None   # unit rows: the parent's code within the report (None for its root)

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "label": self.label, "level": self.level, "parent": self.parent,
                "indicators": {k: v.as_dict() for k, v in self.values.items()}}


def _row(group: str | None, label: str, counts: Counter, targets: Targets, level: str | None = None,
         parent: str | None = None) -> IndicatorRow:
    values = {s.key: Indicator(s.key, counts[s.numerator], counts[s.denominator], targets.of(s.key, level))
              for s in INDICATORS}
    return IndicatorRow(group, label, values, level, parent)


# --- the entry point --------------------------------------------------------------------------------

def indicators(db: Session, *, unit_code: str, start: date, end: date, group_by: str | None = "unit",
               targets: Targets | None = None) -> list[IndicatorRow]:
    """The indicators of a unit and its sub-units for [start, end) (local dates), grouped by unit (one row
    per unit of the subtree, root first, each including its sub-units), field, procedure, or not (one row)."""
    if group_by not in GROUPS:
        raise InvalidInput("Nhóm theo 'unit', 'field', 'procedure' hoặc không nhóm", code="group_by_invalid")
    if start >= end:
        raise InvalidInput("Ngày bắt đầu kỳ phải trước ngày kết thúc", code="period_invalid")
    root = org.unit_by_code(db, unit_code)
    unit_ids = subtree_ids(db, root.id)
    targets = targets or load_targets(start.year)
    lo, hi = _instants(start, end)
    key = "unit" if group_by in ("unit", None) else group_by
    counts: dict[Any, Counter] = {}
    for part in (_dossier_counts(db, unit_ids, lo, hi, key), _feedback_counts(db, unit_ids, lo, hi, key),
                 _work_file_counts(db, unit_ids, lo, hi, key)):
        for group, values in part.items():
            counts.setdefault(group, Counter()).update(values)
    if key == "unit":
        totals = _roll_up(db, root, counts)
        if group_by is None:
            return [_row(root.code, root.name, totals[root.id], targets, root.level)]
        return [_row(u.code, u.name, totals[u.id], targets, u.level, parent)
                for u, parent in _tree(db, root)]
    names = procedure_names(db) if key == "procedure" else {}
    return [_row(group, names.get(group, group), counts[group], targets) for group in sorted(counts)]


def _tree(db: Session, root: org.UnitInfo, parent: str | None = None):
    """(unit, parent code) depth-first, root first, children in id order."""
    yield root, parent
    for child in org.children(db, root):
        yield from _tree(db, child, root.code)


def _roll_up(db: Session, root: org.UnitInfo, own: dict[Any, Counter]) -> dict[int, Counter]:
    """Each unit's counts plus those of every unit under it. Counts add up; rates are made afterwards."""
    totals: dict[int, Counter] = {}

    def visit(unit: org.UnitInfo) -> Counter:
        total = Counter(own.get(unit.id, Counter()))
        for child in org.children(db, unit):
            total.update(visit(child))
        totals[unit.id] = total
        return total

    visit(root)
    return totals


# --- what the catalog says ----------------------------------------------------------------------------

# Bits per word of a component mask (a signed 64-bit integer on both databases).
WORD_BITS = 62


@dataclass(frozen=True)
class CatalogFacts:
    """What the indicators need from the procedure versions (a few rows, read per call): which versions
    charge a fee, and which components each asks to be digitized, required ones apart from optional ones.
    Every component code of the catalog has a bit (in words of WORD_BITS), so that a set of components is
    one integer per word."""
    fee_versions: frozenset[int]
    bits: dict[str, tuple[int, int]]        # component code -> (word, bit)
    required: dict[int, dict[int, int]]     # version id -> {word: its required components to digitize}
    optional: dict[int, dict[int, int]]     # version id -> {word: its optional components to digitize}

    @property
    def words(self) -> int:
        return max((w for w, _ in self.bits.values()), default=0) + 1

    def to_digitize(self, version_id: int) -> set[str]:
        masks = [self.required.get(version_id, {}), self.optional.get(version_id, {})]
        return {code for code, (w, bit) in self.bits.items() if any(m.get(w, 0) & bit for m in masks)}


def catalog_facts(db: Session) -> CatalogFacts:
    rows = db.execute(select(PV.c.id, PV.c.definition)).all()
    codes = sorted({c["code"] for r in rows for c in r.definition.get("components") or []})
    bits = {code: (i // WORD_BITS, 1 << (i % WORD_BITS)) for i, code in enumerate(codes)}
    fee_versions, required, optional = set(), {}, {}
    for r in rows:
        if ((r.definition.get("fee") or {}).get("amount") or 0) > 0:
            fee_versions.add(r.id)
        required[r.id], optional[r.id] = {}, {}
        for c in r.definition.get("components") or []:
            if c.get("digitize"):
                masks = required[r.id] if c.get("required") else optional[r.id]
                word, bit = bits[c["code"]]
                masks[word] = masks.get(word, 0) | bit
    return CatalogFacts(frozenset(fee_versions), bits, required, optional)


def _facts_table(facts: CatalogFacts):
    """The catalog facts as a small table joined to the dossiers (version_id, fee, required0, optional0…):
    a VALUES list with bound parameters; its columns are column1… on both SQLite and PostgreSQL."""
    words = range(facts.words)
    names = ["version_id", "fee", *(f"required{w}" for w in words), *(f"optional{w}" for w in words)]
    rows, params = [], {}
    for i, version in enumerate(sorted(facts.required)):
        values = [version, int(version in facts.fee_versions), *(facts.required[version].get(w, 0) for w in words),
                  *(facts.optional[version].get(w, 0) for w in words)]
        rows.append("(" + ", ".join(f":f{i}_{j}" for j in range(len(values))) + ")")
        params.update({f"f{i}_{j}": v for j, v in enumerate(values)})
    sql = (f"SELECT {', '.join(f'column{j + 1} AS {n}' for j, n in enumerate(names))} "
           f"FROM (VALUES {', '.join(rows)}) AS facts_values")
    return text(sql).bindparams(**params).columns(*(column(n, BigInteger) for n in names)).subquery("facts")


# --- the statements -----------------------------------------------------------------------------------

def _dossier_counts(db: Session, unit_ids: set[int], lo: datetime, hi: datetime, key: str) -> dict[Any, Counter]:
    """Counts per group of the dossiers (and their documents, results, online payments and ratings).

    The side tables are merge-joined by dossier id, over index-only scans, and only for the id range of the
    dossiers in question (ids grow with receipt, so a month reads about a month). On PostgreSQL the range
    is cut into slices, one branch each of a UNION ALL, which it runs side by side (Parallel Append)."""
    facts = catalog_facts(db)
    span = _id_span(db, unit_ids, lo, hi)
    if not facts.required or span is None:
        return {}
    first, last = span
    slices = _slices(db)
    step = (last - first) // slices + 1
    parts = [_slice_counts(db, facts, unit_ids, lo, hi, key, start, min(start + step, last + 1))
             for start in range(first, last + 1, step)]
    union = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("slices")
    stmt = (select(union.c.grp, *(func.sum(union.c[name]).label(name) for name in SLICE_COUNTS))
            .group_by(union.c.grp))
    with _without_jit(db):
        return _as_counters(db.execute(stmt))


@contextmanager
def _without_jit(db: Session):
    """PostgreSQL would compile this statement's many expressions (JIT) in every process that runs a slice:
    measured on a year of a million dossiers, that costs more than it saves. Off for this statement only."""
    if db.get_bind().dialect.name != "postgresql":
        yield
        return
    before = db.execute(text("SELECT current_setting('jit')")).scalar()
    db.execute(text("SELECT set_config('jit', 'off', true)"))      # local to the transaction
    yield
    # Put back for the rest of the caller's transaction (after an error, the rollback does it).
    db.execute(text("SELECT set_config('jit', :before, true)"), {"before": before})


def _id_span(db: Session, unit_ids: set[int], lo: datetime, hi: datetime) -> tuple[int, int] | None:
    """Smallest and largest id of the dossiers received, finished or rated in the period."""
    in_period = or_(and_(D.c.received_at >= lo, D.c.received_at < hi), and_(D.c.finished_at >= lo, D.c.finished_at < hi))
    dossiers = db.execute(select(func.min(D.c.id), func.max(D.c.id))
                          .where(D.c.handling_unit_id.in_(unit_ids), in_period)).one()
    rated = db.execute(select(func.min(R.c.dossier_id), func.max(R.c.dossier_id))
                       .where(R.c.rated_at >= lo, R.c.rated_at < hi)).one()
    firsts = [v for v in (dossiers[0], rated[0]) if v is not None]
    lasts = [v for v in (dossiers[1], rated[1]) if v is not None]
    return (min(firsts), max(lasts)) if firsts else None


def _slices(db: Session) -> int:
    """As many slices as PostgreSQL may run at once for one statement; one on SQLite."""
    if db.get_bind().dialect.name != "postgresql":
        return 1
    return max(1, int(db.execute(text("SELECT current_setting('max_parallel_workers_per_gather')")).scalar()))


SLICE_COUNTS = ("received", "online", "digitized", "reused", "fee_received", "paid_online", "finished", "on_time",
                "granted", "electronic_result", "ratings", "satisfied")


def _slice_counts(db: Session, facts: CatalogFacts, unit_ids: set[int], lo: datetime, hi: datetime, key: str,
                  first: int, end: int):
    """One slice [first, end) of dossier ids: its counts per group."""
    def ids(column):
        return and_(column >= first, column < end)

    f = _facts_table(facts)
    filed = [_bit_or(db, _bit_of(LINK.c.component_code, facts, w)).label(f"filed{w}") for w in range(facts.words)]
    docs = (select(LINK.c.dossier_id, func.max(case((LINK.c.reused, 1), else_=0)).label("reused"), *filed)
            .where(ids(LINK.c.dossier_id)).group_by(LINK.c.dossier_id).subquery("docs"))
    results = (select(DOC.c.source_dossier_id.label("dossier_id")).where(DOC.c.kind == "result", ids(DOC.c.source_dossier_id))
               .group_by(DOC.c.source_dossier_id).subquery("results"))
    paid = (select(PAY.c.dossier_id).where(PAY.c.online.is_(True), PAY.c.amount > 0, ids(PAY.c.dossier_id))
            .group_by(PAY.c.dossier_id).subquery("paid"))

    received = and_(D.c.received_at >= lo, D.c.received_at < hi)
    finished = and_(D.c.finished_at >= lo, D.c.finished_at < hi, D.c.status != "stopped")
    granted = and_(finished, D.c.outcome == "granted")
    has_result = results.c.dossier_id.is_not(None)
    fee = f.c.fee == 1
    rated = and_(R.c.rated_at >= lo, R.c.rated_at < hi)
    on_time = and_(D.c.finished_at <= func.coalesce(D.c.unextended_due_at, D.c.due_at), D.c.supplement_count <= 1)
    result_ok = or_(D.c.outcome.is_(None), D.c.outcome != "granted", has_result)

    source = (D.join(f, f.c.version_id == D.c.procedure_version_id)
              .outerjoin(docs, docs.c.dossier_id == D.c.id).outerjoin(results, results.c.dossier_id == D.c.id)
              .outerjoin(paid, paid.c.dossier_id == D.c.id)
              .outerjoin(R, and_(R.c.dossier_id == D.c.id, ids(R.c.dossier_id))))
    if key != "unit":
        source = source.join(PV, PV.c.id == D.c.procedure_version_id)
    counts = {
        "received": received, "online": and_(received, D.c.channel == "online"),
        "digitized": and_(received, result_ok, _components_digitized(db, facts, f, docs)),
        "reused": and_(received, docs.c.reused == 1),
        "fee_received": and_(received, fee), "paid_online": and_(received, fee, paid.c.dossier_id.is_not(None)),
        "finished": finished, "on_time": and_(finished, on_time), "granted": granted,
        "electronic_result": and_(granted, has_result),
        "ratings": rated, "satisfied": and_(rated, R.c.rating == "satisfied"),
    }
    group = _group_column(key, D)
    return (select(group.label("grp"), *(func.count().filter(counts[name]).label(name) for name in SLICE_COUNTS))
            .select_from(source).where(ids(D.c.id), D.c.handling_unit_id.in_(unit_ids)).group_by(group))


def _components_digitized(db: Session, facts: CatalogFacts, f, docs):
    """Every component the version asks to digitize that the dossier has is filed. Required components are
    always in the dossier (intake refuses it otherwise), so integer masks decide for them; an optional one
    that is not filed is looked for in the dossier's component list. The cheap tests come first: SQL
    evaluates AND and OR from the left and stops when the answer is known."""
    checks = []
    for word in range(facts.words):
        filed = func.coalesce(docs.c[f"filed{word}"], 0)
        checks.append(f.c[f"required{word}"].bitwise_and(filed.bitwise_not()) == 0)
    for code, (word, bit) in sorted(facts.bits.items()):
        if any(m.get(word, 0) & bit for m in facts.optional.values()):
            filed = func.coalesce(docs.c[f"filed{word}"], 0)
            checks.append(or_(f.c[f"optional{word}"].bitwise_and(bit) == 0, filed.bitwise_and(bit) != 0,
                              ~_has_component(db, code)))
    return and_(*checks)


# A code printed as itself in JSON (no quote, backslash, control or non-ASCII character to escape).
PLAIN_CODE = re.compile(r"^[\x20-\x7e]+$")


def _has_component(db: Session, code: str):
    """The dossier's component list (a JSON array of codes) contains the code. For a plain code, the code's
    JSON string (quotes included) is looked for in the array's text: a JSON string ends at its closing
    quote, and the list holds only the procedure's codes, so this is exact, and far cheaper than parsing."""
    if not (PLAIN_CODE.match(code) and '"' not in code and "\\" not in code):
        return _listed(db, code)
    listed = cast(D.c.components, Text)
    found = func.strpos if db.get_bind().dialect.name == "postgresql" else func.instr
    return found(listed, json.dumps(code)) > 0


def _listed(db: Session, code: str):
    """The same, by the database's JSON functions (for a code JSON would escape)."""
    if db.get_bind().dialect.name == "postgresql":
        return cast(D.c.components, JSONB).has_key(code)
    elements = func.json_each(D.c.components).table_valued("value")
    return select(literal(1)).select_from(elements).where(elements.c.value == code).exists()


def _bit_of(column, facts: CatalogFacts, word: int):
    bits = {code: literal(bit, BigInteger) for code, (w, bit) in facts.bits.items() if w == word}
    return case(bits, value=column, else_=literal(0, BigInteger)) if bits else literal(0, BigInteger)


def _bit_or(db: Session, expr):
    """Bitwise OR of a group's values. SQLite has no bit_or; there the sum of the distinct values is the
    same, the values being single bits."""
    return func.bit_or(expr) if db.get_bind().dialect.name == "postgresql" else func.sum(distinct(expr))


def _group_column(key: str, table):
    """The column a statement groups by; field and procedure need the dossier's version."""
    if key == "unit":
        return table.c.handling_unit_id if table is D else table.c.unit_id
    return PV.c.field if key == "field" else PV.c.code


def _feedback_counts(db: Session, unit_ids: set[int], lo: datetime, hi: datetime, key: str) -> dict[Any, Counter]:
    """Feedback due in the period, and how much of it was answered (or rejected) by its deadline. Grouped
    by field or procedure, only feedback about a dossier has one."""
    source = F if key == "unit" else F.join(D, D.c.id == F.c.dossier_id).join(PV, PV.c.id == D.c.procedure_version_id)
    group = _group_column(key, F)
    stmt = (select(group.label("grp"), func.count().label("feedback_due"),
                   func.count().filter(and_(F.c.closed_at.is_not(None), F.c.closed_at <= F.c.due_at))
                   .label("feedback_on_time"))
            .select_from(source)
            .where(F.c.unit_id.in_(unit_ids), F.c.due_at >= lo, F.c.due_at < hi)
            .group_by(group))
    return _as_counters(db.execute(stmt))


def _work_file_counts(db: Session, unit_ids: set[int], lo: datetime, hi: datetime, key: str) -> dict[Any, Counter]:
    """Work files belong to units, not to fields or procedures."""
    if key != "unit":
        return {}
    stmt = (select(W.c.unit_id.label("grp"), func.count().label("work_files"),
                   func.count().filter(W.c.electronic.is_(True)).label("work_files_electronic"))
            .where(W.c.unit_id.in_(unit_ids), W.c.created_at >= lo, W.c.created_at < hi)
            .group_by(W.c.unit_id))
    return _as_counters(db.execute(stmt))


def _as_counters(result) -> dict[Any, Counter]:
    return {row.grp: Counter({k: int(v or 0) for k, v in row._mapping.items() if k != "grp"}) for row in result}
