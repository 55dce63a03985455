"""Sandboxed evaluation of BPMN expressions and scripts (DESIGN.md, "Expressions are code: restrict them").

SpiffWorkflow evaluates gateway conditions, timer expressions, message payloads and script tasks with plain
``eval``/``exec``.  This module replaces that with a RestrictedPython sandbox:

* **Compile time** (``check_source`` at diagram load, and again - from the same cached pipeline - whenever the
  environment runs a source, so bypassing ``check_source`` gains nothing).  ``compile_restricted_eval`` /
  ``compile_restricted_exec`` with a stricter policy than RestrictedPython's default refuse:

  - ``import`` / ``from ... import``; every name or attribute starting with ``_`` (RestrictedPython), so the
    ``().__class__.__base__.__subclasses__()`` walk and ``__import__`` never compile;
  - the names ``open eval exec compile globals locals vars getattr setattr delattr hasattr type dir input
    breakpoint print help exit quit memoryview super`` (read, assigned or deleted), and assigning to an
    allow-listed function name (``len = 3``);
  - ``while``, ``def``, ``async def``, ``lambda``, ``class``, ``global``, ``nonlocal``, ``with``, ``try``,
    ``raise``, ``yield``, ``await``, ``match`` and any syntax RestrictedPython does not know;
  - ``*``/``**`` unpacking (``f(*a)``, ``[*a, *a]``, ``a, *b = x``) - it iterates outside the loop guard;
  - assigning or deleting attributes (``x.a = 1``), slice assignment (``l[:0] = l``), augmented assignment of
    items (``d[k] += 1`` - write ``d[k] = d[k] + 1``; RestrictedPython's rule);
  - constant sub-expressions that are already too large (``10**10**8``, ``"a" * 10**10``, ``1 << 10**9``,
    ``range(10**9)``): they are folded with the same guards used at run time, never allocated.

  Decisions: ``del name`` is allowed (it removes the variable from the task data, as plain SpiffWorkflow
  does), and so are ``del d[k]``, ``assert``, ``if``/``for``/``break``/``continue``/``pass``, conditional
  expressions, comprehensions, f-strings and ``:=``.

* **Run time** (defence in depth, and what static checks cannot know):

  - builtins are exactly ``ALLOWED_FUNCTIONS``; ``_getattr_`` allows only listed attributes of plain data types
    (str, list, dict, set, frozenset, tuple, int/bool, float, Decimal, date, datetime, time, timedelta) and of
    those type objects (``str.startswith``); ``str.format``/``format_map`` and anything else are refused;
    ``_write_`` lets scripts assign items of dicts and lists only;
  - every ``for`` loop / comprehension step goes through ``_getiter_``, which counts iterations per evaluation
    (``settings().script_max_iterations``) and checks the wall clock (``settings().script_timeout_seconds``);
    ``range()`` refuses ranges longer than the iteration limit (``list(range(n))`` iterates in C);
  - ``**``, ``*``, ``<<``, ``+`` and ``%`` (and their augmented forms) are rewritten into guarded helpers that
    refuse, before allocating, ints over ``MAX_INT_BITS`` bits and strings/lists/tuples over
    ``MAX_SEQUENCE_LENGTH`` items; printf ``%`` formats and f-string format specs with widths/precisions over
    ``MAX_FORMAT_WIDTH`` are refused; str ``center/ljust/rjust/zfill/join/replace``, ``list.extend`` and
    ``strftime`` are size-checked; ``int()``/``round()`` refuse huge Decimals (their conversion is quadratic),
    ``Decimal()`` refuses exponents beyond the default context; ``sum()`` adds numbers only;
  - what a script leaves in the task data (and a container an expression returns) must be at most
    ``MAX_RESULT_SIZE`` items/characters and ``MAX_RESULT_DEPTH`` levels deep (aliasing such as
    ``[[0] * 1000] * 1000`` is counted as it will be serialized); functions, types and iterators are not
    written back (nor ranges and dict views), nor are names starting with ``_``.

Residual risk (documented, not solved here): a single C-level call working on structures the script built
(``==`` or ``str()`` of a deeply aliased list, ``sorted(big, key=big.count)``) is bounded by the size limits
but cannot be interrupted by the wall-clock check; memory a script allocates is bounded per operation and by
the time budget (a loop copying a large list), not accounted. Hard bounds need a worker process with
RLIMIT_CPU / RLIMIT_AS; diagrams are also reviewed at load time (``check_source``).

Violations raise ``SandboxViolation`` (HTTP 422, ``expression_not_allowed``); SpiffWorkflow wraps it in a
``WorkflowTaskException`` naming the task. Missing names raise ``NameError`` as plain Python does.
"""
from __future__ import annotations

import ast
import operator
import re
from collections.abc import ItemsView, Iterator, KeysView, Sized, ValuesView
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from math import log2
from time import monotonic
from types import CodeType, FunctionType, MethodType
from typing import Any, NamedTuple

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import guarded_unpack_sequence
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer, copy_locations
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine.config import settings
from engine.errors import MotcuaError

__all__ = ["SandboxViolation", "check_source", "SandboxedEnvironment", "make_script_engine", "ALLOWED_FUNCTIONS",
           "MAX_INT_BITS", "MAX_SEQUENCE_LENGTH", "MAX_FORMAT_WIDTH", "MAX_RESULT_SIZE", "MAX_RESULT_DEPTH"]

# Size limits (not settings: they protect the process, they are not policy).
MAX_INT_BITS = 65_536            # ~19,700 decimal digits
MAX_SEQUENCE_LENGTH = 1_000_000  # characters of a str / items of a list or tuple built by one operation
MAX_FORMAT_WIDTH = 1_000         # widths and precisions in f-string format specs, printf formats, strftime
MAX_RESULT_SIZE = 5_000_000      # items + characters of what a script leaves in the task data
MAX_RESULT_DEPTH = 64            # nesting depth of the same
_MAX_DECIMAL_DIGITS = int(MAX_INT_BITS * 0.30103)  # adjusted exponent of a Decimal that int() may convert
_MAX_DECIMAL_EXPONENT = 999_999  # the default decimal context's Emax

FILENAME = "<string>"  # SpiffWorkflow looks for this frame name to report the failing line


class SandboxViolation(MotcuaError):
    """An expression or script tried something the sandbox does not allow."""
    status = 422
    code = "expression_not_allowed"


def _refuse(message: str) -> SandboxViolation:
    return SandboxViolation(message)


# ---------------------------------------------------------------------------------------------------------
# Size guards shared by the run-time helpers and the load-time constant folder
# ---------------------------------------------------------------------------------------------------------

_SEQUENCES = (str, bytes, bytearray, list, tuple)


def _check_length(n: int) -> None:
    if n > MAX_SEQUENCE_LENGTH:
        raise _refuse(f"result too large: more than {MAX_SEQUENCE_LENGTH:,} items or characters")


def _check_int_bits(bits: float) -> None:
    if bits > MAX_INT_BITS:
        raise _refuse(f"integer result too large: more than {MAX_INT_BITS:,} bits")


def _check_add(a: Any, b: Any) -> None:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _check_length(len(a) + len(b))


def _check_mul(a: Any, b: Any) -> None:
    if isinstance(a, int):
        if isinstance(b, int):
            _check_int_bits(a.bit_length() + b.bit_length())
        elif isinstance(b, _SEQUENCES):
            _check_length(len(b) * a)
    elif isinstance(b, int) and isinstance(a, _SEQUENCES):
        _check_length(len(a) * b)


def _check_pow(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int) and b > 1 and a not in (-1, 0, 1):
        if b > MAX_INT_BITS:
            _check_int_bits(b)
        _check_int_bits(b * log2(abs(a)))


def _check_lshift(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int) and a and b > 0:
        _check_int_bits(a.bit_length() + b)


_PRINTF_SPEC = re.compile(r"%(%|(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?)")
_DIGITS = re.compile(r"\d+")


def _check_width(digits: str | None) -> None:
    if digits is None:
        return
    if digits == "*":
        raise _refuse("'*' widths in % formats are not allowed")
    if len(digits) > 6 or int(digits) > MAX_FORMAT_WIDTH:
        raise _refuse(f"format width or precision over {MAX_FORMAT_WIDTH} is not allowed")


def _check_huge_decimal(value: Any) -> None:
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() > _MAX_DECIMAL_DIGITS:
        raise _refuse("Decimal too large to convert to an integer")


def _check_mod(a: Any, b: Any) -> None:
    if isinstance(a, (str, bytes)):
        fmt = a if isinstance(a, str) else a.decode("latin-1")
        for m in _PRINTF_SPEC.finditer(fmt):
            if m.group(1) != "%":
                _check_width(m.group(2))
                _check_width(m.group(3))
        args = b.values() if isinstance(b, dict) else b if isinstance(b, tuple) else (b,)
        for arg in args:
            _check_huge_decimal(arg)


def _check_format_spec(spec: str) -> None:
    for digits in _DIGITS.findall(spec):
        _check_width(digits)


# ---------------------------------------------------------------------------------------------------------
# Run-time helpers the compiled code calls (names start with "_" so sandboxed code cannot reach them)
# ---------------------------------------------------------------------------------------------------------

def _guarded_add(a, b):
    _check_add(a, b)
    return a + b


def _guarded_mul(a, b):
    _check_mul(a, b)
    return a * b


def _guarded_pow(a, b):
    _check_pow(a, b)
    return a ** b


def _guarded_lshift(a, b):
    _check_lshift(a, b)
    return a << b


def _guarded_mod(a, b):
    _check_mod(a, b)
    return a % b


_BINOP_GUARDS: dict[type, tuple[str, Any]] = {
    ast.Add: ("_add_", _guarded_add),
    ast.Mult: ("_mul_", _guarded_mul),
    ast.Pow: ("_pow_", _guarded_pow),
    ast.LShift: ("_lshift_", _guarded_lshift),
    ast.Mod: ("_mod_", _guarded_mod),
}

_INPLACE: dict[str, tuple[Any, Any]] = {
    "+=": (_check_add, operator.iadd), "*=": (_check_mul, operator.imul), "**=": (_check_pow, operator.ipow),
    "<<=": (_check_lshift, operator.ilshift), "%=": (_check_mod, operator.imod),
    "-=": (None, operator.isub), "/=": (None, operator.itruediv), "//=": (None, operator.ifloordiv),
    ">>=": (None, operator.irshift), "&=": (None, operator.iand), "|=": (None, operator.ior),
    "^=": (None, operator.ixor), "@=": (None, operator.imatmul),
}


def _inplacevar(op: str, x, y):
    check, fn = _INPLACE[op]
    if check is not None:
        check(x, y)
    return fn(x, y)


def _guarded_format(value, conversion: int, spec: str):
    """f-string replacement field with a format spec: ``f"{x!r:>10}"``."""
    if conversion == 115:
        value = str(value)
    elif conversion == 114:
        value = repr(value)
    elif conversion == 97:
        value = ascii(value)
    _check_format_spec(spec)
    return format(value, spec)


def _write_guard(ob):
    if isinstance(ob, (dict, list)):
        return ob
    raise _refuse(f"cannot assign items of a {type(ob).__name__} object")


def _unpack_sequence(it, spec, _getiter_):
    # Targets are fixed (starred targets do not compile), so unpacking is not counted as loop iterations.
    return guarded_unpack_sequence(it, spec, iter)


def _iter_unpack_sequence(it, spec, _getiter_):
    for ob in _getiter_(it):
        yield guarded_unpack_sequence(ob, spec, iter)


# --- Allow-listed attributes -----------------------------------------------------------------------------

def _str_pad(name):
    method = getattr(str, name)

    def pad(self, width, *args):
        _check_length(width)
        return method(self, width, *args)
    pad.__name__ = name
    return pad


def _str_join(self, iterable):
    items = iterable if isinstance(iterable, (list, tuple)) else list(iterable)
    total = len(self) * max(len(items) - 1, 0)
    for item in items:
        if isinstance(item, str):
            total += len(item)
    _check_length(total)
    return str.join(self, items)


def _str_replace(self, old, new, count=-1):
    if isinstance(old, str) and isinstance(new, str) and len(new) > len(old):
        n = self.count(old) if old else len(self) + 1
        if count >= 0:
            n = min(n, count)
        _check_length(len(self) + n * (len(new) - len(old)))
    return str.replace(self, old, new, count)


def _list_extend(self, iterable):
    if isinstance(iterable, Sized):
        _check_length(len(self) + len(iterable))
    return list.extend(self, iterable)


_STRFTIME_WIDTH = re.compile(r"%[-_0^#]*\d")


def _strftime(self, fmt):
    if isinstance(fmt, str) and _STRFTIME_WIDTH.search(fmt):
        raise _refuse("field widths in strftime formats are not allowed")
    return type(self).strftime(self, fmt)


def _methods(names: str, **guarded) -> dict[str, Any]:
    table: dict[str, Any] = dict.fromkeys(names.split())
    table.update(guarded)
    return table


_STR_ATTRS = _methods(
    "capitalize casefold count endswith find index isalnum isalpha isascii isdecimal isdigit isidentifier "
    "islower isnumeric isprintable isspace istitle isupper lower lstrip partition removeprefix removesuffix "
    "rfind rindex rpartition rsplit rstrip split splitlines startswith strip swapcase title upper",
    center=_str_pad("center"), ljust=_str_pad("ljust"), rjust=_str_pad("rjust"), zfill=_str_pad("zfill"),
    join=_str_join, replace=_str_replace)
_LIST_ATTRS = _methods("append clear copy count index insert pop remove reverse sort", extend=_list_extend)
_DICT_ATTRS = _methods("clear copy get items keys pop popitem setdefault update values")
_FROZENSET_ATTRS = _methods("copy difference intersection isdisjoint issubset issuperset symmetric_difference "
                            "union")
_SET_ATTRS = {**_FROZENSET_ATTRS, **_methods("add clear difference_update discard intersection_update pop "
                                             "remove symmetric_difference_update update")}
_TUPLE_ATTRS = _methods("count index")
_INT_ATTRS = _methods("bit_count bit_length conjugate denominator imag numerator real")
_FLOAT_ATTRS = _methods("as_integer_ratio conjugate imag is_integer real")
_DECIMAL_ATTRS = _methods(
    "adjusted as_tuple compare conjugate copy_abs copy_negate copy_sign exp imag is_finite is_infinite "
    "is_nan is_signed is_zero ln log10 max min normalize quantize real remainder_near sqrt to_integral "
    "to_integral_exact to_integral_value")
_DATE_ATTRS = _methods("ctime day isocalendar isoformat isoweekday month replace toordinal weekday year",
                       strftime=_strftime)
_TIME_ATTRS = _methods("fold hour isoformat microsecond minute replace second tzinfo tzname utcoffset",
                       strftime=_strftime)
_DATETIME_ATTRS = {**_DATE_ATTRS, **_TIME_ATTRS,
                   **_methods("astimezone date dst time timestamp timetz")}
_TIMEDELTA_ATTRS = _methods("days microseconds seconds total_seconds")

# Attributes of instances, found by exact type first, then along the MRO (bool -> int, OrderedDict -> dict).
_INSTANCE_ATTRS: dict[type, dict[str, Any]] = {
    str: _STR_ATTRS, list: _LIST_ATTRS, dict: _DICT_ATTRS, set: _SET_ATTRS, frozenset: _FROZENSET_ATTRS,
    tuple: _TUPLE_ATTRS, int: _INT_ATTRS, float: _FLOAT_ATTRS, Decimal: _DECIMAL_ATTRS,
    datetime: _DATETIME_ATTRS, date: _DATE_ATTRS, time: _TIME_ATTRS, timedelta: _TIMEDELTA_ATTRS,
}
# Attributes of the type objects themselves (str.startswith(s, "x")); bool shares int's.
_CLASS_ATTRS: dict[type, dict[str, Any]] = {**_INSTANCE_ATTRS, bool: _INT_ATTRS}
_attrs_by_type: dict[type, dict[str, Any]] = {}


def _instance_attrs(t: type) -> dict[str, Any]:
    table = _attrs_by_type.get(t)
    if table is None:
        table = next((_INSTANCE_ATTRS[base] for base in t.__mro__ if base in _INSTANCE_ATTRS), {})
        _attrs_by_type[t] = table
    return table


_MISSING = object()


def _guarded_getattr(obj, name):
    if type(name) is not str or name.startswith("_") or name in INSPECT_ATTRIBUTES:
        raise _refuse(f"attribute {name!r} is not allowed")
    cls = obj if isinstance(obj, type) else _TYPE_ALIASES.get(obj) if type(obj) is FunctionType else None
    if cls is not None:
        table = _CLASS_ATTRS.get(cls)
        entry = _MISSING if table is None else table.get(name, _MISSING)
        if entry is None:
            return getattr(cls, name)
        if entry is not _MISSING:
            return entry                      # a guarded function taking the instance first
        owner = cls
    else:
        entry = _instance_attrs(type(obj)).get(name, _MISSING)
        if entry is None:
            return getattr(obj, name)
        if entry is not _MISSING:
            return MethodType(entry, obj)
        owner = type(obj)
    if hasattr(obj, name):
        raise _refuse(f"attribute {name!r} of {owner.__name__} is not allowed")
    raise AttributeError(f"{owner.__name__!r} object has no attribute {name!r}")


# --- Allow-listed functions --------------------------------------------------------------------------------

def _range(*args):
    r = range(*args)
    limit = settings().script_max_iterations
    try:
        n = len(r)
    except OverflowError:
        n = limit + 1
    if n > limit:
        raise _refuse(f"range() longer than the {limit:,}-iteration limit")
    return r


def _int(*args, **kwargs):
    if args:
        _check_huge_decimal(args[0])
    return int(*args, **kwargs)


def _round(number, ndigits=None):
    if ndigits is None:
        _check_huge_decimal(number)
    elif isinstance(number, int) and isinstance(ndigits, int) and ndigits < 0:
        _check_int_bits(-ndigits * 3.33)  # int rounding computes 10 ** -ndigits
    return round(number, ndigits)


def _decimal(value="0"):
    result = Decimal(value)
    if result.is_finite() and abs(result.adjusted()) > _MAX_DECIMAL_EXPONENT:
        raise _refuse("Decimal exponent out of range")
    return result


def _sum(iterable, /, start=0):
    if not isinstance(start, (int, float, Decimal)):
        raise _refuse("sum() only adds numbers")
    return sum(iterable, start)


_range.__name__, _int.__name__, _round.__name__, _decimal.__name__, _sum.__name__ = (
    "range", "int", "round", "Decimal", "sum")

# The wrappers stand for their types in isinstance() and class attribute access (int.bit_length).
_TYPE_ALIASES: dict[Any, type] = {_int: int, _decimal: Decimal}
_ISINSTANCE_TYPES = frozenset({str, int, float, bool, list, dict, set, tuple, Decimal, _int, _decimal})


def _isinstance(obj, classinfo):
    classes = classinfo if isinstance(classinfo, tuple) else (classinfo,)
    for cls in classes:
        if cls not in _ISINSTANCE_TYPES:
            raise _refuse("isinstance() accepts only str, int, float, bool, list, dict, set, tuple, Decimal")
    return isinstance(obj, tuple(_TYPE_ALIASES.get(c, c) for c in classes))


_isinstance.__name__ = "isinstance"

ALLOWED_FUNCTIONS: dict[str, object] = {
    "len": len, "min": min, "max": max, "sum": _sum, "abs": abs, "round": _round, "any": any, "all": all,
    "sorted": sorted, "reversed": reversed, "enumerate": enumerate, "zip": zip, "range": _range,
    "str": str, "int": _int, "float": float, "bool": bool, "list": list, "dict": dict, "set": set,
    "tuple": tuple, "isinstance": _isinstance, "Decimal": _decimal,
}
"""The builtins of sandboxed code (used as ``__builtins__`` directly, so additions apply everywhere).
True, False and None are literals. Wrapped entries: range (bounded), int/round (refuse huge Decimals),
Decimal (refuses out-of-range exponents), sum (numbers only), isinstance (these types only)."""

DENIED_NAMES = frozenset({
    "open", "eval", "exec", "compile", "globals", "locals", "vars", "getattr", "setattr", "delattr", "hasattr",
    "type", "dir", "input", "breakpoint", "print", "help", "exit", "quit", "memoryview", "super",
})
"""Refused at load time as names (read, assigned or deleted). None of them is a builtin here anyway; refusing
them up front makes an attempt visible when the diagram is loaded. A data field named e.g. ``type`` or
``input`` cannot be used in expressions (rename it)."""

_STATIC_GLOBALS: dict[str, Any] = {
    "__builtins__": ALLOWED_FUNCTIONS,
    "_getattr_": _guarded_getattr,
    "_getitem_": operator.getitem,
    "_write_": _write_guard,
    "_unpack_sequence_": _unpack_sequence,
    "_iter_unpack_sequence_": _iter_unpack_sequence,
    "_inplacevar_": _inplacevar,
    "_format_": _guarded_format,
    **{name: fn for name, fn in _BINOP_GUARDS.values()},
}
_RESERVED = frozenset(_STATIC_GLOBALS) | {"_getiter_"}


class _Budget:
    """Per-evaluation loop budget: iteration count and wall-clock deadline."""
    __slots__ = ("remaining", "limit", "timeout", "deadline")

    def __init__(self) -> None:
        s = settings()
        self.limit = self.remaining = s.script_max_iterations
        self.timeout = s.script_timeout_seconds
        self.deadline = monotonic() + self.timeout

    def getiter(self, ob):
        return self._counted(iter(ob))

    def _counted(self, it):
        for item in it:
            self.remaining -= 1
            if self.remaining < 0:
                raise _refuse(f"more than {self.limit:,} loop iterations")
            if monotonic() > self.deadline:
                raise _refuse(f"ran longer than {self.timeout} s")
            yield item


# ---------------------------------------------------------------------------------------------------------
# Compile-time policy
# ---------------------------------------------------------------------------------------------------------

class _SandboxPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, tightened (see the module docstring) and with guarded operators."""

    def _no(self, node, what: str) -> None:
        self.error(node, f"{what} not allowed")

    def visit_While(self, node):
        self._no(node, "while loops are")

    def visit_FunctionDef(self, node):
        self._no(node, "function definitions (def) are")

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._no(node, "lambda is")

    def visit_ClassDef(self, node):
        self._no(node, "class definitions are")

    def visit_Global(self, node):
        self._no(node, "global is")

    def visit_Nonlocal(self, node):
        self._no(node, "nonlocal is")

    def visit_With(self, node):
        self._no(node, "with statements are")

    visit_AsyncWith = visit_With

    def visit_Try(self, node):
        self._no(node, "try statements are")

    visit_TryStar = visit_Try

    def visit_Raise(self, node):
        self._no(node, "raise is")

    def visit_Import(self, node):
        self._no(node, "import is")

    visit_ImportFrom = visit_Import

    def visit_Yield(self, node):
        self._no(node, "yield is")

    visit_YieldFrom = visit_Yield

    def visit_Await(self, node):
        self._no(node, "await is")

    visit_AsyncFor = visit_Await

    def visit_Starred(self, node):
        self._no(node, "* unpacking is")

    def visit_Call(self, node):
        if any(kw.arg is None for kw in node.keywords):
            self._no(node, "** unpacking in calls is")
        return self.node_contents_visit(node)

    def visit_Name(self, node):
        if node.id in DENIED_NAMES:
            self.error(node, f'"{node.id}" is not allowed')
        elif not isinstance(node.ctx, ast.Load) and node.id in ALLOWED_FUNCTIONS:
            self.error(node, f'cannot assign to the built-in name "{node.id}"')
        return super().visit_Name(node)

    def visit_Attribute(self, node):
        if not isinstance(node.ctx, ast.Load):
            self._no(node, "assigning or deleting attributes is")
        return super().visit_Attribute(node)

    def visit_Subscript(self, node):
        if isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Slice):
            self._no(node, "slice assignment is")
        return super().visit_Subscript(node)

    def visit_BinOp(self, node):
        node = self.node_contents_visit(node)
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        call = ast.Call(func=ast.Name(guard[0], ast.Load()), args=[node.left, node.right], keywords=[])
        copy_locations(call, node)
        return call

    def visit_FormattedValue(self, node):
        node = self.node_contents_visit(node)
        if node.format_spec is None:
            return node
        call = ast.Call(func=ast.Name("_format_", ast.Load()),
                        args=[node.value, ast.Constant(node.conversion), node.format_spec], keywords=[])
        copy_locations(call, node)
        new = ast.FormattedValue(value=call, conversion=-1, format_spec=None)
        copy_locations(new, node)
        return new


class _ConstantLimits(ast.NodeVisitor):
    """Load-time check of constant sub-expressions with the run-time guards (numbers are folded; strings
    and lists only by length, so nothing large is ever built)."""

    _NUMERIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
                ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
                ast.BitAnd: operator.and_, ast.BitXor: operator.xor}
    _CHECKS = {ast.Mult: _check_mul, ast.Pow: _check_pow, ast.LShift: _check_lshift}
    _UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._values: dict[int, Any] = {}

    def _problem(self, node, message: str) -> None:
        self.problems.append(f"Line {node.lineno}: {message}")

    def number(self, node) -> Any:
        key = id(node)
        if key not in self._values:
            self._values[key] = self._number(node)
        return self._values[key]

    def _number(self, node) -> Any:
        if isinstance(node, ast.Constant):
            return node.value if type(node.value) in (int, float, bool) else None
        if isinstance(node, ast.UnaryOp) and type(node.op) in self._UNARY:
            value = self.number(node.operand)
            return None if value is None else self._UNARY[type(node.op)](value)
        if isinstance(node, ast.BinOp) and type(node.op) in self._NUMERIC:
            left, right = self.number(node.left), self.number(node.right)
            if left is None or right is None:
                return None
            try:
                check = self._CHECKS.get(type(node.op))
                if check:
                    check(left, right)
                return self._NUMERIC[type(node.op)](left, right)
            except SandboxViolation as exc:
                self._problem(node, exc.message)
            except Exception:  # noqa: BLE001 - 1/0 and friends are left to run time
                pass
        return None

    @staticmethod
    def _length(node) -> int | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            return len(node.value)
        if isinstance(node, (ast.List, ast.Tuple)):
            return len(node.elts)
        return None

    def visit_BinOp(self, node) -> None:
        value = self.number(node)
        if isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
                and isinstance(node.left.value, (str, bytes)):
            try:
                _check_mod(node.left.value, ())
            except SandboxViolation as exc:
                self._problem(node, exc.message)
        if value is None and isinstance(node.op, ast.Mult):
            for seq, count in ((node.left, node.right), (node.right, node.left)):
                length, times = self._length(seq), self.number(count)
                if length is not None and isinstance(times, int):
                    try:
                        _check_length(length * times)
                    except SandboxViolation as exc:
                        self._problem(node, exc.message)
        self.generic_visit(node)

    def visit_Call(self, node) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords and node.args:
            args = [self.number(a) for a in node.args]
            if all(isinstance(a, int) for a in args):
                try:
                    _range(*args)
                except SandboxViolation as exc:
                    self._problem(node, exc.message)
                except Exception:  # noqa: BLE001 - range(1, 2, 0) is left to run time
                    pass
        self.generic_visit(node)


class _Compiled(NamedTuple):
    code: CodeType | None
    problems: tuple[str, ...]
    syntax_error: tuple | None     # (msg, (filename, lineno, offset, text)) to raise a fresh SyntaxError
    uses_loops: bool


def _prepare(source: str, mode: str) -> str:
    if mode == "eval":
        # eval() strips leading spaces/tabs; also accept the newlines and indentation XML editors put around
        # conditions, keeping line numbers.
        stripped = source.strip()
        return "\n" * source[: len(source) - len(source.lstrip())].count("\n") + stripped
    return source


def _mentions(code: CodeType, name: str) -> bool:
    return name in code.co_names or any(
        isinstance(c, CodeType) and _mentions(c, name) for c in code.co_consts)


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> _Compiled:
    if mode not in ("eval", "exec"):
        raise ValueError(f"mode must be 'eval' or 'exec', not {mode!r}")
    if not isinstance(source, str):
        raise TypeError("source must be a string")
    try:
        tree = ast.parse(_prepare(source, mode), FILENAME, mode)
    except SyntaxError as exc:
        problem = f"Line {exc.lineno}: SyntaxError: {exc.msg}"
        return _Compiled(None, (problem,), (exc.msg, (FILENAME, exc.lineno, exc.offset, exc.text)), False)
    limits = _ConstantLimits()
    limits.visit(tree)
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(tree, FILENAME, policy=_SandboxPolicy)
    problems = tuple(dict.fromkeys([*result.errors, *limits.problems]))  # ordered, de-duplicated
    if problems or result.code is None:
        return _Compiled(None, problems or ("could not compile",), None, False)
    return _Compiled(result.code, (), None, _mentions(result.code, "_getiter_"))


def check_source(source: str, *, mode: str) -> list[str]:
    """Problems that make ``source`` unacceptable as a BPMN expression (``mode="eval"``: conditions, timer
    expressions) or script (``mode="exec"``), each starting with "Line N:"; [] when it is allowed. Never
    executes anything. Limits that depend on data (loop counts, sizes) are enforced at run time."""
    return list(_compile(source, mode).problems)


def _compiled_or_raise(source: str, mode: str) -> _Compiled:
    compiled = _compile(source, mode)
    if compiled.code is None:
        if compiled.syntax_error is not None:
            raise SyntaxError(*compiled.syntax_error)
        raise SandboxViolation("expression not allowed: " + "; ".join(compiled.problems),
                               data={"problems": list(compiled.problems)})
    return compiled


# ---------------------------------------------------------------------------------------------------------
# Result checks
# ---------------------------------------------------------------------------------------------------------

_CONTAINERS = (list, tuple, set, frozenset, dict)
_WALKED = (*_CONTAINERS, str, bytes)


def _result_size(obj, depth: int, memo: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(size, height) of a value as it will be serialized: items + characters, aliases counted each time
    (memoised per object, so the walk itself is linear in the distinct objects)."""
    if isinstance(obj, (str, bytes)):
        return len(obj) + 1, 0
    key = id(obj)
    known = memo.get(key)
    if known is not None:
        if depth + known[1] > MAX_RESULT_DEPTH:
            raise _refuse(f"result nested deeper than {MAX_RESULT_DEPTH} levels")
        return known
    if depth > MAX_RESULT_DEPTH:
        raise _refuse(f"result nested deeper than {MAX_RESULT_DEPTH} levels")
    memo[key] = (MAX_RESULT_SIZE + 1, 0)  # met again while being measured: a cycle, which cannot be stored
    size, height = 1 + len(obj), 0
    for part in ((obj, obj.values()) if isinstance(obj, dict) else (obj,)):
        for item in part:
            if isinstance(item, _WALKED):
                item_size, item_height = _result_size(item, depth + 1, memo)
                size += item_size
                height = max(height, item_height + 1)
                if size > MAX_RESULT_SIZE:
                    raise _refuse(f"result larger than {MAX_RESULT_SIZE:,} items and characters")
    memo[key] = (size, height)
    return size, height


def _check_result_size(values) -> None:
    """Refuse results that are too large or too deep to keep in task data."""
    memo: dict[int, tuple[int, int]] = {}
    total = 0
    for value in values:
        if isinstance(value, _WALKED):
            total += _result_size(value, 1, memo)[0]
            if total > MAX_RESULT_SIZE:
                raise _refuse(f"result larger than {MAX_RESULT_SIZE:,} items and characters")


_NOT_DATA = (Iterator, range, KeysView, ValuesView, ItemsView)


def _is_data(value: Any) -> bool:
    """Functions, types, iterators, ranges and dict views are not written back to the task data."""
    return not (callable(value) or isinstance(value, _NOT_DATA))


# ---------------------------------------------------------------------------------------------------------
# SpiffWorkflow integration
# ---------------------------------------------------------------------------------------------------------

class SandboxedEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that runs everything through the sandbox.

    Name resolution matches ``TaskDataEnvironment``: environment globals < external context < task data;
    allow-listed functions are builtins (data may shadow them, as in Python)."""

    def _namespace(self, compiled: _Compiled, context: dict, external_context: dict | None) -> dict:
        namespace = dict(self.globals) if self.globals else {}
        if external_context:
            namespace.update(external_context)
        namespace.update(context)
        namespace.update(_STATIC_GLOBALS)
        if compiled.uses_loops:
            namespace["_getiter_"] = _Budget().getiter
        return namespace

    def evaluate(self, expression, context, external_context=None):
        compiled = _compiled_or_raise(expression, "eval")
        result = eval(compiled.code, self._namespace(compiled, context, external_context))  # noqa: S307
        if isinstance(result, _CONTAINERS):
            _check_result_size((result,))
        return result

    def execute(self, script, context, external_context=None):
        compiled = _compiled_or_raise(script, "exec")
        namespace = self._namespace(compiled, context, external_context)
        exec(compiled.code, namespace)  # noqa: S102
        hidden = set(self.globals) | set(external_context or ())
        results = {}
        for name, value in namespace.items():
            if name in _RESERVED or (name.startswith("_") and name != "_"):
                continue
            if name in hidden and name not in context:
                continue
            if _is_data(value):
                results[name] = value
        # Unchanged immutable values need no walk (a large text already in the data is not the script's doing).
        _check_result_size(v for n, v in results.items()
                           if isinstance(v, _CONTAINERS) or context.get(n, _MISSING) is not v)
        for name in [n for n in context if n not in results and not (n.startswith("_") and n != "_")]:
            del context[name]   # deleted by the script, or rebound to a function / iterator
        context.update(results)
        return True


def make_script_engine() -> PythonScriptEngine:
    """A new SpiffWorkflow script engine that evaluates through the sandbox (cheap: compiled code is shared)."""
    return PythonScriptEngine(environment=SandboxedEnvironment())
