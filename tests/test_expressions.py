"""The expression sandbox: escapes refused at load time and at run time, resource guards, allowed
expressions and scripts, and SpiffWorkflow end to end."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.util.task import TaskState

from engine import config, expressions
from engine.errors import MotcuaError
from engine.expressions import (
    ALLOWED_FUNCTIONS,
    SandboxedEnvironment,
    SandboxViolation,
    check_source,
    make_script_engine,
)


@pytest.fixture
def env() -> SandboxedEnvironment:
    return SandboxedEnvironment()


@pytest.fixture
def limits():
    """Replace the process settings for one test."""
    previous = config._current

    def apply(**overrides):
        config.set_settings(config.Settings(**overrides))
    yield apply
    config.set_settings(previous)


# ---------------------------------------------------------------------------------------------------------
# Escapes: refused at load time (check_source) and at run time (environment called directly)
# ---------------------------------------------------------------------------------------------------------

ESCAPES = [
    # (source, mode, context)
    ("().__class__.__base__.__subclasses__()", "eval", {}),
    ("[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen']", "eval", {}),
    ("().__class__", "eval", {}),
    ("x.__class__", "eval", {"x": 1}),
    ("x.__dict__", "eval", {"x": 1}),
    ("import os", "exec", {}),
    ("from os import system", "exec", {}),
    ('__import__("os")', "eval", {}),
    ('open("/etc/passwd")', "eval", {}),
    ('eval("1")', "eval", {}),
    ('exec("x=1")', "exec", {}),
    ('compile("1", "f", "eval")', "eval", {}),
    ('getattr(x, "__class__")', "eval", {"x": 1}),
    ('setattr(x, "a", 1)', "eval", {"x": 1}),
    ("globals()", "eval", {}),
    ("locals()", "eval", {}),
    ("vars()", "eval", {}),
    ("type(x)", "eval", {"x": 1}),
    ("dir(x)", "eval", {"x": 1}),
    ("input()", "eval", {}),
    ("breakpoint()", "eval", {}),
    ('print("x")', "eval", {}),
    ("x = __builtins__", "exec", {}),
    ("while True: pass", "exec", {}),
    ("for i in range(10**9): pass", "exec", {}),
    ("10**10**8", "eval", {}),
    ('"a" * 10**10', "eval", {}),
    ("[0] * 10**10", "eval", {}),
    ("1 << 10**9", "eval", {}),
    ('"%*d" % (10**9, 1)', "eval", {}),
    ("lambda: 1", "eval", {}),
    ("f = lambda: 1", "exec", {}),
    ("def f():\n    pass", "exec", {}),
    ("class A:\n    pass", "exec", {}),
    ("global x", "exec", {}),
    ("with x:\n    pass", "exec", {"x": 1}),
    ("try:\n    pass\nexcept Exception:\n    pass", "exec", {}),
    ("raise ValueError", "exec", {}),
    ("(yield 1)", "exec", {}),
    ("x = 1\nx.a = 2", "exec", {}),
    ("l = [1]\nl[:0] = l", "exec", {}),
    ("f(*args)", "eval", {"args": [1]}),
    ("[*l, *l]", "eval", {"l": [1]}),
    ("len = 3", "exec", {}),
    ("match x:\n    case 1:\n        pass", "exec", {"x": 1}),
    ("g.gi_frame", "eval", {}),
]


@pytest.mark.parametrize(("source", "mode", "context"), ESCAPES, ids=[e[0][:40] for e in ESCAPES])
def test_escape_refused_at_load_time(source, mode, context):
    problems = check_source(source, mode=mode)
    assert problems, source
    assert all(p.startswith("Line ") for p in problems)


@pytest.mark.parametrize(("source", "mode", "context"), ESCAPES, ids=[e[0][:40] for e in ESCAPES])
def test_escape_refused_at_run_time(env, source, mode, context):
    run = env.evaluate if mode == "eval" else env.execute
    with pytest.raises(SandboxViolation) as info:
        run(source, dict(context))
    assert info.value.status == 422
    assert info.value.code == "expression_not_allowed"
    assert info.value.data["problems"]


def test_check_source_reports_line_numbers():
    problems = check_source("a = 1\nb = 2\nimport os\nwhile a:\n    a = 0", mode="exec")
    assert any(p.startswith("Line 3:") and "import" in p for p in problems)
    assert any(p.startswith("Line 4:") and "while" in p for p in problems)


def test_check_source_reports_syntax_errors_and_run_time_raises_syntax_error(env):
    assert check_source("a ==", mode="eval")[0].startswith("Line 1: SyntaxError")
    with pytest.raises(SyntaxError):
        env.evaluate("a ==", {"a": 1})


def test_check_source_allows_plain_expressions_and_scripts():
    assert check_source('tham_dinh == "dat"', mode="eval") == []
    assert check_source('\n    so_ngay > 3 and loai in ("a", "b")\n', mode="eval") == []
    script = 'tong = 0\nfor x in items:\n    if x > 1:\n        tong = tong + x\nket_qua = "dat" if tong else "khong"'
    assert check_source(script, mode="exec") == []
    assert check_source("del tam", mode="exec") == []


def test_check_source_rejects_unknown_mode():
    with pytest.raises(ValueError):
        check_source("1", mode="single")


def test_sandbox_violation_is_a_motcua_error():
    assert issubclass(SandboxViolation, MotcuaError)
    assert SandboxViolation.status == 422
    assert SandboxViolation.code == "expression_not_allowed"


# ---------------------------------------------------------------------------------------------------------
# Run-time guards: what only the data reveals
# ---------------------------------------------------------------------------------------------------------

RUN_TIME_ONLY = [
    ("n ** e", "eval", {"n": 10, "e": 10**8}),
    ("s * n", "eval", {"s": "a", "n": 10**10}),
    ("n * l", "eval", {"l": [0], "n": 10**10}),
    ("n << e", "eval", {"n": 1, "e": 10**9}),
    ("s *= n", "exec", {"s": "a", "n": 10**10}),
    ("x <<= n", "exec", {"x": 1, "n": 10**9}),
    ("x = 10\nx **= 10**8", "exec", {}),
    ('s = "ab"\nfor i in range(60):\n    s = s + s', "exec", {}),
    ('s = "ab"\nfor i in range(60):\n    s += s', "exec", {}),
    ("l = [1]\nfor i in range(60):\n    l.extend(l)", "exec", {}),
    ("for i in range(n):\n    pass", "exec", {"n": 10**9}),
    ("list(range(n))", "eval", {"n": 10**9}),
    ("for i in r:\n    pass", "exec", {"r": list(range(20_000))}),
    ("[[x for x in range(10000)] for y in range(10000)]", "eval", {}),
    ("[1 for a in range(1000) for b in range(1000) for c in range(1000)]", "eval", {}),
    ("sorted(x for a in range(10000) for x in range(10000))", "eval", {}),
    ("for a, b in pairs:\n    pass", "exec", {"pairs": [(1, 2)] * 20_000}),
    ('"{0.__class__}".format(x)', "eval", {"x": 1}),
    ('str.format("{0.__class__}", x)', "eval", {"x": 1}),
    ('"{x}".format_map(d)', "eval", {"d": {"x": 1}}),
    ("x.to_bytes(10**9, 'big')", "eval", {"x": 1}),
    ("s.ljust(n)", "eval", {"s": "a", "n": 10**10}),
    ("s.zfill(n)", "eval", {"s": "1", "n": 10**10}),
    ('" ".join([s] * 1000)', "eval", {"s": "a" * 1_000_000}),
    ('s.replace("", t)', "eval", {"s": "a" * 1000, "t": "b" * 10_000}),
    ('f"{x:>{n}}"', "eval", {"x": 1, "n": 10**9}),
    ('f"{x:.{n}f}"', "eval", {"x": 1.0, "n": 10**9}),
    ('"%*d" % (n, 1)', "eval", {"n": 10**9}),
    ("fmt % 1", "eval", {"fmt": "%1000000000d"}),
    ('d.strftime("%1000000000Y")', "eval", {"d": date(2025, 1, 1)}),
    ("int(Decimal(10) ** 999998)", "eval", {}),
    ("round(d)", "eval", {"d": Decimal("1e999998")}),
    ('"%d" % d', "eval", {"d": Decimal("1e999998")}),
    ('Decimal("1e99999999999")', "eval", {}),
    ("sum([[1], [2]], [])", "eval", {}),
    ("round(5, n)", "eval", {"n": -10**9}),
    ("for i in range(3):\n    l.extend(d.keys())", "exec", {"l": [], "d": dict.fromkeys(range(600_000))}),
    ("isinstance(x, r)", "eval", {"x": 1, "r": range}),
    ("o.secret", "eval", {"o": type("Thing", (), {"secret": 1})()}),
    ("x = [[0] * 1000] * 1000\ny = [x] * 100", "exec", {}),
    ("x = []\nfor i in range(100):\n    x = [x]", "exec", {}),
    ("l = []\nl.append(l)", "exec", {}),
    ("[[0] * 1000] * 10000", "eval", {}),
]


@pytest.mark.parametrize(("source", "mode", "context"), RUN_TIME_ONLY, ids=[e[0][:40] for e in RUN_TIME_ONLY])
def test_run_time_guard(env, source, mode, context):
    run = env.evaluate if mode == "eval" else env.execute
    with pytest.raises(SandboxViolation):
        run(source, dict(context))


def test_iteration_limit_comes_from_settings(env, limits):
    limits(script_max_iterations=5)
    env.execute("for i in range(5):\n    x = i", {})
    with pytest.raises(SandboxViolation, match="5 loop iterations"):
        env.execute("for i in [1, 2, 3]:\n    for j in [1, 2, 3]:\n        x = j", {})
    with pytest.raises(SandboxViolation, match="range"):
        env.evaluate("range(6)", {})


def test_iterations_are_counted_per_evaluation(env, limits):
    limits(script_max_iterations=10)
    for _ in range(5):
        assert env.evaluate("sum(x for x in range(10))", {}) == 45


def test_wall_clock_limit_comes_from_settings(env, limits):
    limits(script_timeout_seconds=0.0)
    with pytest.raises(SandboxViolation, match="longer than"):
        env.execute("for i in range(3):\n    x = i", {})
    assert env.evaluate("a + 1", {"a": 1}) == 2  # no loop, no clock


def test_missing_name_raises_name_error(env):
    with pytest.raises(NameError):
        env.evaluate('tham_dinh == "dat"', {})
    with pytest.raises(NameError):
        env.evaluate("any(x > gioi_han for x in items)", {"items": [1]})


def test_unknown_attribute_is_an_attribute_error(env):
    with pytest.raises(AttributeError):
        env.evaluate("x.nope", {"x": 1})


# ---------------------------------------------------------------------------------------------------------
# Allowed
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "context", "expected"), [
    ('tham_dinh == "dat"', {"tham_dinh": "dat"}, True),
    ('tham_dinh == "dat"', {"tham_dinh": "khong_dat"}, False),
    ('\n        tham_dinh == "dat"\n    ', {"tham_dinh": "dat"}, True),
    ("so_ngay >= 3 and not bi_tra_lai or loai in ('a', 'b')", {"so_ngay": 2, "bi_tra_lai": False, "loai": "b"},
     True),
    ("sorted([3, 1, 2])", {}, [1, 2, 3]),
    ("sorted(items, reverse=True)[0]", {"items": [3, 9, 2]}, 9),
    ('d.get("k", 0) + 1', {"d": {}}, 1),
    ('d.get("k", 0) + 1', {"d": {"k": 4}}, 5),
    ("len(items) > 2", {"items": [1, 2, 3]}, True),
    ('Decimal(phi) * Decimal("1.1") + 1', {"phi": "100.50"}, Decimal("111.550")),
    ('(Decimal("10") / 3).quantize(Decimal("0.01"))', {}, Decimal("3.33")),
    ('s.lower().startswith("ho") and str.startswith(s, "Ho")', {"s": "Ho so"}, True),
    ('", ".join(sorted(d.keys()))', {"d": {"b": 1, "a": 2}}, "a, b"),
    ("min(items) + max(items) + sum(items) + abs(-2) + round(2.4)", {"items": [1, 2]}, 10),
    ("any(x > 1 for x in items) and all(x > 0 for x in items)", {"items": [1, 2]}, True),
    ("[i * v for i, v in enumerate(items)]", {"items": [5, 6]}, [0, 6]),
    ("dict(zip(ks, vs))", {"ks": ["a"], "vs": [1]}, {"a": 1}),
    ("list(reversed(range(3)))", {}, [2, 1, 0]),
    ("{k: v for k, v in d.items() if v}", {"d": {"a": 0, "b": 1}}, {"b": 1}),
    ("set(items) | {9}", {"items": [1, 1]}, {1, 9}),
    ("tuple(items)", {"items": [1]}, (1,)),
    ("str(n) + str(int('7')) + str(float('1.5')) + str(bool(0))", {"n": 1}, "171.5False"),
    ("isinstance(x, (int, float)) and isinstance(d, Decimal) and not isinstance(s, list)",
     {"x": 1, "d": Decimal(1), "s": "a"}, True),
    ("2 ** 10 + (1 << 4) + 7 % 3 - 6 // 4", {}, 1040),
    ('"%s-%03d" % (ma, so)', {"ma": "HS", "so": 7}, "HS-007"),
    ('f"{ma}-{so:04d}-{phi:.2f}"', {"ma": "HS", "so": 7, "phi": 1.5}, "HS-0007-1.50"),
    ('ngay.year == 2025 and ngay.isoformat() == "2025-01-02" and ngay.weekday() == 3',
     {"ngay": date(2025, 1, 2)}, True),
    ('ngay.strftime("%d/%m/%Y")', {"ngay": date(2025, 1, 2)}, "02/01/2025"),
    ("items[1:] + items[:1]", {"items": [1, 2, 3]}, [2, 3, 1]),
    ('"PT3D" if gap else "PT1D"', {"gap": True}, "PT3D"),
])
def test_allowed_expressions(env, source, context, expected):
    assert check_source(source, mode="eval") == []
    assert env.evaluate(source, context) == expected


def test_script_results_land_in_the_data_without_builtins_or_functions(env):
    data = {"items": [3, 1, 2], "d": {"k": 1}, "tam": "x"}
    script = "\n".join([
        "x = sorted(items)",
        'y = d.get("k", 0) + 1',
        "f = len",
        "g = (i for i in items)",
        "r = range(2)",
        "ks = d.keys()",
        "z = [i * 2 for i in items if i > 1]",
        "tong = 0",
        "for k, v in d.items():",
        "    tong += v",
        'd["moi"] = tong',
        "del tam",
    ])
    assert env.execute(script, data) is True
    assert data == {"items": [3, 1, 2], "d": {"k": 1, "moi": 1}, "x": [1, 2, 3], "y": 2, "z": [6, 4],
                    "tong": 1, "k": "k", "v": 1}
    assert not any(name.startswith("_") for name in data)


def test_large_text_already_in_the_data_does_not_fail_scripts(env):
    data = {"noi_dung": "x" * (expressions.MAX_RESULT_SIZE + 1)}
    env.execute("n = 1", data)
    assert data["n"] == 1
    with pytest.raises(SandboxViolation):
        env.execute("ban_sao = [noi_dung]", data)


def test_script_rebinding_a_variable_to_a_function_removes_it(env):
    data = {"a": 1}
    env.execute("a = max", data)
    assert data == {}


def test_failed_script_leaves_data_unchanged(env):
    data = {"a": 1, "n": 10**10}
    with pytest.raises(SandboxViolation):
        env.execute("a = 2\nb = 'x' * n", data)
    with pytest.raises(ZeroDivisionError):
        env.execute("a = 2\nb = 1 / 0", data)
    assert data == {"a": 1, "n": 10**10}


def test_evaluate_does_not_modify_the_data(env):
    data = {"items": [1, 2]}
    assert env.evaluate("(n := len(items)) > 1", data) is True
    assert data == {"items": [1, 2]}


def test_external_context_is_visible_but_not_written_back(env):
    data = {"a": 1}
    env.execute("b = a + hang_so", data, external_context={"hang_so": 10})
    assert data == {"a": 1, "b": 11}
    assert env.evaluate("a + hang_so == 11", data, {"hang_so": 10}) is True


def test_data_may_shadow_allowed_functions_but_not_guards(env):
    assert env.evaluate("max + 1", {"max": 1}) == 2
    assert env.evaluate("x[0]", {"x": [7], "_getitem_": lambda *a: "pwned", "_getattr_": None}) == 7


def test_allowed_functions_are_the_builtins():
    assert set(ALLOWED_FUNCTIONS) == {
        "len", "min", "max", "sum", "abs", "round", "any", "all", "sorted", "reversed", "enumerate", "zip",
        "range", "str", "int", "float", "bool", "list", "dict", "set", "tuple", "isinstance", "Decimal"}
    for name in ("open", "eval", "exec", "getattr", "type", "__import__", "compile", "globals", "vars"):
        assert name not in ALLOWED_FUNCTIONS


def test_runtime_getattr_guard_refuses_private_and_unlisted_attributes():
    getattr_ = expressions._guarded_getattr
    for obj, name in (((), "__class__"), (object, "__subclasses__"), (test_escape_refused_at_load_time,
                      "__globals__"), ((i for i in ()), "gi_frame"), ("", "format"), (int, "mro"), (1, "to_bytes")):
        with pytest.raises(SandboxViolation):
            getattr_(obj, name)
    assert getattr_("Ab", "lower")() == "ab"
    assert getattr_(str, "upper")("a") == "A"


def test_compiled_code_is_cached(env):
    expressions._compile.cache_clear()
    for _ in range(3):
        env.evaluate('tham_dinh == "dat"', {"tham_dinh": "dat"})
        check_source('tham_dinh == "dat"', mode="eval")
    info = expressions._compile.cache_info()
    assert (info.misses, info.hits) == (1, 5)


def test_make_script_engine_returns_a_new_sandboxed_engine():
    first, second = make_script_engine(), make_script_engine()
    assert isinstance(first, PythonScriptEngine)
    assert isinstance(first.environment, SandboxedEnvironment)
    assert first is not second


# ---------------------------------------------------------------------------------------------------------
# SpiffWorkflow end to end
# ---------------------------------------------------------------------------------------------------------

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                  id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="tham_dinh" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_1" targetRef="Script_tham_dinh"/>
    <bpmn:scriptTask id="Script_tham_dinh" name="Tham dinh">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>so_trang = len(tai_lieu)
tham_dinh = "dat" if so_trang &gt; 2 else "khong_dat"</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="Script_tham_dinh" targetRef="Gateway_ket_qua"/>
    <bpmn:exclusiveGateway id="Gateway_ket_qua">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f_dat</bpmn:outgoing><bpmn:outgoing>f_khong</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_dat" sourceRef="Gateway_ket_qua" targetRef="End_dat">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{cond_dat}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_khong" sourceRef="Gateway_ket_qua" targetRef="End_khong_dat">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">tham_dinh != "dat"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:endEvent id="End_dat"><bpmn:incoming>f_dat</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="End_khong_dat"><bpmn:incoming>f_khong</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

BPMN_IMPORT = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="Definitions_2" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="nguy_hiem" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_1" targetRef="Script_import"/>
    <bpmn:scriptTask id="Script_import" name="Import">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>a = 1
import os
b = os.listdir("/")</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="Script_import" targetRef="End"/>
    <bpmn:endEvent id="End"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def _workflow(xml: str, process_id: str, **data) -> BpmnWorkflow:
    parser = BpmnParser()
    parser.add_bpmn_str(xml.encode())
    workflow = BpmnWorkflow(parser.get_spec(process_id), script_engine=make_script_engine())
    workflow.set_data(**data)
    for task in workflow.get_tasks():
        task.data.update(data)
    return workflow


def _sandbox_violation_in_chain(exc: BaseException) -> SandboxViolation | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, SandboxViolation):
            return exc
        inner = getattr(exc, "exception", None)
        exc = inner if isinstance(inner, BaseException) else (exc.__cause__ or exc.__context__)
    return None


def _completed_ends(workflow: BpmnWorkflow) -> set[str]:
    return {t.task_spec.bpmn_id for t in workflow.get_tasks()
            if t.task_spec.bpmn_id and t.task_spec.bpmn_id.startswith("End") and t.has_state(TaskState.COMPLETED)}


@pytest.mark.parametrize(("tai_lieu", "end"), [(["a", "b", "c"], "End_dat"), (["a"], "End_khong_dat")])
def test_bpmn_gateway_conditions_and_script_run_in_the_sandbox(tai_lieu, end):
    workflow = _workflow(BPMN.format(cond_dat='tham_dinh == "dat"'), "tham_dinh", tai_lieu=tai_lieu)
    workflow.do_engine_steps()
    assert workflow.is_completed()
    assert _completed_ends(workflow) == {end}
    last = [t for t in workflow.get_tasks() if t.task_spec.bpmn_id == end][0]
    assert last.data["so_trang"] == len(tai_lieu)
    assert not any(callable(v) or k.startswith("_") for k, v in last.data.items())


def test_bpmn_script_with_import_is_refused_and_the_task_named():
    workflow = _workflow(BPMN_IMPORT, "nguy_hiem")
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert info.value.task.task_spec.bpmn_id == "Script_import"
    violation = _sandbox_violation_in_chain(info.value)
    assert violation is not None
    assert "import" in violation.message
    assert not workflow.is_completed()


def test_bpmn_gateway_condition_escape_is_refused_and_the_task_named():
    workflow = _workflow(BPMN.format(cond_dat="tham_dinh.__class__ is str"), "tham_dinh", tai_lieu=["a"])
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert info.value.task.task_spec.bpmn_id == "Gateway_ket_qua"
    assert _sandbox_violation_in_chain(info.value) is not None
