"""Checks of the procedure catalog files under bpmn/*.yaml.

Every file: metadata shape, diagram parsed by SpiffWorkflow, steps == user tasks, lanes, gateway
conditions, BPMN DI, and simulations of each path (normal, supplement loop, refusal, leader sends back,
plus verification / inter-agency consultation where the procedure has them). The simulations use
SpiffWorkflow's default script engine (plain eval); the engine substitutes its sandbox later.
"""
from __future__ import annotations

import ast
import datetime as dt
import itertools
import math
from pathlib import Path

import pytest
import yaml
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.defaults import EndEvent
from SpiffWorkflow.util.task import TaskState

CATALOG_DIR = Path(__file__).resolve().parents[1] / "bpmn"
CATALOG_FILES = sorted(CATALOG_DIR.glob("*.yaml"))

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI}

LANES = {"MotCua", "ChuyenVien", "LanhDao"}
FLOW_NODE_TAGS = {"startEvent", "endEvent", "userTask", "exclusiveGateway", "parallelGateway", "scriptTask"}
PROCESS_CHILD_TAGS = FLOW_NODE_TAGS | {"sequenceFlow", "laneSet"}
UNITS = {"counter", "handling", "approver"}
KINDS = {"supplement", "return", "return_refusal"}
LEVELS = {"province", "district", "commune"}
REQUIRED_KEYS = {"code", "name", "field", "levels", "time_limit", "resume", "fee", "result", "effective_from",
                 "components", "process_id", "steps", "diagram"}
OPTIONAL_KEYS = {"cutoff", "extension_max_working_days", "warning_before", "effective_to", "local_code"}

# Explicit paths per procedure: "step" = a step without decision, "step=decision" = a step that decides.
# The script is also the expected sequence of user tasks visited; the last item is the end event.
SAME_DAY = {
    "normal": "tiep_nhan tham_dinh=dat phe_duyet=dong_y tra_kq | ket_thuc",
    "supplement": "tiep_nhan tham_dinh=bo_sung cho_bo_sung tham_dinh=dat phe_duyet=dong_y tra_kq | ket_thuc",
    "two_supplements": "tiep_nhan tham_dinh=bo_sung cho_bo_sung tham_dinh=bo_sung cho_bo_sung tham_dinh=dat "
                       "phe_duyet=dong_y tra_kq | ket_thuc",
    "refusal": "tiep_nhan tham_dinh=tu_choi phe_duyet=dong_y tra_tu_choi | ket_thuc_tu_choi",
    "send_back": "tiep_nhan tham_dinh=dat phe_duyet=tra_lai tham_dinh=dat phe_duyet=dong_y tra_kq | ket_thuc",
    "refusal_sent_back_then_granted": "tiep_nhan tham_dinh=tu_choi phe_duyet=tra_lai tham_dinh=dat "
                                      "phe_duyet=dong_y tra_kq | ket_thuc",
    "grant_sent_back_then_refused": "tiep_nhan tham_dinh=dat phe_duyet=tra_lai tham_dinh=tu_choi "
                                    "phe_duyet=dong_y tra_tu_choi | ket_thuc_tu_choi",
}
MARRIAGE = dict(SAME_DAY, **{
    "verification": "tiep_nhan tham_dinh=xac_minh xac_minh tham_dinh=dat phe_duyet=dong_y tra_kq | ket_thuc",
    "verification_then_refusal": "tiep_nhan tham_dinh=xac_minh xac_minh tham_dinh=tu_choi phe_duyet=dong_y "
                                 "tra_tu_choi | ket_thuc_tu_choi",
})
PERMIT = {
    "normal": "tiep_nhan tham_dinh=dat kiem_tra_hien_truong truong_phong_duyet=dong_y ky_giay_phep=dong_y "
              "tra_kq | ket_thuc",
    "supplement": "tiep_nhan tham_dinh=bo_sung cho_bo_sung tham_dinh=dat kiem_tra_hien_truong "
                  "truong_phong_duyet=dong_y ky_giay_phep=dong_y tra_kq | ket_thuc",
    "consultation": "tiep_nhan tham_dinh=lay_y_kien lay_y_kien_lien_thong tham_dinh=dat kiem_tra_hien_truong "
                    "truong_phong_duyet=dong_y ky_giay_phep=dong_y tra_kq | ket_thuc",
    "supplement_and_consultation": "tiep_nhan tham_dinh=lay_y_kien lay_y_kien_lien_thong tham_dinh=bo_sung "
                                   "cho_bo_sung tham_dinh=dat kiem_tra_hien_truong truong_phong_duyet=dong_y "
                                   "ky_giay_phep=dong_y tra_kq | ket_thuc",
    "refusal": "tiep_nhan tham_dinh=tu_choi truong_phong_duyet=dong_y ky_giay_phep=dong_y tra_tu_choi "
               "| ket_thuc_tu_choi",
    "consultation_then_refusal": "tiep_nhan tham_dinh=lay_y_kien lay_y_kien_lien_thong tham_dinh=tu_choi "
                                 "truong_phong_duyet=dong_y ky_giay_phep=dong_y tra_tu_choi | ket_thuc_tu_choi",
    "head_sends_back": "tiep_nhan tham_dinh=dat kiem_tra_hien_truong truong_phong_duyet=tra_lai tham_dinh=dat "
                       "kiem_tra_hien_truong truong_phong_duyet=dong_y ky_giay_phep=dong_y tra_kq | ket_thuc",
    "signer_sends_back": "tiep_nhan tham_dinh=dat kiem_tra_hien_truong truong_phong_duyet=dong_y "
                         "ky_giay_phep=tra_lai tham_dinh=dat kiem_tra_hien_truong truong_phong_duyet=dong_y "
                         "ky_giay_phep=dong_y tra_kq | ket_thuc",
    "refusal_sent_back_then_granted": "tiep_nhan tham_dinh=tu_choi truong_phong_duyet=dong_y "
                                      "ky_giay_phep=tra_lai tham_dinh=dat kiem_tra_hien_truong "
                                      "truong_phong_duyet=dong_y ky_giay_phep=dong_y tra_kq | ket_thuc",
    "head_rejects_refusal": "tiep_nhan tham_dinh=tu_choi truong_phong_duyet=tra_lai tham_dinh=dat "
                            "kiem_tra_hien_truong truong_phong_duyet=dong_y ky_giay_phep=dong_y tra_kq | ket_thuc",
}
SCENARIOS = {
    "2.000815": SAME_DAY,
    "2.000884": SAME_DAY,
    "1.001193": SAME_DAY,
    "1.000894": MARRIAGE,
    "XD.GPXD.01": PERMIT,
}
EXPECTED_FILES = {"2.000815.yaml", "2.000884.yaml", "1.001193.yaml", "1.000894.yaml", "xd-gpxd-nha-o.yaml"}


# ---------------------------------------------------------------- helpers
_cache: dict[Path, dict] = {}


def load(path: Path) -> dict:
    if path not in _cache:
        with path.open(encoding="utf-8") as fh:
            _cache[path] = yaml.safe_load(fh)
    return _cache[path]


def xml_root(proc: dict):
    return etree.fromstring(proc["diagram"].encode("utf-8"))


def local(el) -> str:
    return etree.QName(el).localname


def process_el(proc: dict):
    root = xml_root(proc)
    procs = root.findall("bpmn:process", NS)
    assert len(procs) == 1, "exactly one process"
    return root, procs[0]


def flow_nodes(process) -> dict[str, etree._Element]:
    return {el.get("id"): el for el in process if local(el) in FLOW_NODE_TAGS}


def sequence_flows(process) -> list[etree._Element]:
    return process.findall("bpmn:sequenceFlow", NS)


def lane_of(process) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for lane in process.iterfind("bpmn:laneSet/bpmn:lane", NS):
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            where.setdefault(ref.text.strip(), []).append(lane.get("name"))
    return where


def get_spec(proc: dict):
    parser = BpmnParser()
    parser.add_bpmn_str(proc["diagram"].encode("utf-8"))
    return parser.get_spec(proc["process_id"])


def parse_script(text: str):
    steps_part, end = text.split("|")
    script = []
    for item in steps_part.split():
        step, _, decision = item.partition("=")
        script.append((step, decision or None))
    return script, end.strip()


def drive(spec, decide, *, roundtrip: bool, max_steps: int = 60):
    """Run a workflow to completion. `decide(step_id, visit_no)` returns the decision or None.

    Returns (visited user task ids, end event ids reached)."""
    serializer = BpmnWorkflowSerializer()
    wf = BpmnWorkflow(spec)
    wf.do_engine_steps()
    visited: list[str] = []
    while not wf.completed:
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
        assert len(ready) == 1, f"expected one ready user task, got {[t.task_spec.bpmn_id for t in ready]}"
        task = ready[0]
        step = task.task_spec.bpmn_id
        decision = decide(step, visited.count(step))
        visited.append(step)
        if decision is not None:
            task.data[step] = decision
        task.run()
        wf.do_engine_steps()
        if roundtrip:
            wf = serializer.deserialize_json(serializer.serialize_json(wf))
        assert len(visited) <= max_steps, f"runaway workflow: {visited}"
    ends = [t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.COMPLETED, spec_class=EndEvent)]
    return visited, ends


def run_script(spec, script, *, roundtrip: bool):
    pos = iter(range(len(script) + 1))

    def decide(step, _visit):
        i = next(pos)
        assert i < len(script), f"workflow went on past the script at {step}"
        expected_step, decision = script[i]
        assert step == expected_step, f"step {i}: expected {expected_step}, workflow is at {step}"
        return decision

    return drive(spec, decide, roundtrip=roundtrip)


def forward_decision(proc: dict, step: str, refuse: bool = False):
    decisions = proc["steps"][step].get("decisions") or {}
    if not decisions:
        return None
    if refuse and "tu_choi" in decisions:
        return "tu_choi"
    for d in ("dat", "dong_y"):
        if d in decisions:
            return d
    raise AssertionError(f"{step}: no forward decision (dat / dong_y) among {list(decisions)}")


def all_procs():
    return [pytest.param(p, id=p.name) for p in CATALOG_FILES]


def scenario_params():
    out = []
    for path in CATALOG_FILES:
        code = load(path)["code"]
        for name, text in SCENARIOS.get(code, {}).items():
            out.append(pytest.param(path, name, text, id=f"{path.name}:{name}"))
    return out


# ---------------------------------------------------------------- the catalog as a whole
def test_expected_files_present():
    assert EXPECTED_FILES <= {p.name for p in CATALOG_FILES}


def test_codes_and_process_ids_unique():
    codes = [load(p)["code"] for p in CATALOG_FILES]
    pids = [load(p)["process_id"] for p in CATALOG_FILES]
    assert len(codes) == len(set(codes))
    assert len(pids) == len(set(pids))


def test_every_known_procedure_has_scenarios():
    for path in CATALOG_FILES:
        code = load(path)["code"]
        if path.name in EXPECTED_FILES:
            assert code in SCENARIOS, f"{path.name}: no scenarios for {code}"


# ---------------------------------------------------------------- metadata
@pytest.mark.parametrize("path", all_procs())
def test_metadata(path):
    proc = load(path)
    keys = set(proc)
    assert REQUIRED_KEYS <= keys, f"missing keys {REQUIRED_KEYS - keys}"
    assert keys <= REQUIRED_KEYS | OPTIONAL_KEYS, f"unknown keys {keys - REQUIRED_KEYS - OPTIONAL_KEYS}"
    assert isinstance(proc["code"], str) and proc["code"]
    if not proc.get("local_code", False):
        parts = proc["code"].split(".")
        assert len(parts) == 2 and all(p.isdigit() for p in parts), f"national code format: {proc['code']}"
    assert isinstance(proc["name"], str) and proc["name"].strip()
    assert isinstance(proc["field"], str) and proc["field"].strip()
    assert proc["levels"] and set(proc["levels"]) <= LEVELS
    tl = proc["time_limit"]
    assert isinstance(tl, dict) and len(tl) == 1 and set(tl) <= {"working_days", "working_hours"}
    assert all(isinstance(v, int) and v >= 0 for v in tl.values())
    if "cutoff" in proc:
        dt.datetime.strptime(proc["cutoff"], "%H:%M")
    if "extension_max_working_days" in proc:
        assert isinstance(proc["extension_max_working_days"], int) and proc["extension_max_working_days"] > 0
    assert proc["resume"] in {"continue", "reset"}
    if "warning_before" in proc:
        wb = proc["warning_before"]
        assert len(wb) == 1 and set(wb) <= {"working_days", "working_hours"}
        assert all(isinstance(v, int) and v > 0 for v in wb.values())
        if tl.get("working_days") == 0:
            assert "working_hours" in wb, "same-day procedures warn in working hours"
    fee = proc["fee"]
    assert isinstance(fee["amount"], int) and fee["amount"] >= 0
    assert isinstance(fee["unit"], str) and fee["unit"]
    assert isinstance(proc["result"], dict) and proc["result"]["name"].strip()
    assert isinstance(proc["effective_from"], dt.date)
    if "effective_to" in proc:
        assert isinstance(proc["effective_to"], dt.date) and proc["effective_to"] > proc["effective_from"]
    if "local_code" in proc:
        assert isinstance(proc["local_code"], bool)
    comps = proc["components"]
    assert comps, "at least one dossier component"
    assert len({c["code"] for c in comps}) == len(comps)
    for c in comps:
        assert set(c) == {"code", "name", "required", "digitize"}, c
        assert isinstance(c["required"], bool) and isinstance(c["digitize"], bool)
        assert c["name"].strip()
        if "xuất trình" in c["name"]:
            assert c["digitize"] is False, f"{c['code']}: papers only shown are not digitized"
    for step, s in proc["steps"].items():
        assert set(s) <= {"sla_share", "unit", "decisions", "kind"}, (step, s)
        assert isinstance(s["sla_share"], (int, float)) and 0 <= s["sla_share"] <= 1, step
        assert s["unit"] in UNITS, step
        if "kind" in s:
            assert s["kind"] in KINDS, step
        if "decisions" in s:
            assert s["decisions"] and all(isinstance(k, str) and k.isidentifier() and v.strip()
                                          for k, v in s["decisions"].items()), step


@pytest.mark.parametrize("path", all_procs())
def test_fixed_steps_and_kinds(path):
    steps = load(path)["steps"]
    assert "unit" in steps["tiep_nhan"] and steps["tiep_nhan"]["unit"] == "counter"
    assert steps["cho_bo_sung"].get("kind") == "supplement" and steps["cho_bo_sung"]["unit"] == "counter"
    assert steps["tra_kq"].get("kind") == "return" and steps["tra_kq"]["unit"] == "counter"
    assert steps["tra_tu_choi"].get("kind") == "return_refusal" and steps["tra_tu_choi"]["unit"] == "counter"
    td = steps["tham_dinh"]["decisions"]
    assert {"dat", "bo_sung", "tu_choi"} <= set(td)
    kinds = [s["kind"] for s in steps.values() if "kind" in s]
    assert sorted(kinds) == sorted(KINDS), "one step of each kind"


# ---------------------------------------------------------------- the diagram
@pytest.mark.parametrize("path", all_procs())
def test_diagram_parses(path):
    proc = load(path)
    spec = get_spec(proc)
    assert spec.name == proc["process_id"]


@pytest.mark.parametrize("path", all_procs())
def test_structure(path):
    proc = load(path)
    root, process = process_el(proc)
    assert process.get("id") == proc["process_id"]
    assert process.get("isExecutable") == "true"
    parts = root.findall("bpmn:collaboration/bpmn:participant", NS)
    assert [p.get("processRef") for p in parts] == [proc["process_id"]]
    # only allowed elements, no extensions, timers, defaults
    for el in process:
        assert local(el) in PROCESS_CHILD_TAGS, f"element not allowed: {local(el)}"
    for el in process.iter():
        if not isinstance(el.tag, str):
            continue
        assert local(el) not in {"extensionElements", "timerEventDefinition", "serviceTask"}, local(el)
        assert el.get("default") is None, f"{el.get('id')}: no default flows"
    for st in process.iterfind("bpmn:scriptTask", NS):
        script = st.findtext("bpmn:script", default="", namespaces=NS)
        assert len(script.splitlines()) <= 3, f"{st.get('id')}: keep scripts trivial"
    nodes = flow_nodes(process)
    flows = sequence_flows(process)
    ids = [f.get("id") for f in flows] + list(nodes)
    assert len(ids) == len(set(ids)), "ids unique"
    for f in flows:
        assert f.get("sourceRef") in nodes and f.get("targetRef") in nodes, f.get("id")
    out = {n: [f for f in flows if f.get("sourceRef") == n] for n in nodes}
    inc = {n: [f for f in flows if f.get("targetRef") == n] for n in nodes}
    starts = [n for n, el in nodes.items() if local(el) == "startEvent"]
    assert len(starts) == 1
    first = [f.get("targetRef") for f in out[starts[0]]]
    assert first == ["tiep_nhan"]
    assert nodes["tiep_nhan"].get("name") == "Tiếp nhận hồ sơ"
    assert nodes["cho_bo_sung"].get("name") == "Chờ công dân bổ sung hồ sơ"
    assert nodes["tra_kq"].get("name") == "Trả kết quả"
    assert nodes["tra_tu_choi"].get("name") == "Trả văn bản từ chối"
    assert [f.get("targetRef") for f in out["tra_kq"]] == ["ket_thuc"]
    assert [f.get("targetRef") for f in out["tra_tu_choi"]] == ["ket_thuc_tu_choi"]
    assert local(nodes["ket_thuc"]) == "endEvent" and local(nodes["ket_thuc_tu_choi"]) == "endEvent"
    assert [f.get("targetRef") for f in out["cho_bo_sung"]] == ["tham_dinh"], "supplement loops back"
    for n, el in nodes.items():
        if local(el) != "startEvent":
            assert inc[n], f"{n} unreachable"
        if local(el) != "endEvent":
            assert out[n], f"{n} is a dead end"
        if local(el) in {"userTask", "scriptTask", "startEvent"}:
            assert len(out[n]) == 1, f"{n}: one outgoing flow (decisions go through a gateway)"


@pytest.mark.parametrize("path", all_procs())
def test_steps_equal_user_tasks(path):
    proc = load(path)
    _, process = process_el(proc)
    user_tasks = [el.get("id") for el in process.iterfind("bpmn:userTask", NS)]
    assert set(proc["steps"]) == set(user_tasks)
    assert len(user_tasks) == len(set(user_tasks))
    spec = get_spec(proc)
    spiff_user_tasks = {ts.bpmn_id for ts in spec.task_specs.values() if getattr(ts, "manual", False)}
    assert spiff_user_tasks == set(proc["steps"])


@pytest.mark.parametrize("path", all_procs())
def test_lanes(path):
    proc = load(path)
    _, process = process_el(proc)
    lanes = process.findall("bpmn:laneSet/bpmn:lane", NS)
    assert sorted(lane.get("name") for lane in lanes) == sorted(LANES)
    where = lane_of(process)
    nodes = flow_nodes(process)
    for n in nodes:
        assert len(where.get(n, [])) == 1, f"{n} must be in exactly one lane, is in {where.get(n)}"
    assert set(where) <= set(nodes), f"lane refs to unknown nodes: {set(where) - set(nodes)}"
    steps = proc["steps"]
    for step, s in steps.items():
        lane = where[step][0]
        if s["unit"] == "counter":
            assert lane == "MotCua", step
        if s["unit"] == "approver":
            assert lane == "LanhDao", step
    for step in ("tiep_nhan", "cho_bo_sung", "tra_kq", "tra_tu_choi"):
        assert where[step] == ["MotCua"], step
    assert where["tham_dinh"] == ["ChuyenVien"]
    # SpiffWorkflow reads the same lanes (the engine maps task_spec.lane to a role)
    spec = get_spec(proc)
    for ts in spec.task_specs.values():
        if getattr(ts, "bpmn_id", None) in nodes:
            assert ts.lane == where[ts.bpmn_id][0], ts.bpmn_id


def _condition_pairs(expr: str, steps: dict) -> set[tuple[str, str]]:
    """Validate the restricted expression grammar and return the (step, decision) pairs it mentions."""
    tree = ast.parse(expr, mode="eval")
    pairs: set[tuple[str, str]] = set()

    def visit(node):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, (ast.And, ast.Or)):
            for v in node.values:
                visit(v)
        elif isinstance(node, ast.Compare):
            assert len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq), f"only == allowed: {expr}"
            left, right = node.left, node.comparators[0]
            assert isinstance(left, ast.Name) and isinstance(right, ast.Constant) and isinstance(right.value, str), \
                f"compare a step id with a string literal: {expr}"
            assert left.id in steps and "decisions" in steps[left.id], f"{left.id} is not a deciding step"
            assert right.value in steps[left.id]["decisions"], f"{right.value!r} is not a decision of {left.id}"
            pairs.add((left.id, right.value))
        else:
            raise AssertionError(f"expression construct not allowed: {ast.dump(node)} in {expr}")

    visit(tree.body)
    return pairs


@pytest.mark.parametrize("path", all_procs())
def test_gateway_conditions(path):
    proc = load(path)
    steps = proc["steps"]
    _, process = process_el(proc)
    nodes = flow_nodes(process)
    flows = sequence_flows(process)
    out = {n: [f for f in flows if f.get("sourceRef") == n] for n in nodes}
    for step, s in steps.items():
        targets = [nodes[f.get("targetRef")] for f in out[step]]
        if "decisions" in s:
            assert len(targets) == 1 and local(targets[0]) == "exclusiveGateway", \
                f"{step} decides: it must be followed by an exclusive gateway"
        else:
            assert all(local(t) != "exclusiveGateway" for t in targets), f"{step} has no decisions in the YAML"
    for gw_id, gw in nodes.items():
        if local(gw) != "exclusiveGateway":
            continue
        outs = out[gw_id]
        assert len(outs) >= 2, f"{gw_id}: a decision needs at least two branches"
        conds = []
        for f in outs:
            ce = f.findall("bpmn:conditionExpression", NS)
            assert len(ce) == 1 and ce[0].text and ce[0].text.strip(), f"{f.get('id')}: condition required"
            assert ce[0].get(f"{{{XSI}}}type") == "bpmn:tFormalExpression", f.get("id")
            conds.append((f.get("id"), ce[0].text.strip()))
        pairs = {fid: _condition_pairs(expr, steps) for fid, expr in conds}
        # the gateway follows exactly one deciding step; each of its decisions is routed somewhere
        preds = [f.get("sourceRef") for f in flows if f.get("targetRef") == gw_id]
        assert len(preds) == 1 and preds[0] in steps and "decisions" in steps[preds[0]], gw_id
        deciding = preds[0]
        mentioned = {d for ps in pairs.values() for (st, d) in ps if st == deciding}
        assert mentioned == set(steps[deciding]["decisions"]), \
            f"{gw_id}: decisions routed {mentioned} != YAML {set(steps[deciding]['decisions'])}"
        for fid, ps in pairs.items():
            assert any(st == deciding for st, _ in ps), f"{fid} does not test {deciding}"
        # determinism: for any combination of the decisions mentioned, at most one branch is taken,
        # and each decision of the deciding step can take some branch
        used_steps = sorted({st for ps in pairs.values() for st, _ in ps})
        domains = [list(steps[st]["decisions"]) for st in used_steps]
        reachable = set()
        for combo in itertools.product(*domains):
            env = dict(zip(used_steps, combo))
            taken = [fid for fid, expr in conds if eval(expr, {"__builtins__": {}}, env)]  # noqa: S307
            assert len(taken) <= 1, f"{gw_id}: {env} takes {taken}"
            if taken:
                reachable.add(env[deciding])
        assert reachable == set(steps[deciding]["decisions"]), gw_id


@pytest.mark.parametrize("path", all_procs())
def test_diagram_interchange(path):
    proc = load(path)
    root, process = process_el(proc)
    planes = root.findall("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    assert len(planes) == 1
    collab = root.find("bpmn:collaboration", NS)
    assert planes[0].get("bpmnElement") == collab.get("id")
    shapes = {s.get("bpmnElement"): s for s in planes[0].iterfind("bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in planes[0].iterfind("bpmndi:BPMNEdge", NS)}

    def bounds(el_id):
        b = shapes[el_id].find("dc:Bounds", NS)
        return tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))

    participant = collab.find("bpmn:participant", NS).get("id")
    assert shapes[participant].get("isHorizontal") == "true"
    px, py, pw, ph = bounds(participant)
    lanes = process.findall("bpmn:laneSet/bpmn:lane", NS)
    lane_boxes = {}
    for lane in lanes:
        assert lane.get("id") in shapes, f"lane {lane.get('name')} has no shape"
        assert shapes[lane.get("id")].get("isHorizontal") == "true"
        lx, ly, lw, lh = bounds(lane.get("id"))
        assert px <= lx and lx + lw <= px + pw + 0.5 and py <= ly and ly + lh <= py + ph + 0.5
        lane_boxes[lane.get("name")] = (lx, ly, lw, lh)
    # lanes stacked without overlap, covering the pool's height
    ordered = sorted(lane_boxes.values(), key=lambda b: b[1])
    for (a, b) in zip(ordered, ordered[1:]):
        assert a[1] + a[3] == pytest.approx(b[1])
    assert ordered[0][1] == pytest.approx(py) and ordered[-1][1] + ordered[-1][3] == pytest.approx(py + ph)
    where = lane_of(process)
    nodes = flow_nodes(process)
    for n in nodes:
        assert n in shapes, f"{n} has no shape"
        x, y, w, h = bounds(n)
        lx, ly, lw, lh = lane_boxes[where[n][0]]
        assert lx <= x and x + w <= lx + lw and ly <= y and y + h <= ly + lh, f"{n} drawn outside its lane"
    for f in sequence_flows(process):
        assert f.get("id") in edges, f"{f.get('id')} has no edge"
        pts = [(float(w.get("x")), float(w.get("y"))) for w in edges[f.get("id")].iterfind("di:waypoint", NS)]
        assert len(pts) >= 2, f.get("id")
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            assert x0 == x1 or y0 == y1, f"{f.get('id')}: orthogonal segments"
        for (px_, py_), node in ((pts[0], f.get("sourceRef")), (pts[-1], f.get("targetRef"))):
            x, y, w, h = bounds(node)
            assert x - 1 <= px_ <= x + w + 1 and y - 1 <= py_ <= y + h + 1, \
                f"{f.get('id')}: end point not on {node}"
        # no segment runs through a node other than its own ends
        for node in nodes:
            if node in (f.get("sourceRef"), f.get("targetRef")):
                continue
            x, y, w, h = bounds(node)
            for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
                if y0 == y1 and y < y0 < y + h:
                    assert max(x0, x1) <= x or min(x0, x1) >= x + w, f"{f.get('id')} crosses {node}"
                if x0 == x1 and x < x0 < x + w:
                    assert max(y0, y1) <= y or min(y0, y1) >= y + h, f"{f.get('id')} crosses {node}"
    # left-to-right: the normal path moves rightwards
    order = [s for s, _ in parse_script(next(iter(SCENARIOS.get(proc["code"], {"": "tiep_nhan | x"}).values())))[0]]
    xs = [bounds(s)[0] for s in dict.fromkeys(order)]
    assert xs == sorted(xs), "normal path drawn left to right"


# ---------------------------------------------------------------- simulations
@pytest.mark.parametrize("path, name, text", scenario_params())
@pytest.mark.parametrize("roundtrip", [False, True], ids=["memory", "serialized"])
def test_scenario(path, name, text, roundtrip):
    proc = load(path)
    spec = get_spec(proc)
    script, end = parse_script(text)
    for step, decision in script:
        decisions = proc["steps"][step].get("decisions")
        if decision is None:
            assert not decisions, f"{step} takes a decision"
        else:
            assert decision in decisions, f"{decision} not a decision of {step}"
    visited, ends = run_script(spec, script, roundtrip=roundtrip)
    assert visited == [s for s, _ in script]
    assert ends == [end]


@pytest.mark.parametrize("path", all_procs())
def test_generic_normal_path(path):
    """Any catalog file: taking the forward decision everywhere visits each step once and ends at ket_thuc."""
    proc = load(path)
    visited, ends = drive(get_spec(proc), lambda step, _n: forward_decision(proc, step), roundtrip=False)
    assert ends == ["ket_thuc"]
    assert visited[0] == "tiep_nhan" and visited[-1] == "tra_kq"
    assert len(visited) == len(set(visited)), "normal path has no loop"
    assert "cho_bo_sung" not in visited and "tra_tu_choi" not in visited
    shares = sum(proc["steps"][s]["sla_share"] for s in visited)
    assert math.isclose(shares, 1.0, abs_tol=1e-9), f"main path sla_share sums to {shares}"
    _, process = process_el(proc)
    where = lane_of(process)
    assert any(where[s] == ["LanhDao"] for s in visited), "a leader approves the result"


@pytest.mark.parametrize("path", all_procs())
def test_generic_refusal_needs_leader(path):
    proc = load(path)
    visited, ends = drive(get_spec(proc), lambda step, _n: forward_decision(proc, step, refuse=True),
                          roundtrip=False)
    assert ends == ["ket_thuc_tu_choi"]
    assert visited[-1] == "tra_tu_choi"
    _, process = process_el(proc)
    where = lane_of(process)
    refusal_at = visited.index("tham_dinh")
    assert any(where[s] == ["LanhDao"] for s in visited[refusal_at:]), "a leader approves the refusal"
    assert "tra_kq" not in visited


@pytest.mark.parametrize("path", all_procs())
def test_generic_supplement_loop(path):
    proc = load(path)

    def decide(step, n):
        if step == "tham_dinh" and n == 0:
            return "bo_sung"
        return forward_decision(proc, step)

    visited, ends = drive(get_spec(proc), decide, roundtrip=False)
    assert ends == ["ket_thuc"]
    i = visited.index("cho_bo_sung")
    assert visited[i - 1] == "tham_dinh" and visited[i + 1] == "tham_dinh"


@pytest.mark.parametrize("path", all_procs())
def test_generic_every_leader_can_send_back(path):
    proc = load(path)
    _, process = process_el(proc)
    where = lane_of(process)
    leaders = [s for s, v in proc["steps"].items() if "tra_lai" in v.get("decisions", {})]
    assert leaders, "a leader step may send the dossier back"
    for leader in leaders:
        assert where[leader] == ["LanhDao"]

        def decide(step, n, leader=leader):
            if step == leader and n == 0:
                return "tra_lai"
            return forward_decision(proc, step)

        visited, ends = drive(get_spec(proc), decide, roundtrip=False)
        assert ends == ["ket_thuc"]
        i = visited.index(leader)
        assert visited[i + 1] == "tham_dinh", f"{leader} sends back to the appraisal step"


# ---------------------------------------------------------------- procedure specifics
def _by_code(code):
    for p in CATALOG_FILES:
        if load(p)["code"] == code:
            return load(p)
    pytest.fail(f"no catalog file for {code}")


def test_permit_specifics():
    proc = _by_code("XD.GPXD.01")
    assert proc["local_code"] is True
    assert proc["time_limit"] == {"working_days": 15}
    steps = proc["steps"]
    assert set(steps["tham_dinh"]["decisions"]) == {"dat", "bo_sung", "tu_choi", "lay_y_kien"}
    assert steps["tham_dinh"]["unit"] == "handling"
    assert steps["lay_y_kien_lien_thong"]["unit"] == "handling"
    assert steps["truong_phong_duyet"]["unit"] == "handling"
    assert steps["ky_giay_phep"]["unit"] == "approver"
    assert "decisions" not in steps["kiem_tra_hien_truong"]
    visited, _ = drive(get_spec(proc), lambda s, _n: forward_decision(proc, s), roundtrip=False)
    assert visited == ["tiep_nhan", "tham_dinh", "kiem_tra_hien_truong", "truong_phong_duyet",
                       "ky_giay_phep", "tra_kq"]
    _, process = process_el(proc)
    where = lane_of(process)
    assert where["lay_y_kien_lien_thong"] == ["ChuyenVien"]
    assert where["kiem_tra_hien_truong"] == ["ChuyenVien"]
    assert where["truong_phong_duyet"] == ["LanhDao"] and where["ky_giay_phep"] == ["LanhDao"]


def test_marriage_specifics():
    proc = _by_code("1.000894")
    assert proc["time_limit"] == {"working_days": 0}
    assert proc["cutoff"] == "15:00"
    assert proc["extension_max_working_days"] == 5
    assert "xac_minh" in proc["steps"]["tham_dinh"]["decisions"]
    _, process = process_el(proc)
    assert lane_of(process)["xac_minh"] == ["ChuyenVien"]
    assert flow_nodes(process)["xac_minh"].get("name") == "Xác minh"


@pytest.mark.parametrize("code", ["2.000815", "2.000884", "1.001193"])
def test_same_day_specifics(code):
    proc = _by_code(code)
    assert proc["time_limit"] == {"working_days": 0}
    assert proc["cutoff"] == "15:00"
    assert proc["warning_before"] == {"working_hours": 2}
    assert set(proc["steps"]) == {"tiep_nhan", "tham_dinh", "phe_duyet", "cho_bo_sung", "tra_kq", "tra_tu_choi"}


def test_certified_copy_fee_and_extension():
    proc = _by_code("2.000815")
    assert proc["extension_max_working_days"] == 2
    assert proc["fee"]["amount"] == 2000 and proc["fee"]["unit"] == "trang"
