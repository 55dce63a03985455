"""`motcua`, the one command-line entry point. Exit status: 0 success, 1 the command ran and found
problems, 2 bad usage or bad input."""
from __future__ import annotations

import sys
from datetime import datetime
from functools import wraps
from pathlib import Path

import click
from rich.table import Table

from engine.config import settings
from engine.cli_support import err, fail, out
from engine.errors import MotcuaError

# Wide tables when the output is a file or a pipe; the terminal's width otherwise.


def _handle_errors(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MotcuaError as exc:
            fail(exc)
    return wrapper


class _Commands(click.Group):
    """The command group; a failed query on a database whose schema is missing or older than the code ends
    with what to run instead of a traceback."""

    def invoke(self, ctx: click.Context):
        from sqlalchemy.exc import DBAPIError
        try:
            return super().invoke(ctx)
        except DBAPIError:
            _check_database()
            raise


def _check_database() -> None:
    """Exit with a message when the database cannot be reached or its schema is not this code's; return
    when both are fine."""
    from sqlalchemy.exc import DBAPIError
    from engine.migrate import schema_problem
    try:
        problem = schema_problem()
    except DBAPIError as unreachable:
        err.print(f"[red]Lỗi:[/red] không kết nối được cơ sở dữ liệu {_safe_url()} "
                  f"(cannot reach the database): {unreachable.orig} (database_unreachable)")
        sys.exit(1)
    if problem:
        err.print(f"[red]Lỗi:[/red] {problem}; hãy chạy `motcua db upgrade` (run `motcua db upgrade`) "
                  "(schema_outdated)")
        sys.exit(1)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """motcua: one-stop (một cửa) dossier workflow engine."""


# --- database ---------------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to the configured database."""
    from engine.migrate import upgrade
    upgrade()
    out.print(f"schema up to date: {_safe_url()}")


def _safe_url() -> str:
    from sqlalchemy.engine import make_url
    return make_url(settings().resolved_database_url()).render_as_string(hide_password=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Start the HTTP API (uvicorn), with JSON logs (citizen IDs and phone numbers masked)."""
    import uvicorn
    from api.logs import configure
    _check_database()           # every request would fail: say so once, before listening
    configure()
    uvicorn.run("api.app:app", host=host, port=port, log_config=None)


@main.group("org")
def org_group() -> None:
    """Organisation data (units, users)."""


@org_group.command("load")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_handle_errors
def org_load(files: tuple[Path, ...]) -> None:
    """Load organisation YAML files (default: every file in MOTCUA_ORG_DIR)."""
    from engine.db import session_scope
    from engine.org import load_org_dir, load_org_file
    with session_scope() as s:
        results = [(p.name, *load_org_file(s, p)) for p in files] if files else load_org_dir(s, settings().org_dir)
    for name, units, users in results:
        out.print(f"{name}: {units} units, {users} users")


# --- demo -------------------------------------------------------------------------------------------

@main.command()
@_handle_errors
def demo() -> None:
    """Set up the embedded default: schema, organisations, catalog and sample dossiers (safe to run twice)."""
    from engine.demo import run_demo
    run_demo(out)


# --- catalog and BPMN -------------------------------------------------------------------------------

@main.group()
def bpmn() -> None:
    """Procedure diagrams."""


@bpmn.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def bpmn_validate(files: tuple[Path, ...]) -> None:
    """Validate procedure files (bpmn/*.yaml) or bare .bpmn diagrams; print every problem."""
    from engine.catalog import validate_file
    bad = 0
    for path in files:
        if not path.exists():
            err.print(f"{path}: (file): no such file")
            bad += 1
            continue
        problems = validate_file(path)
        for p in problems:
            out.print(str(p))
        bad += bool(problems)
        if not problems:
            out.print(f"{path}: OK")
    sys.exit(1 if bad else 0)


@main.group()
def catalog() -> None:
    """The procedure catalog in the database."""


@catalog.command("load")
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False))
@_handle_errors
def catalog_load(directory: Path | None) -> None:
    """Load every procedure file; a changed file becomes a new version."""
    from engine.catalog import load_catalog
    from engine.db import session_scope
    from engine.dossiers import utcnow
    with session_scope() as s:
        for row, created in load_catalog(s, directory or settings().catalog_dir, now=utcnow()):
            out.print(f"{row.code} v{row.version} {'new' if created else 'unchanged'}  {row.name}")


# --- calendar ---------------------------------------------------------------------------------------

@main.group()
def calendar() -> None:
    """Working-time calendar (holidays, swap days, office hours)."""


def _parse_iso(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not ISO 8601 (e.g. 2025-04-24T09:00+07:00)")
    if parsed.tzinfo is None:
        raise click.BadParameter("give the offset, e.g. 2025-04-24T09:00+07:00")
    return parsed


@calendar.command("due")
@click.option("--received", required=True, help="ISO 8601 with offset, e.g. 2025-04-24T09:00+07:00")
@click.option("--working-days", type=click.IntRange(min=0))
@click.option("--working-hours", type=click.FloatRange(min=0))
@click.option("--procedure", "procedure_code", help="apply this procedure's time limit and cut-off")
@click.option("--office-hours", help="e.g. 07:30-11:30,13:30-17:00 (default: MOTCUA_OFFICE_HOURS)")
@_handle_errors
def calendar_due(received: str, working_days: int | None, working_hours: float | None,
                 procedure_code: str | None, office_hours: str | None) -> None:
    """Print the appointment (ISO 8601 with offset) on the last line."""
    from engine.calendar import calendar_for
    given = [x is not None for x in (working_days, working_hours, procedure_code)]
    if sum(given) != 1:
        raise click.UsageError("give exactly one of --working-days, --working-hours, --procedure")
    at = _parse_iso(received)
    cal = calendar_for(office_hours)
    if working_days is not None:
        due = cal.add_working_days(at, working_days)
    elif working_hours is not None:
        due = cal.add_working_hours(at, working_hours)
    else:
        from engine import sla
        rules = _procedure_rules(procedure_code, at)
        due, _ = sla.appointment(cal, rules, at)
        unit = "ngày làm việc" if rules.limit_unit == "working_days" else "giờ làm việc"
        out.print(f"{rules.code} {rules.name}: {rules.limit_amount} {unit}"
                  + (f", nhận sau {rules.cutoff:%H:%M} tính từ ngày làm việc kế tiếp" if rules.cutoff else ""))
    click.echo(due.isoformat())


def _procedure_rules(code: str, at: datetime):
    """The version in force in the configured database; the catalog files when the database has none."""
    from sqlalchemy.exc import SQLAlchemyError
    from engine.catalog import ProcedureRules, rules_from_files, version_for
    from engine.db import session_scope
    url = settings().resolved_database_url()
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():   # don't create one
        return rules_from_files(settings().catalog_dir, code)
    try:
        with session_scope() as s:
            return ProcedureRules(version_for(s, code, at.astimezone(settings().tz).date()))
    except (SQLAlchemyError, MotcuaError):
        return rules_from_files(settings().catalog_dir, code)


@calendar.command("days")
@click.option("--year", required=True, type=click.IntRange(1990, 2100))
@_handle_errors
def calendar_days(year: int) -> None:
    """List the non-working weekdays and the worked weekend days of a year, with their reasons."""
    from engine.calendar import calendar_for
    for day in calendar_for().days(year):
        kind = "làm bù" if day.working else "nghỉ"
        click.echo(f"{day.date.isoformat()}  {day.date:%a}  {kind:7}  {day.reason}")


# --- dossiers and audit -----------------------------------------------------------------------------

@main.group()
def dossier() -> None:
    """Dossiers."""


@dossier.command("show")
@click.argument("code")
@_handle_errors
def dossier_show(code: str) -> None:
    """Status, current step and holder, deadlines, pauses, control sheet and events."""
    from engine.db import session_scope
    from engine.inspect import render_dossier
    with session_scope() as s:
        render_dossier(s, code, out)


@main.group()
def audit() -> None:
    """Audit: the event chains, late dossiers, officials with late steps."""


@audit.command("late")
@click.option("--unit", "unit_code", required=True, help="unit code; its sub-units are included")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]))
@_handle_errors
def audit_late(unit_code: str, start: datetime, end: datetime) -> None:
    """Dossiers whose appointment fell in the period and that were returned late or are still open past it."""
    from engine.accountability import late_dossiers
    from engine.db import session_scope
    from engine.dossiers import utcnow
    with session_scope() as s:
        rows = late_dossiers(s, unit_code=unit_code, start=start.date(), end=end.date(), now=utcnow())
    table = Table(title=f"Hồ sơ trễ hạn — {unit_code}, {start:%d/%m/%Y}–{end:%d/%m/%Y}")
    for col in ("Mã hồ sơ", "Thủ tục", "Đơn vị", "Hẹn trả", "Trả kết quả", "Giờ làm việc trễ", "Gia hạn"):
        table.add_column(col)
    tz = settings().tz
    for r in rows:
        table.add_row(r["code"], r["procedure"], r["unit_name"], f"{r['due_at'].astimezone(tz):%d/%m/%Y %H:%M}",
                      f"{r['finished_at'].astimezone(tz):%d/%m/%Y %H:%M}" if r["finished_at"] else "(chưa trả)",
                      f"{r['late_hours']:.2f}", "có" if r["extended"] else "")
    out.print(table)
    out.print(f"{len(rows)} hồ sơ trễ hạn")


@audit.command("officials")
@click.option("--year", required=True, type=click.IntRange(2000, 2100))
@click.option("--unit", "unit_code", help="only officials of this unit and its sub-units")
@_handle_errors
def audit_officials(year: int, unit_code: str | None) -> None:
    """Per official: late steps and reminders in the year; reminded last year and late again."""
    from engine.accountability import officials_report
    from engine.db import session_scope
    with session_scope() as s:
        rows = officials_report(s, year=year, unit_code=unit_code)
    table = Table(title=f"Cán bộ có bước xử lý trễ hạn năm {year}")
    for col in ("Tài khoản", "Họ tên", "Đơn vị", "Bước trễ", "Nhắc nhở", f"Đã nhắc năm {year - 1}",
                "Không xếp loại tốt"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.username, r.full_name, r.unit, str(r.late_steps), str(r.reminders),
                      "có" if r.reminded_previous_year else "", "có" if r.repeat_offender else "")
    out.print(table)


@audit.command("verify")
@click.option("--dossier", "code", help="only this dossier")
@_handle_errors
def audit_verify(code: str | None) -> None:
    """Check every dossier's hash chain; name the first broken event."""
    from sqlalchemy import func, select
    from engine.db import session_scope
    from engine.events import verify_chain
    from engine.models import Dossier, Event
    with session_scope() as s:
        breaks = list(verify_chain(s, code))
        dossiers = s.scalar(select(func.count(Dossier.id)))
        events = s.scalar(select(func.count(Event.id)))
    for brk in breaks:
        out.print(f"BROKEN {brk}")
    out.print(f"{dossiers} dossiers, {events} events checked, {len(breaks)} broken chains")
    sys.exit(1 if breaks else 0)


# --- timers, notifications --------------------------------------------------------------------------

@main.command()
@click.option("--concurrency", type=int, default=2, show_default=True)
def worker(concurrency: int) -> None:
    """Run a Celery worker (needs MOTCUA_BROKER_URL)."""
    from engine.worker import app
    _need_broker()
    app.worker_main(["worker", "--loglevel=INFO", f"--concurrency={concurrency}"])


@main.command()
def beat() -> None:
    """Run Celery beat: the deadline scan and the outbox delivery every minute (needs MOTCUA_BROKER_URL)."""
    from engine.worker import app
    _need_broker()
    schedule = settings().data_dir / "celerybeat-schedule"
    app.start(["beat", "--loglevel=INFO", f"--schedule={schedule}"])


def _need_broker() -> None:
    if not settings().broker_url:
        raise click.UsageError("MOTCUA_BROKER_URL is not set: without a broker, `motcua serve` runs the timers "
                               "in-process (or use `motcua sla scan`)")


@main.group()
def sla() -> None:
    """Deadlines: scan the timers, recompute after a calendar change."""


@sla.command("scan")
@click.option("--at", "at", help="the time to scan as of (ISO 8601 with offset); default now")
@_handle_errors
def sla_scan(at: str | None) -> None:
    """Fire the warnings and overdue timers due now, once."""
    from engine.dossiers import utcnow
    from engine.timers import scan_all
    result = scan_all(now=_parse_iso(at) if at else utcnow())
    out.print(f"{result.dossiers} dossiers: {result.warnings} warnings, {result.overdue} overdue, "
              f"{result.accountability} accountability records")


@sla.command("recompute")
@click.option("--reason", required=True, help="why: e.g. 'Nghỉ bù 2/1/2026 theo Thông báo …'")
@_handle_errors
def sla_recompute(reason: str) -> None:
    """Recompute the deadlines of every open dossier on the current calendar and record why."""
    from engine.calendar import invalidate_calendars
    from engine.db import session_factory
    from engine.dossiers import recompute_open, utcnow
    invalidate_calendars()
    changed = recompute_open(session_factory(), reason=reason, now=utcnow())
    for c in changed:
        out.print(f"{c['code']}: {c.get('appointment', {}).get('from', '')} → {c.get('appointment', {}).get('to', '')}"
                  f"{'; ' + str(len(c['steps'])) + ' step deadlines' if c.get('steps') else ''}")
    out.print(f"{len(changed)} dossiers changed")


@main.group()
def outbox() -> None:
    """Notifications waiting to be delivered."""


@outbox.command("deliver")
@_handle_errors
def outbox_deliver() -> None:
    """Deliver the due notifications now."""
    from engine.worker import deliver_outbox
    result = deliver_outbox()
    out.print(f"{result['delivered']} delivered, {result['retried']} to retry, {result['failed']} failed")
    sys.exit(1 if result["retried"] or result["failed"] else 0)


from engine.cli_docs import docs  # noqa: E402  (documents, issue 4)
main.add_command(docs)
from engine.cli_users import users as users_group  # noqa: E402  (accounts, issue 5)
main.add_command(users_group)
from engine.cli_report import report  # noqa: E402  (indicators, issue 6)
main.add_command(report)


if __name__ == "__main__":
    main()
