"""`motcua docs`: the object store's upkeep and the development signing keys.
Exit status: 0 all good, 1 problems found (or the store unreachable), 2 bad usage."""
from __future__ import annotations

import sys
from datetime import timedelta

import click

from engine.cli_support import fail, out
from engine.errors import MotcuaError



def _fail(exc: MotcuaError) -> None:
    fail(exc, bad_usage=())          # a store or configuration problem: the command ran and found it


@click.group("docs")
def docs() -> None:
    """Documents: check the object store against the metadata, collect orphans, signing keys."""


@docs.command("verify")
@click.option("--no-hash", is_flag=True, help="compare presence and sizes only; do not read every object")
def docs_verify(no_hash: bool) -> None:
    """Report missing, orphaned and corrupted objects (exit 1 when any)."""
    from engine import documents
    from engine.db import session_scope
    try:
        with session_scope() as s:
            report = documents.verify(s, check_hashes=not no_hash)
    except MotcuaError as exc:
        _fail(exc)
    for label, keys in (("MISSING", report.missing), ("ORPHANED", report.orphaned), ("CORRUPTED", report.corrupted)):
        for key in keys:
            out.print(f"{label} {key}")
    out.print(f"{report.documents} documents, {report.objects} objects: {len(report.missing)} missing, "
              f"{len(report.orphaned)} orphaned, {len(report.corrupted)} corrupted")
    sys.exit(1 if report.problems else 0)


@docs.command("gc")
@click.option("--grace-hours", type=click.FloatRange(min=0), default=None,
              help="only orphans older than this (default: MOTCUA_ORPHAN_GRACE_HOURS, 24)")
@click.option("--dry-run", is_flag=True, help="list what would be removed, remove nothing")
def docs_gc(grace_hours: float | None, dry_run: bool) -> None:
    """Remove objects that no document row names and that are older than the grace period."""
    from engine import documents
    from engine.db import session_scope
    grace = timedelta(hours=grace_hours) if grace_hours is not None else None
    try:
        with session_scope() as s:
            removed = documents.gc(s, grace=grace, dry_run=dry_run)
    except MotcuaError as exc:
        _fail(exc)
    for key in removed:
        out.print(f"{'WOULD REMOVE' if dry_run else 'REMOVED'} {key}")
    out.print(f"{len(removed)} orphaned objects {'to remove' if dry_run else 'removed'}")


@docs.command("keys")
def docs_keys() -> None:
    """(Re)generate the development signing key and CA under MOTCUA_DATA_DIR/keys. Earlier development
    CAs stay trusted, so results signed before still verify."""
    from engine import documents
    from engine.config import settings
    files = documents.ensure_dev_keys(force=True)
    out.print(f"signing key: {files.key}\ncertificate: {files.cert}\nCA:          {files.ca}")
    if settings().signing_key:
        out.print("note: MOTCUA_SIGNING_KEY is set, so results are signed with that key, not this one")
