"""`motcua report`: the indicators beside their targets (JSON, Excel, PDF), the ranking of units and the
tracking book. Exit status: 0 done, 1 the command ran into a problem, 2 bad usage or bad input (a period or
format not accepted, an unknown unit)."""
from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from engine.cli_support import fail, out
from engine.errors import InvalidInput, MotcuaError, NotFound



def _period(ctx, param, value: str) -> str:
    """Check the period now, so a bad one is a usage error (exit 2) naming the accepted forms."""
    from engine.kpi import PERIOD_FORMS, period_bounds
    try:
        period_bounds(value)
    except InvalidInput:
        raise click.BadParameter(f"'{value}' is not a period; accepted: {PERIOD_FORMS}")
    return value.strip().upper()


def _run(fn):
    """Run with a session; bad input exits 2, other problems 1, each with the engine's message."""
    from engine.db import session_scope

    def with_session():
        with session_scope() as db:
            return fn(db)
    return _guard(with_session)


def _guard(fn):
    try:
        return fn()
    except MotcuaError as exc:
        fail(exc, bad_usage=(InvalidInput, NotFound))


def _write(data: bytes, out_file: Path | None, default_name: str) -> None:
    path = out_file or Path(default_name)
    path.write_bytes(data)
    out.print(f"đã ghi {path} ({len(data):,} bytes)")


PERIOD_HELP = "2025 (year), 2025-H1 / 2025-H2 (6 months), 2025-Q1 … 2025-Q4 (quarter), 2025-06 (month)"


@click.group("report")
def report() -> None:
    """Reports: indicators (KPIs) against the plan's targets, ranking of units, tracking book."""


@report.command("kpi")
@click.option("--unit", "unit_code", required=True, help="unit code; its sub-units are included")
@click.option("--period", required=True, callback=_period, help=PERIOD_HELP)
@click.option("--format", "fmt", type=click.Choice(["json", "xlsx", "pdf"]), default="json", show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (json: default standard output; xlsx/pdf: bao-cao-chi-so-<unit>-<period>.<format>)")
def report_kpi(unit_code: str, period: str, fmt: str, out_file: Path | None) -> None:
    """The periodic report: each indicator of the unit and its sub-units beside its target, by unit, field
    and procedure, and the ranking of its sub-units."""
    from engine import reports
    from engine.dossiers import utcnow
    report_ = _run(lambda db: reports.kpi_report(db, unit_code=unit_code, period=period, now=utcnow()))
    if fmt == "json":
        text = json.dumps(reports.report_dict(report_), ensure_ascii=False, indent=2)
        if out_file:
            _write(text.encode(), out_file, "")
        else:
            click.echo(text)
        return
    data = reports.report_xlsx(report_) if fmt == "xlsx" else _guard(lambda: reports.report_pdf(report_))
    _write(data, out_file, f"bao-cao-chi-so-{unit_code}-{period}.{fmt}")


@report.command("ranking")
@click.option("--unit", "unit_code", required=True, help="rank the sub-units of this unit")
@click.option("--period", required=True, callback=_period, help=PERIOD_HELP)
@click.option("--level", type=click.Choice(["district", "commune", "department"]),
              help="rank every unit of this level below the unit, not only its direct sub-units")
def report_ranking(unit_code: str, period: str, level: str | None) -> None:
    """Rank units by the share of the targets they reached."""
    from engine import reports
    from engine.kpi import INDICATORS, period_bounds
    start, end = period_bounds(period)
    ranked = _run(lambda db: reports.ranking(db, unit_code=unit_code, start=start, end=end, level=level))
    table = Table(title=f"Xếp hạng đơn vị — {unit_code}, {period}")
    for col in ("Hạng", "Đơn vị", "Điểm (%)", "Đạt mục tiêu", "Đúng hạn", "Trực tuyến", "Hài lòng"):
        table.add_column(col)
    for r in ranked:
        pct = {s.key: r.row.values[s.key].percent for s in INDICATORS}
        table.add_row(str(r.rank or "–"), r.row.label, "" if r.score is None else f"{r.score:.1f}",
                      f"{r.targets_met}/{r.targets_with_data}",
                      *("" if pct[k] is None else f"{pct[k]:.1f}" for k in ("on_time", "online", "satisfaction")))
    out.print(table)


@report.command("book")
@click.option("--unit", "unit_code", required=True, help="the receiving unit (one-stop counter)")
@click.option("--period", required=True, callback=_period, help=PERIOD_HELP)
@click.option("--format", "fmt", type=click.Choice(["xlsx", "pdf"]), default="xlsx", show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (default: so-theo-doi-<unit>-<period>.<format>)")
def report_book(unit_code: str, period: str, fmt: str, out_file: Path | None) -> None:
    """The tracking book (sổ theo dõi hồ sơ) of a receiving unit for a period."""
    from datetime import timedelta

    from engine import documents, reports
    from engine.dossiers import utcnow
    from engine.kpi import period_bounds
    start, end = period_bounds(period)
    last = end - timedelta(days=1)
    if fmt == "xlsx":
        data = _run(lambda db: reports.tracking_book_xlsx(db, unit_code=unit_code, start=start, end=last, now=utcnow()))
    else:
        data = _run(lambda db: documents.render_tracking_book(db, unit_code=unit_code, start=start, end=last,
                                                              now=utcnow()))
    _write(data, out_file, f"so-theo-doi-{unit_code}-{period}.{fmt}")
