"""The indicators (engine.kpi) over the hand-built quarter of tests/kpi_world.py, computed by hand below;
the same figures on SQLite and PostgreSQL. Periods, targets, roll-up and grouping.

By hand, Q2 2025 (1/4–30/6), each dossier counting for its handling unit:
  received in Q2: A B C D E F G H M N (TS-PP, 10), I (TS-TV, 1), J (TS-KTHT, 1)           → TS 12
  online:         B (TS-PP), I (TS-TV)                                                     → TS 2/12
  digitized:      A (no component to digitize; its electronic result), B (TP1 TP2 filed; result),
                  G (stopped: nothing to digitize, no result due), M (TP1 filed; the optional TP2 TP3 are
                  not in it; still open)                                            → TS 4/12, TS-PP 4/10;
                  not: C D E F (granted without an electronic result), H (TP1 TP2 not filed), I (no result),
                  J (TP2 TP3 not filed), N (its optional TP2 is to be digitized and is not filed)
  reuse:          E (TP1 from B's data store)                                              → TS 1/12
  online payment: fee procedures received: all but M N (marriage, free) → 10; paid online: B C I J → TS 4/10,
                  TS-PP 2/8 (B C of A–H), TS-TV 1/1, TS-KTHT 1/1
  finished in Q2 (not stopped): A B C D E F H K (TS-PP, 8; K was received in March), I (TS-TV) → TS 9
  on time:        A B C H K, I → TS 6/9, TS-PP 5/8; late: D (two supplement requests), E (28/4 08:00 after
                  25/4 17:00), F (finished 25/4 10:00 after its unextended appointment 24/4 17:00)
  electronic result: granted A B C D E F K (TS-PP, 7), I (TS-TV); with a result: A B → TS 2/8, TS-PP 2/7
  feedback due in Q2: f1 (22/5, answered 20/5), f4 (26/5, rejected 6/5) of TS-PP; f2 (23/6, answered 25/6)
                  of TS-TV; f3 is due 7/7                                                  → TS 2/3, TS-PP 2/2, TS-TV 0/1
  satisfaction:   A satisfied, C satisfied, E normal (TS-PP); I not satisfied (TS-TV)       → TS 2/4, TS-PP 2/3
  internal electronic: TS-PP 3/4 (the March one is outside), TS-TV 1/2, TS-NV 4/5         → TS 8/11
"""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import event, select

from engine import kpi
from engine.db import get_engine
from engine.errors import InvalidInput, MotcuaError

pytest_plugins = ["tests.kpi_world"]     # the world and s fixtures

Q2 = (date(2025, 4, 1), date(2025, 7, 1))
KEYS = ("on_time", "online", "digitized", "electronic_result", "reuse", "online_payment", "feedback_on_time",
        "satisfaction", "internal_electronic")

BY_HAND = {
    "TS":      dict(on_time=(6, 9), online=(2, 12), digitized=(4, 12), electronic_result=(2, 8), reuse=(1, 12),
                    online_payment=(4, 10), feedback_on_time=(2, 3), satisfaction=(2, 4), internal_electronic=(8, 11)),
    "TS-PP":   dict(on_time=(5, 8), online=(1, 10), digitized=(4, 10), electronic_result=(2, 7), reuse=(1, 10),
                    online_payment=(2, 8), feedback_on_time=(2, 2), satisfaction=(2, 3), internal_electronic=(3, 4)),
    "TS-TV":   dict(on_time=(1, 1), online=(1, 1), digitized=(0, 1), electronic_result=(0, 1), reuse=(0, 1),
                    online_payment=(1, 1), feedback_on_time=(0, 1), satisfaction=(0, 1), internal_electronic=(1, 2)),
    "TS-KTHT": dict(on_time=(0, 0), online=(0, 1), digitized=(0, 1), electronic_result=(0, 0), reuse=(0, 1),
                    online_payment=(1, 1), feedback_on_time=(0, 0), satisfaction=(0, 0), internal_electronic=(0, 0)),
    "TS-NV":   dict(on_time=(0, 0), online=(0, 0), digitized=(0, 0), electronic_result=(0, 0), reuse=(0, 0),
                    online_payment=(0, 0), feedback_on_time=(0, 0), satisfaction=(0, 0), internal_electronic=(4, 5)),
}




def figures(row: kpi.IndicatorRow) -> dict[str, tuple[int, int]]:
    return {k: (v.numerator, v.denominator) for k, v in row.values.items()}


def rows_of(s, group_by="unit", unit="TS", period=Q2):
    rows = kpi.indicators(s, unit_code=unit, start=period[0], end=period[1], group_by=group_by)
    s.rollback()
    return {r.group: r for r in rows}


def test_unit_rows_as_computed_by_hand(s):
    rows = rows_of(s)
    for unit, expected in BY_HAND.items():
        assert figures(rows[unit]) == expected, unit
    # Rates beside targets: 6/9 on time against 98%; the commune's internal target is 60%, the district's 80%.
    on_time = rows["TS"].values["on_time"]
    assert on_time.percent == pytest.approx(66.667, abs=0.001) and on_time.target == 98 and on_time.met is False
    assert rows["TS-PP"].values["internal_electronic"].target == 60 and rows["TS-PP"].values["internal_electronic"].met
    assert rows["TS"].values["internal_electronic"].target == 80 and not rows["TS"].values["internal_electronic"].met
    assert rows["TS-NV"].values["internal_electronic"].target == 80 and rows["TS-NV"].values["internal_electronic"].met
    assert rows["TS-PP"].values["feedback_on_time"].met is True
    # No data is no rate, neither 0% nor 100%.
    empty = rows["TS-TCKH"].values["on_time"]
    assert (empty.percent, empty.met) == (None, None)


def test_roll_up_to_the_parent(s):
    rows = rows_of(s)
    children = [r for r in rows.values() if r.parent == "TS"]
    assert {r.group for r in children} == {"TS-VP", "TS-NV", "TS-TP", "TS-TCKH", "TS-KTHT", "TS-VHTT", "TS-PP", "TS-TV"}
    for key in KEYS:
        for part in ("numerator", "denominator"):
            assert getattr(rows["TS"].values[key], part) == \
                sum(getattr(r.values[key], part) for r in children), (key, part)
    # The whole, ungrouped, is the root's row; a sub-unit alone is its own row.
    whole = kpi.indicators(s, unit_code="TS", start=Q2[0], end=Q2[1], group_by=None)
    assert len(whole) == 1 and figures(whole[0]) == BY_HAND["TS"]
    assert [r.group for r in kpi.indicators(s, unit_code="TS-PP", start=Q2[0], end=Q2[1])] == ["TS-PP"]
    s.rollback()


def test_grouped_by_field(s):
    rows = rows_of(s, "field")
    assert list(rows) == ["Chứng thực", "Hoạt động xây dựng", "Hộ tịch"]
    # Chứng thực (2.000815, 2.000884): received A C D F G I; finished A C D F I K, on time A C I K;
    # rated A C (satisfied) I (not).
    cert = figures(rows["Chứng thực"])
    assert cert["on_time"] == (4, 6) and cert["online"] == (1, 6) and cert["satisfaction"] == (2, 3)
    # Hộ tịch (1.001193, 1.000894): received B E H M N; finished B E H, on time B H; digitized B M; f1 is
    # about E.
    civil = figures(rows["Hộ tịch"])
    assert civil["on_time"] == (2, 3) and civil["reuse"] == (1, 5) and civil["feedback_on_time"] == (1, 1)
    assert civil["digitized"] == (2, 5)
    assert civil["online_payment"] == (1, 3)          # B; M N are free, so only B E H have a fee
    # Work files belong to units, not fields.
    assert all(r.values["internal_electronic"].denominator == 0 for r in rows.values())


def test_grouped_by_procedure(s):
    rows = rows_of(s, "procedure")
    assert list(rows) == ["1.000894", "1.001193", "2.000815", "2.000884", "XD.GPXD.01"]
    assert rows["2.000815"].label.startswith("Chứng thực bản sao")
    # 2.000815: received A D F G I; finished A D F I K, on time A I K; electronic result A of A D F I K.
    assert figures(rows["2.000815"])["on_time"] == (3, 5)
    assert figures(rows["2.000815"])["electronic_result"] == (1, 5)
    # 2.000884 is C alone: paused for a supplement, returned within its moved appointment.
    assert figures(rows["2.000884"])["on_time"] == (1, 1)
    assert figures(rows["1.000894"])["online_payment"] == (0, 0)     # free: outside the indicator
    assert figures(rows["1.000894"])["digitized"] == (1, 2)          # M; N lacks its optional TP2


def test_periods_select_what_falls_in_them(s):
    april = figures(rows_of(s, None, period=kpi.period_bounds("2025-04"))["TS"])
    # Received in April: all of Q2's but I (2/5); finished in April: A B C D E F H K (5 on time: A B C H K).
    assert april["online"] == (1, 11) and april["on_time"] == (5, 8)
    assert april["satisfaction"] == (2, 3)             # A C E were rated in April, I in May
    assert april["feedback_on_time"] == (0, 0) and april["internal_electronic"] == (0, 0)
    q1 = figures(rows_of(s, None, period=kpi.period_bounds("2025-Q1"))["TS"])
    # Q1: K received 31/3 (finished in April); one electronic work file in March.
    assert q1["online"] == (0, 1) and q1["on_time"] == (0, 0) and q1["internal_electronic"] == (1, 1)
    assert figures(rows_of(s, None, period=kpi.period_bounds("2025-H1"))["TS"])["online"] == (2, 13)
    year = figures(rows_of(s, None, period=kpi.period_bounds("2025"))["TS"])
    assert year["on_time"] == (6, 9) and year["feedback_on_time"] == (2, 4)    # f3, due 7/7, unanswered


def test_the_database_does_the_counting(s, db_url):
    """A handful of statements, whatever the number of dossiers: nothing is counted row by row in Python."""
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)
    engine = get_engine(db_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        rows_of(s)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 10, statements
    assert not any("FROM dossiers" in st and "GROUP BY" not in st and "min(" not in st for st in statements)


def test_component_lookup_agrees_with_the_json_functions(s):
    """The text search for a code's JSON string finds exactly the dossiers whose list has the code."""
    for code in ("TP1", "TP2", "TP3", "TP4", "TP5", "TP6", "TP"):
        found = set(s.scalars(select(kpi.D.c.code).where(kpi._has_component(s, code))))
        listed = set(s.scalars(select(kpi.D.c.code).where(kpi._listed(s, code))))
        assert found == listed, code
    assert s.scalars(select(kpi.D.c.code).where(kpi._has_component(s, 'TP1"'))).all() == []   # the JSON path
    s.rollback()


def test_period_parsing():
    assert kpi.period_bounds("2025-Q2") == (date(2025, 4, 1), date(2025, 7, 1))
    assert kpi.period_bounds("2025-q4") == (date(2025, 10, 1), date(2026, 1, 1))
    assert kpi.period_bounds("2025-06") == (date(2025, 6, 1), date(2025, 7, 1))
    assert kpi.period_bounds("2025-12") == (date(2025, 12, 1), date(2026, 1, 1))
    assert kpi.period_bounds("2025-H1") == (date(2025, 1, 1), date(2025, 7, 1))
    assert kpi.period_bounds("2025-H2") == (date(2025, 7, 1), date(2026, 1, 1))
    assert kpi.period_bounds(" 2025 ") == (date(2025, 1, 1), date(2026, 1, 1))
    assert kpi.period_label("2025-Q2") == "Quý II năm 2025"
    assert kpi.period_label("2025-H1") == "6 tháng đầu năm 2025"
    assert kpi.period_label("2025-06") == "Tháng 6 năm 2025"
    assert kpi.period_label("2025") == "Năm 2025"
    for bad in ("2025-Q5", "2025-13", "2025-00", "2025-H3", "25-Q1", "2025Q1", "Q2-2025", "", "2025-6", "0000"):
        with pytest.raises(InvalidInput) as exc:
            kpi.period_bounds(bad)
        assert exc.value.code == "period_invalid" and "2025-Q1" in exc.value.message and "2025-06" in exc.value.message


def test_bad_arguments(s):
    with pytest.raises(InvalidInput):
        kpi.indicators(s, unit_code="TS", start=Q2[0], end=Q2[1], group_by="official")
    with pytest.raises(InvalidInput):
        kpi.indicators(s, unit_code="TS", start=Q2[1], end=Q2[0])
    with pytest.raises(MotcuaError) as exc:
        kpi.indicators(s, unit_code="KHONG-CO", start=Q2[0], end=Q2[1])
    assert exc.value.code == "unknown_unit"
    s.rollback()


def test_targets_file(tmp_path):
    t2025 = kpi.load_targets(2025)
    assert t2025.year == 2025 and t2025.of("on_time") == 98 and t2025.of("satisfaction") == 95
    assert t2025.of("internal_electronic", "commune") == 60 and t2025.of("internal_electronic", "department") == 80
    assert t2025.of("internal_electronic", "province") is None
    assert kpi.load_targets(2027).year == 2025              # carried over until a plan sets new ones
    assert kpi.load_targets(2024).of("on_time") is None
    own = tmp_path / "targets.yaml"
    own.write_text("2025:\n  on_time: 95\n2026:\n  on_time: 99\n", encoding="utf-8")
    assert kpi.load_targets(2026, own).of("on_time") == 99 and kpi.load_targets(2025, own).of("online") is None
    own.write_text("2025:\n  on_tim: 95\n", encoding="utf-8")
    with pytest.raises(MotcuaError) as exc:
        kpi.load_targets(2025, own)
    assert exc.value.code == "kpi_targets_invalid" and "on_tim" in exc.value.message
