"""Procedure versions and diagram validation: a changed file is a new version, a dossier keeps the
version it started on, an invalid diagram is refused with the element named, nothing stored."""
from __future__ import annotations

import subprocess
from datetime import date
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from engine import dossiers as cmd
from engine.catalog import read_definition, store_definition, validate_file, version_for
from engine.config import REPO_ROOT
from engine.errors import InvalidDiagram, MotcuaError
from engine.models import Dossier, ProcedureVersion
from tests.conftest import vn
from tests.test_lifecycle import APPLICANT, do, fresh

BASE = REPO_ROOT / "bpmn" / "2.000884.yaml"


def variant(tmp_path: Path, code: str, **changes) -> Path:
    """A copy of a real procedure under a test code, with some keys changed."""
    defn, _ = read_definition(BASE)
    defn.update(code=code, **changes)
    path = tmp_path / f"{code}.yaml"
    path.write_text(yaml.safe_dump(defn, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def load(db, path: Path):
    defn, raw = read_definition(path)
    row, created = store_definition(db, defn, raw, source=path.name, now=vn(2025, 1, 1, 0, 0))
    db.commit()
    return row, created


def test_a_changed_file_is_a_new_version_and_dossiers_keep_theirs(db, users, tmp_path):
    v1, created = load(db, variant(tmp_path, "TEST.V1", time_limit={"working_days": 1}))
    assert created and v1.version == 1
    again, created = load(db, variant(tmp_path, "TEST.V1", time_limit={"working_days": 1}))
    assert not created and again.id == v1.id
    d1 = cmd.receive(db, actor=users["pp.motcua"], procedure_code="TEST.V1", applicant=APPLICANT,
                     components=["TP1", "TP2"], now=vn(2025, 4, 24, 9, 0)).dossier.code
    fresh(db)
    v2, created = load(db, variant(tmp_path, "TEST.V1", time_limit={"working_days": 3}))
    assert created and v2.version == 2 and v2.sha256 != v1.sha256
    d2 = cmd.receive(db, actor=users["pp.motcua"], procedure_code="TEST.V1", applicant=APPLICANT,
                     components=["TP1", "TP2"], now=vn(2025, 4, 24, 9, 0)).dossier.code
    fresh(db)
    first, second = cmd.get_dossier(db, d1), cmd.get_dossier(db, d2)
    assert first.procedure_version_id == v1.id and second.procedure_version_id == v2.id
    # The rules of each dossier's own version: 1 working day (Fri 25/4) vs 3 (Fri, the swap Saturday, Mon).
    assert first.due_at == vn(2025, 4, 25, 17, 0) and second.due_at == vn(2025, 4, 28, 17, 0)
    # The old dossier still runs on its version to the end.
    do(db, cmd.complete_step, code=d1, actor=users["pp.cv"], decision="dat", now=vn(2025, 4, 24, 10, 0))
    do(db, cmd.complete_step, code=d1, actor=users["pp.ld"], decision="dong_y", now=vn(2025, 4, 24, 11, 0))
    do(db, cmd.return_result, code=d1, actor=users["pp.motcua"], now=vn(2025, 4, 24, 14, 0))
    assert cmd.get_dossier(db, d1).status == "returned"


def test_the_version_in_force_on_the_day_applies(db, tmp_path):
    load(db, variant(tmp_path, "TEST.EFF", effective_from=date(2020, 1, 1)))
    load(db, variant(tmp_path, "TEST.EFF", effective_from=date(2025, 7, 1),
                     time_limit={"working_days": 2}))
    assert version_for(db, "TEST.EFF", vn(2025, 6, 30, 9, 0).date()).version == 1
    assert version_for(db, "TEST.EFF", vn(2025, 7, 1, 9, 0).date()).version == 2


BAD_DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:laneSet id="ls">
      <bpmn:lane id="L1" name="MotCua"><bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>tiep_nhan</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="L2" name="KeToan"><bpmn:flowNodeRef>gw</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="tiep_nhan"/>
    <bpmn:userTask id="tiep_nhan"/>
    <bpmn:sequenceFlow id="f2" sourceRef="tiep_nhan" targetRef="gw"/>
    <bpmn:exclusiveGateway id="gw"/>
    <bpmn:sequenceFlow id="f_ok" sourceRef="gw" targetRef="goi_api">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">().__class__.__base__.__subclasses__()</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_other" sourceRef="gw" targetRef="tinh"/>
    <bpmn:serviceTask id="goi_api"/>
    <bpmn:scriptTask id="tinh"><bpmn:script>import os
x = open("/etc/passwd").read()</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="goi_api" targetRef="end"/>
    <bpmn:sequenceFlow id="f4" sourceRef="tinh" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_validate_names_every_problem(tmp_path):
    path = tmp_path / "bad.bpmn"
    path.write_text(BAD_DIAGRAM, encoding="utf-8")
    problems = {(p.element, p.message.split(":")[0].split(" (")[0]) for p in validate_file(path)}
    elements = {e for e, _ in problems}
    assert {"goi_api", "L2", "f_other", "f_ok", "tinh"} <= elements
    text = " | ".join(str(p) for p in validate_file(path))
    assert "unsupported element <serviceTask>" in text
    assert "unknown lane 'KeToan'" in text
    assert "branch of gateway gw has no condition" in text
    assert "expression not allowed" in text and "script not allowed" in text
    assert "tinh: flow node is in no lane" in text


def test_cli_validate_exit_codes(tmp_path):
    good = subprocess.run([sys.executable, "-m", "engine.cli", "bpmn", "validate", *map(str, sorted(
        (REPO_ROOT / "bpmn").glob("*.yaml")))], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    bad_file = tmp_path / "bad.bpmn"
    bad_file.write_text(BAD_DIAGRAM, encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "bpmn", "validate", str(BASE), str(bad_file)],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert f"{bad_file}: goi_api: unsupported element <serviceTask>" in bad.stdout
    assert f"{BASE}: OK" in bad.stdout


def test_an_invalid_definition_is_not_stored(db, tmp_path):
    defn, _ = read_definition(BASE)
    path = variant(tmp_path, "TEST.BAD", diagram=defn["diagram"].replace('name="LanhDao"', 'name="BanGiamDoc"'))
    with pytest.raises(InvalidDiagram) as exc:
        load(db, path)
    assert "unknown lane 'BanGiamDoc'" in exc.value.message
    db.rollback()
    assert db.scalar(select(func.count()).select_from(ProcedureVersion).where(ProcedureVersion.code == "TEST.BAD")) == 0


def test_a_script_that_runs_too_long_is_stopped_at_run_time_naming_the_element(db, users, tmp_path):
    # Visible only at run time: the loop's length comes from the data.
    defn, _ = read_definition(BASE)
    path = variant(tmp_path, "TEST.LOOP", diagram=_with_script_after_appraisal(defn["diagram"]))
    load(db, path)
    code = cmd.receive(db, actor=users["pp.motcua"], procedure_code="TEST.LOOP", applicant=APPLICANT,
                       components=["TP1", "TP2"], now=vn(2025, 4, 24, 9, 0)).dossier.code
    fresh(db)
    with pytest.raises(MotcuaError) as exc:
        cmd.complete_step(db, code=code, actor=users["pp.cv"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    assert exc.value.data["element"] == "dem_vong" and exc.value.status == 422
    db.rollback()
    assert cmd.get_dossier(db, code).last_event_seq == 1
    assert db.scalar(select(Dossier.status).where(Dossier.code == code)) == "processing"


def _with_script_after_appraisal(xml: str) -> str:
    """Insert a script task between tham_dinh and its gateway (lane ChuyenVien)."""
    import re
    flow = re.search(r'<bpmn:sequenceFlow id="([^"]+)" sourceRef="tham_dinh" targetRef="([^"]+)"\s*/>', xml)
    assert flow, "the appraisal's outgoing flow"
    flow_id, target = flow.group(1), flow.group(2)
    script = ('<bpmn:scriptTask id="dem_vong" name="Đếm"><bpmn:script>n = 0\n'
              'for i in range(len(tham_dinh) * 5000):\n    n = n + i\n</bpmn:script></bpmn:scriptTask>'
              f'<bpmn:sequenceFlow id="f_dem" sourceRef="dem_vong" targetRef="{target}"/>')
    xml = xml.replace(flow.group(0), f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="tham_dinh" '
                                     f'targetRef="dem_vong"/>{script}')
    return xml.replace("<bpmn:flowNodeRef>tham_dinh</bpmn:flowNodeRef>",
                       "<bpmn:flowNodeRef>tham_dinh</bpmn:flowNodeRef><bpmn:flowNodeRef>dem_vong</bpmn:flowNodeRef>", 1)
