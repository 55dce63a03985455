"""The procedure catalog: one YAML file per procedure in bpmn/ (metadata + BPMN diagram), loaded into
immutable, versioned rows. A dossier keeps the version it started on; a changed file is a new version."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import workflow
from engine.errors import Inadmissible, InvalidDiagram, NotFound
from engine.models import LEVELS, ProcedureVersion
from engine.workflow import Problem

STEP_UNITS = ("counter", "handling", "approver")
STEP_KINDS = ("supplement", "return", "return_refusal")
REQUIRED_KEYS = ("code", "name", "field", "levels", "time_limit", "resume", "fee", "components",
                 "process_id", "steps", "diagram")


@dataclass(frozen=True)
class FileProblem:
    file: str
    element: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.element}: {self.message}"


# --- reading and validating definitions -------------------------------------------------------------

def read_definition(path: Path) -> tuple[dict[str, Any], str]:
    """(definition, raw text). Raises InvalidDiagram when the YAML itself cannot be read."""
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidDiagram(f"{path}: YAML không hợp lệ: {exc}",
                             problems=[Problem("(file)", f"invalid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise InvalidDiagram(f"{path}: không phải định nghĩa thủ tục",
                             problems=[Problem("(file)", "not a procedure definition (a YAML mapping)")])
    return data, text


def validate_definition(defn: dict[str, Any]) -> list[Problem]:
    problems = [Problem(key, "missing key") for key in REQUIRED_KEYS if key not in defn]
    if problems:
        return problems
    problems += _check_metadata(defn)
    diagram_problems = workflow.validate_diagram(defn["diagram"], str(defn["process_id"]))
    problems += diagram_problems
    if not diagram_problems:
        problems += _check_steps(defn)
    return problems


def _check_metadata(defn: dict[str, Any]) -> list[Problem]:
    problems = []
    limit = defn["time_limit"]
    if not (isinstance(limit, dict) and len(limit) == 1 and next(iter(limit)) in ("working_days", "working_hours")
            and isinstance(next(iter(limit.values())), (int, float)) and next(iter(limit.values())) >= 0):
        problems.append(Problem("time_limit", "must be {working_days: N} or {working_hours: N}, N >= 0"))
    if defn["resume"] not in ("continue", "reset"):
        problems.append(Problem("resume", "must be 'continue' or 'reset'"))
    bad_levels = [lv for lv in defn["levels"] if lv not in LEVELS]
    if bad_levels:
        problems.append(Problem("levels", f"unknown levels {bad_levels}"))
    if defn.get("cutoff") is not None:
        try:
            parse_time(str(defn["cutoff"]))
        except ValueError:
            problems.append(Problem("cutoff", "must be HH:MM"))
    codes = [c.get("code") for c in defn["components"]]
    if len(codes) != len(set(codes)) or None in codes:
        problems.append(Problem("components", "every component needs a unique code"))
    for key in ("effective_from", "effective_to"):
        if defn.get(key) is not None and not isinstance(defn[key], date):
            problems.append(Problem(key, "must be a date YYYY-MM-DD"))
    return problems


def _check_steps(defn: dict[str, Any]) -> list[Problem]:
    problems = []
    tasks = workflow.user_tasks(defn["diagram"], str(defn["process_id"]))
    steps = defn["steps"] or {}
    for task_id in tasks.keys() - steps.keys():
        problems.append(Problem(task_id, "user task has no entry under 'steps'"))
    for step_id in steps.keys() - tasks.keys():
        problems.append(Problem(step_id, "'steps' names a user task that is not in the diagram"))
    for step_id, step in steps.items():
        if not isinstance(step, dict):
            problems.append(Problem(step_id, "step entry must be a mapping"))
            continue
        if step.get("unit", "handling") not in STEP_UNITS:
            problems.append(Problem(step_id, f"unit must be one of {STEP_UNITS}"))
        if step.get("kind") is not None and step["kind"] not in STEP_KINDS:
            problems.append(Problem(step_id, f"kind must be one of {STEP_KINDS}"))
        share = step.get("sla_share", 0)
        if not isinstance(share, (int, float)) or not 0 <= share <= 1:
            problems.append(Problem(step_id, "sla_share must be between 0 and 1"))
    if "tiep_nhan" not in tasks:
        problems.append(Problem("tiep_nhan", "the diagram needs the intake user task 'tiep_nhan'"))
    return problems


def validate_file(path: Path) -> list[FileProblem]:
    """For `motcua bpmn validate`: a procedure YAML, or a bare .bpmn diagram."""
    name = str(path)
    try:
        if path.suffix == ".bpmn":
            problems = workflow.validate_diagram(path.read_text(encoding="utf-8"))
        else:
            defn, _ = read_definition(path)
            problems = validate_definition(defn)
    except InvalidDiagram as exc:
        problems = exc.problems
    except (OSError, UnicodeDecodeError) as exc:
        problems = [Problem("(file)", f"cannot read: {exc}")]
    return [FileProblem(name, p.element, p.message) for p in problems]


def parse_time(text: str) -> time:
    return datetime.strptime(text, "%H:%M").time()


# --- storing versions -------------------------------------------------------------------------------

def store_definition(db: Session, defn: dict[str, Any], raw: str, *, source: str, now: datetime
                     ) -> tuple[ProcedureVersion, bool]:
    """Store a validated definition as a version unless identical content is already stored.
    Returns (version row, created)."""
    problems = validate_definition(defn)
    if problems:
        raise InvalidDiagram(f"Quy trình {defn.get('code', source)} không hợp lệ: "
                             + "; ".join(map(str, problems[:5])), problems=problems)
    code = str(defn["code"])
    digest = hashlib.sha256(raw.encode()).hexdigest()
    existing = db.scalar(select(ProcedureVersion).where(ProcedureVersion.code == code,
                                                        ProcedureVersion.sha256 == digest))
    if existing:
        return existing, False
    xml = defn["diagram"]
    spec, subs = workflow.parse_spec(xml, str(defn["process_id"]))
    last = db.scalar(select(func.max(ProcedureVersion.version)).where(ProcedureVersion.code == code)) or 0
    meta = {k: v for k, v in defn.items() if k != "diagram"}
    row = ProcedureVersion(
        code=code, version=last + 1, name=defn["name"], field=defn["field"], definition=_jsonable(meta),
        process_id=str(defn["process_id"]), bpmn_xml=xml, xml_sha256=hashlib.sha256(xml.encode()).hexdigest(),
        sha256=digest, spec_json=workflow.spec_to_json(spec, subs), effective_from=defn.get("effective_from"),
        effective_to=defn.get("effective_to"), source=source, created_at=now)
    db.add(row)
    db.flush()
    return row, True


def load_catalog(db: Session, directory: Path, *, now: datetime) -> list[tuple[ProcedureVersion, bool]]:
    results = []
    for path in sorted(directory.glob("*.yaml")):
        defn, raw = read_definition(path)
        results.append(store_definition(db, defn, raw, source=path.name, now=now))
    return results


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, time)):
        return value.isoformat()
    return value


# --- looking versions up ----------------------------------------------------------------------------

def version_for(db: Session, code: str, on: date) -> ProcedureVersion:
    """The newest version of the procedure in force on that day."""
    rows = db.scalars(select(ProcedureVersion).where(ProcedureVersion.code == code)
                      .order_by(ProcedureVersion.version.desc())).all()
    if not rows:
        raise NotFound(f"Không có thủ tục mã {code} trong danh mục", code="unknown_procedure")
    for row in rows:
        if (row.effective_from is None or row.effective_from <= on) and \
                (row.effective_to is None or on <= row.effective_to):
            return row
    raise Inadmissible(f"Thủ tục {code} không còn hoặc chưa có hiệu lực vào ngày {on:%d/%m/%Y}",
                       code="procedure_not_in_force",
                       data={"form": "03", "reason": f"Thủ tục {code} không có hiệu lực vào ngày {on:%d/%m/%Y}"})


def procedure_names(db: Session) -> dict[str, str]:
    """Procedure code → the name of its newest version, in code order."""
    rows = db.execute(select(ProcedureVersion.code, ProcedureVersion.name)
                      .order_by(ProcedureVersion.code, ProcedureVersion.version)).all()
    return {code: name for code, name in rows}


def get_version(db: Session, version_id: int) -> ProcedureVersion:
    row = db.get(ProcedureVersion, version_id)
    if row is None:
        raise NotFound(f"Không có phiên bản quy trình {version_id}")
    return row


def rules_from_files(directory: Path, code: str) -> ProcedureRules:
    """A procedure's rules straight from its catalog file (for tools that run without a database)."""
    for path in sorted(directory.glob("*.yaml")):
        defn, _ = read_definition(path)
        if str(defn.get("code")) == code:
            meta = _jsonable({k: v for k, v in defn.items() if k != "diagram"})
            return ProcedureRules(ProcedureVersion(code=code, name=defn["name"], definition=meta))
    raise NotFound(f"Không có thủ tục mã {code}", code="unknown_procedure")


class ProcedureRules:
    """Typed view over a version's definition, for the lifecycle commands."""

    def __init__(self, version: ProcedureVersion):
        d = version.definition
        self.code = version.code
        self.name = version.name
        self.levels = d["levels"]
        unit, amount = next(iter(d["time_limit"].items()))
        self.limit_unit, self.limit_amount = unit, amount
        self.cutoff = parse_time(d["cutoff"]) if d.get("cutoff") else None
        self.resume = d["resume"]
        self.extension_max_days = d.get("extension_max_working_days")
        self.warning_before = d.get("warning_before") or {"working_days": 1}
        self.components = d["components"]
        self.steps: dict[str, dict] = d["steps"]
        self.fee = d.get("fee") or {}
        self.result = d.get("result") or {}

    def step(self, bpmn_id: str) -> dict:
        return self.steps.get(bpmn_id, {})
