"""SpiffWorkflow glue: diagram parsing and validation, the split-spec serializer, the spec cache.

A procedure version stores its spec once; a dossier stores only its workflow instance, which names the
spec by the XML's sha256 (`spec_ref`). Parsed specs are kept in a process-wide cache keyed by that hash.
The script engine is not serialized: it is re-attached after every restore, always the sandboxed one."""
from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.expressions import check_source, make_script_engine

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
LANE_ROLES = {"MotCua": "counter", "ChuyenVien": "specialist", "LanhDao": "leader"}

# Elements a procedure diagram may use inside its process. Anything else is refused at load time:
# every element we allow is one the engine's lifecycle commands know how to drive.
ALLOWED_FLOW_NODES = {"startEvent", "endEvent", "userTask", "exclusiveGateway", "parallelGateway", "scriptTask"}
ALLOWED_OTHER = {"sequenceFlow", "laneSet", "lane", "childLaneSet", "flowNodeRef", "conditionExpression",
                 "script", "incoming", "outgoing", "documentation", "textAnnotation", "text", "association"}


@dataclass(frozen=True)
class Problem:
    element: str
    message: str

    def __str__(self) -> str:
        return f"{self.element}: {self.message}"


class DiagramError(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


# --- validation -------------------------------------------------------------------------------------

def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def validate_diagram(xml: str, process_id: str | None = None) -> list[Problem]:
    """Everything wrong with a diagram, each naming the element: unsupported elements, flow nodes
    outside the three lanes, unknown lanes, gateway branches without a condition, expressions the
    sandbox does not allow, and whatever SpiffWorkflow's own parser refuses."""
    try:
        root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    except etree.XMLSyntaxError as exc:
        return [Problem("(document)", f"not well-formed XML: {exc}")]
    processes = [p for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("isExecutable") == "true"]
    if process_id:
        processes = [p for p in processes if p.get("id") == process_id]
        if not processes:
            return [Problem(process_id, "no executable process with this id in the diagram")]
    if not processes:
        return [Problem("(document)", "no executable process")]
    problems: list[Problem] = []
    for process in processes:
        problems += _check_process(process)
    if not problems:
        problems += _check_with_spiff(xml, [p.get("id") for p in processes])
    return problems


def _check_process(process) -> list[Problem]:
    problems: list[Problem] = []
    nodes: dict[str, str] = {}
    for el in process.iter():
        name = _local(el.tag)
        if not name or el is process:
            continue
        if el.getparent() is not None and _local(el.getparent().tag) == "extensionElements":
            continue
        if name in ALLOWED_FLOW_NODES:
            nodes[el.get("id")] = name
        elif name == "extensionElements":
            problems.append(Problem(el.getparent().get("id", "?"), "extension elements are not supported"))
        elif name not in ALLOWED_OTHER and el.getparent() is process:
            problems.append(Problem(el.get("id", name), f"unsupported element <{name}>"))
        elif name.endswith("EventDefinition"):
            problems.append(Problem(el.getparent().get("id", "?"), f"unsupported event definition <{name}>"))
    problems += _check_lanes(process, nodes)
    problems += _check_gateways(process)
    problems += _check_expressions(process)
    return problems


def _check_lanes(process, nodes: dict[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    lanes = list(process.iter(f"{{{BPMN_NS}}}lane"))
    if not lanes:
        return [Problem(process.get("id"), "the process has no lanes (MotCua, ChuyenVien, LanhDao)")]
    for lane in lanes:
        lane_name = lane.get("name") or ""
        if lane_name not in LANE_ROLES:
            problems.append(Problem(lane.get("id"), f"unknown lane '{lane_name}' (allowed: "
                                                    f"{', '.join(LANE_ROLES)})"))
        for ref in lane.iter(f"{{{BPMN_NS}}}flowNodeRef"):
            node = (ref.text or "").strip()
            if node in seen:
                problems.append(Problem(node, f"in two lanes: {seen[node]} and {lane_name}"))
            seen[node] = lane_name
    for node in nodes:
        if node not in seen:
            problems.append(Problem(node, "flow node is in no lane"))
    return problems


def _check_gateways(process) -> list[Problem]:
    problems: list[Problem] = []
    flows = list(process.iter(f"{{{BPMN_NS}}}sequenceFlow"))
    for gw in process.iter(f"{{{BPMN_NS}}}exclusiveGateway"):
        outgoing = [f for f in flows if f.get("sourceRef") == gw.get("id")]
        if len(outgoing) < 2:
            continue
        for flow in outgoing:
            cond = flow.find(f"{{{BPMN_NS}}}conditionExpression")
            if flow.get("id") != gw.get("default") and (cond is None or not (cond.text or "").strip()):
                problems.append(Problem(flow.get("id"), f"branch of gateway {gw.get('id')} has no condition"))
    return problems


def _check_expressions(process) -> list[Problem]:
    problems: list[Problem] = []
    for cond in process.iter(f"{{{BPMN_NS}}}conditionExpression"):
        owner = cond.getparent().get("id")
        for msg in check_source((cond.text or "").strip(), mode="eval"):
            problems.append(Problem(owner, f"expression not allowed: {msg}"))
    for script in process.iter(f"{{{BPMN_NS}}}script"):
        owner = script.getparent().get("id")
        for msg in check_source(script.text or "", mode="exec"):
            problems.append(Problem(owner, f"script not allowed: {msg}"))
    return problems


def _check_with_spiff(xml: str, process_ids: list[str]) -> list[Problem]:
    try:
        parser = BpmnParser()
        parser.add_bpmn_str(xml.encode() if isinstance(xml, str) else xml)
        for pid in process_ids:
            parser.get_spec(pid)
    except ValidationException as exc:
        return [Problem(getattr(exc, "id", None) or "(diagram)", str(exc).splitlines()[0])]
    except (SpiffWorkflowException, ValueError, KeyError) as exc:
        return [Problem("(diagram)", f"SpiffWorkflow cannot parse it: {exc}")]
    return []


def user_tasks(xml: str, process_id: str) -> dict[str, tuple[str, str]]:
    """userTask id -> (name, role from its lane)."""
    root = etree.fromstring(xml.encode())
    process = next(p for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("id") == process_id)
    lane_of = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.iter(f"{{{BPMN_NS}}}flowNodeRef"):
            lane_of[(ref.text or "").strip()] = LANE_ROLES.get(lane.get("name"), "")
    return {t.get("id"): (t.get("name") or t.get("id"), lane_of.get(t.get("id"), ""))
            for t in process.iter(f"{{{BPMN_NS}}}userTask")}


# --- serialization ----------------------------------------------------------------------------------

_SPECS: dict[str, tuple] = {}   # xml sha256 -> (process spec, subprocess specs)


class SpecRefWorkflowConverter(BpmnWorkflowConverter):
    """Writes a reference to the spec instead of the spec; restores it from the cache."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["spec_ref"] = workflow.spec_ref
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        spec, subprocess_specs = _SPECS[dct["spec_ref"]]
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.spec_ref = dct["spec_ref"]
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_FULL = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(DEFAULT_CONFIG))
_split_config = dict(DEFAULT_CONFIG)
_split_config[BpmnWorkflow] = SpecRefWorkflowConverter
_SPLIT = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_split_config))


def parse_spec(xml: str, process_id: str):
    parser = BpmnParser()
    parser.add_bpmn_str(xml.encode())
    return parser.get_spec(process_id), parser.get_subprocess_specs(process_id)


def spec_to_json(spec, subprocess_specs) -> str:
    return json.dumps({"spec": _FULL.to_dict(spec), "subprocess_specs": _FULL.to_dict(subprocess_specs)},
                      ensure_ascii=False)


def ensure_spec(xml_sha256: str, spec_json: str) -> None:
    """Fill the cache from a stored spec (cheaper than re-parsing the XML)."""
    if xml_sha256 not in _SPECS:
        data = json.loads(spec_json)
        _SPECS[xml_sha256] = (_FULL.from_dict(data["spec"]), _FULL.from_dict(data["subprocess_specs"]))


def new_workflow(xml_sha256: str) -> BpmnWorkflow:
    spec, subprocess_specs = _SPECS[xml_sha256]
    wf = BpmnWorkflow(spec, subprocess_specs, script_engine=make_script_engine())
    wf.spec_ref = xml_sha256
    return wf


def dump(wf: BpmnWorkflow) -> str:
    return _SPLIT.serialize_json(wf)


def restore(state: str) -> BpmnWorkflow:
    wf = _SPLIT.deserialize_json(state)
    # Not serialized: comes back as SpiffWorkflow's unrestricted default unless re-attached.
    wf.script_engine = make_script_engine()
    return wf


def ready_user_tasks(wf: BpmnWorkflow) -> list:
    return wf.get_tasks(state=TaskState.READY, manual=True)
