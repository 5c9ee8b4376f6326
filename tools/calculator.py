"""The ``calculator`` tool: exact arithmetic on a whitelisted expression language, never ``eval``.

Safety comes in three layers:

1. **Static checks in the caller's process** (:func:`parse_expression`): length, ``ast.parse``
   failures of any kind (including hostile nesting), node count and depth, a whitelist of node
   types, names and functions, literal sizes, and exact folding of plain-integer sub-expressions
   so that power towers (``9**9**9**9``) and huge factorials are refused without computing them.
2. **Size checks while evaluating** (:class:`_Evaluator`): SymPy objects are built by hand, bottom
   up; before every power or factorial the operands are measured, and every intermediate number
   is capped at :data:`MAX_RESULT_DIGITS` digits.
3. **A time limit and a memory limit**: evaluation runs in a persistent worker subprocess
   (:mod:`agentbench.tools._calc_worker`, its own process group, about 2 GiB of address space)
   that is killed when it overruns and restarted on the next call.

No string from the model is ever converted by SymPy's parser (``sympify`` calls ``eval``).

Complex results are returned, not refused: ``sqrt(-1)`` gives exact ``"I"``, ``value`` null and a
note. Division by zero and infinite or undefined results (``log(0)``) are errors.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import json
import math
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import reduce
from typing import Any

import sympy
from pydantic import BaseModel, Field

from agentbench.childproc import python_module_argv
from agentbench.errors import ToolError

from .registry import ToolContext, register_tool

DEFAULT_TIMEOUT_S = 2.0
#: Starting the worker imports SymPy (about a second); that is not counted in the time limit.
WORKER_START_TIMEOUT_S = 60.0
MAX_EXPRESSION_CHARS = 1000
MAX_NODES = 300
MAX_DEPTH = 60
MAX_LITERAL_DIGITS = 200
MAX_LITERAL_EXPONENT = 400
MAX_EXPONENT = 10_000
MAX_RESULT_DIGITS = 100_000
MAX_FACTORIAL = 1000
MAX_ROUND_DIGITS = 100
MAX_EXACT_CHARS = 1000
#: Plain-integer sub-expressions are folded in the caller only while this small (cheap).
_FOLD_DIGITS = 5000
_LOG10_2 = math.log10(2)

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
    ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
}
_OPERATOR_HINTS: dict[type[ast.AST], str] = {
    ast.BitXor: "'^' is not supported; use ** for powers (2**10)",
    ast.MatMult: "'@' is not supported",
}
_SYNTAX_NAMES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "lambda",
    ast.ListComp: "list comprehension", ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension", ast.GeneratorExp: "generator expression",
    ast.BoolOp: "boolean operator (and/or)", ast.Compare: "comparison", ast.IfExp: "if-expression",
    ast.JoinedStr: "f-string", ast.FormattedValue: "f-string", ast.Starred: "starred argument",
    ast.NamedExpr: "assignment (:=)", ast.List: "list", ast.Tuple: "tuple", ast.Dict: "dict",
    ast.Set: "set", ast.Slice: "slice", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield",
}
_CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "e": sympy.E, "tau": 2 * sympy.pi}

#: name -> (min args, max args or None for any number).
_ARITY: dict[str, tuple[int, int | None]] = {
    **{f: (1, 1) for f in (
        "sqrt", "cbrt", "exp", "ln", "log10", "log2", "sin", "cos", "tan", "asin", "acos",
        "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "abs", "floor", "ceil",
        "factorial", "degrees", "radians",
    )},
    "log": (1, 2), "round": (1, 2), "atan2": (2, 2), "hypot": (2, 2),
    "gcd": (2, None), "lcm": (2, None), "min": (1, None), "max": (1, None),
}


class CalculatorArgs(BaseModel):
    expression: str = Field(
        description="One arithmetic expression in Python-like syntax, without variables or "
        "units, e.g. '67.50 * 15 / 100', 'sqrt(2) / 2', 'log(1000, 10)', '(1 + 0.05)**10'."
    )


# --------------------------------------------------------------------------- static checks


def _where(node: ast.AST) -> str:
    """Position of ``node`` for messages: ``col N`` (1-based), with the line if not the first."""
    col = getattr(node, "col_offset", 0) + 1
    line = getattr(node, "lineno", 1)
    return f"col {col}" if line == 1 else f"line {line}, col {col}"


def _unsupported(node: ast.AST, what: str | None = None) -> ToolError:
    """The error for a construct outside the whitelist."""
    what = what or _SYNTAX_NAMES.get(type(node), type(node).__name__)
    return ToolError(f"unsupported syntax: {what} ({_where(node)})")


def parse_expression(expression: str) -> ast.Expression:
    """Parse and statically check ``expression``; ``ToolError`` on anything outside the language."""
    if not isinstance(expression, str):
        raise ToolError("expression must be a string")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(
            f"expression is {len(expression)} characters long; the limit is {MAX_EXPRESSION_CHARS}"
        )
    if not expression.strip():
        raise ToolError("expression is empty")
    tree = _parse(expression)
    _check_shape(tree)
    _Checker(expression).visit(tree.body)
    return tree


def _parse(expression: str) -> ast.Expression:
    """``ast.parse`` in eval mode, every failure (hostile nesting included) as ``ToolError``."""
    try:
        return ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        col = f" (col {exc.offset})" if exc.offset else ""
        hint = "; '%' is modulo: write 15% of x as x * 15 / 100" if "%" in expression else ""
        raise ToolError(f"invalid syntax: {exc.msg}{col}{hint}") from None
    except (RecursionError, MemoryError):
        raise ToolError("expression is nested too deeply") from None
    except ValueError as exc:  # e.g. NUL bytes
        raise ToolError(f"invalid expression: {exc}") from None


def _check_shape(tree: ast.AST) -> None:
    """Bound node count and depth iteratively, so the recursive checks below cannot overflow."""
    stack, count = [(tree, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ToolError(f"expression is too complex (more than {MAX_NODES} syntax nodes)")
        if depth > MAX_DEPTH:
            raise ToolError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _digits(n: int) -> int:
    """Decimal digits of ``|n|``, estimated from its bit length (never converts to text)."""
    return int(abs(n).bit_length() * _LOG10_2) + 1


def _fraction_digits(x: sympy.Rational) -> int:
    """Digits of the larger of numerator and denominator."""
    return max(_digits(int(x.p)), _digits(int(x.q)))


def _check_power_size(base_digits: int, exponent: int | Fraction) -> None:
    """Refuse a power whose exponent or estimated result size is over the limits."""
    magnitude = abs(Fraction(exponent))
    if magnitude > MAX_EXPONENT:
        raise ToolError(f"exponent {_short(exponent)} is too large (the limit is {MAX_EXPONENT})")
    digits = base_digits * math.ceil(magnitude)
    if digits > MAX_RESULT_DIGITS:
        raise ToolError(
            f"result would have about {digits} digits (the limit is {MAX_RESULT_DIGITS})"
        )


def _check_factorial_arg(n: int) -> None:
    """Refuse factorials outside 0..MAX_FACTORIAL."""
    if not 0 <= n <= MAX_FACTORIAL:
        raise ToolError(
            f"factorial needs a whole number from 0 to {MAX_FACTORIAL}, got {_short(n)}"
        )


def _short(x: object) -> str:
    """``x`` as text, shortened if huge (never converting a giant int to text)."""
    if isinstance(x, int) and _digits(x) > 30:
        return f"a {_digits(x)}-digit number"
    text = str(x)
    return text if len(text) <= 40 else text[:37] + "..."


class _Checker:
    """Recursive whitelist walk (depth is already bounded by :func:`_check_shape`)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def visit(self, node: ast.AST) -> None:
        """Check ``node`` and its children."""
        if isinstance(node, ast.Constant):
            literal_value(node, self.source)
        elif isinstance(node, ast.Name):
            if node.id not in _CONSTANTS:
                raise _unknown_name(node.id, node)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.UAdd, ast.USub)):
                raise _unsupported(node, f"operator {type(node.op).__name__}")
            self.visit(node.operand)
        elif isinstance(node, ast.BinOp):
            self._binop(node)
        elif isinstance(node, ast.Call):
            self._call(node)
        else:
            raise _unsupported(node)

    def _binop(self, node: ast.BinOp) -> None:
        if type(node.op) not in _BINOPS:
            hint = _OPERATOR_HINTS.get(type(node.op), f"operator {type(node.op).__name__}")
            raise _unsupported(node, hint)
        self.visit(node.left)
        self.visit(node.right)
        if isinstance(node.op, ast.Pow):
            _fold(node)  # raises on towers like 9**9**9 without computing them

    def _call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            raise _unsupported(node, "call of something other than a function name")
        name = node.func.id
        if name not in _ARITY:
            raise _unknown_name(name, node)
        if node.keywords:
            raise _unsupported(node, f"keyword argument in {name}()")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise _unsupported(node, f"starred argument in {name}()")
        low, high = _ARITY[name]
        if len(node.args) < low or (high is not None and len(node.args) > high):
            wanted = f"{low} or more" if high is None else f"{low}-{high}"
            wanted = f"{low}" if low == high else wanted
            raise ToolError(
                f"{name}() takes {wanted} argument{'' if wanted == '1' else 's'}, "
                f"got {len(node.args)} ({_where(node)})"
            )
        for arg in node.args:
            self.visit(arg)
        if name == "factorial":
            _fold(node)


def _unknown_name(name: str, node: ast.AST) -> ToolError:
    """The error for a name that is neither a known constant nor function."""
    if name.startswith("__") or name in ("eval", "exec", "open", "import", "getattr", "globals"):
        return ToolError(f"unsupported syntax: name '{name}' is not allowed ({_where(node)})")
    known = ", ".join(sorted(_CONSTANTS)) + "; functions: " + ", ".join(sorted(_ARITY))
    return ToolError(
        f"unknown name '{name}' ({_where(node)}); variables are not supported. "
        f"Known constants: {known}"
    )


def literal_value(node: ast.Constant, source: str) -> sympy.Rational:
    """The exact value of a numeric literal; floats are read from their decimal text."""
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "boolean" if isinstance(value, bool) else type(value).__name__
        if isinstance(value, complex):
            kind = "complex number (write sqrt(-1) for i)"
        raise _unsupported(node, f"{kind} literal")
    if isinstance(value, int):
        if _digits(value) > MAX_LITERAL_DIGITS + 1 or len(str(value)) > MAX_LITERAL_DIGITS:
            raise ToolError(f"number literal has more than {MAX_LITERAL_DIGITS} digits")
        return sympy.Integer(value)
    text = ast.get_source_segment(source.strip(), node) or repr(value)
    try:
        dec = Decimal(text)
    except InvalidOperation:
        dec = Decimal(repr(value))
    exp = dec.as_tuple().exponent
    if not dec.is_finite() or not isinstance(exp, int):
        raise ToolError(f"number literal {text!r} is not finite")
    if len(dec.as_tuple().digits) > MAX_LITERAL_DIGITS or abs(exp) > MAX_LITERAL_EXPONENT:
        raise ToolError(f"number literal {text[:40]!r} is too large or too precise")
    frac = Fraction(dec)
    return sympy.Rational(frac.numerator, frac.denominator)


def _fold(node: ast.AST) -> int | None:
    """Exact value of a plain-integer sub-expression, checking power/factorial limits on the way.

    Returns ``None`` when the sub-expression is not plain integer arithmetic or its value would be
    too big to compute cheaply here; the evaluator then checks it precisely.
    """
    if isinstance(node, ast.Constant):
        value = node.value
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(node, ast.UnaryOp):
        inner = _fold(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id != "factorial" or len(node.args) != 1:
            return None
        n = _fold(node.args[0])
        if n is None:
            return None
        _check_factorial_arg(n)
        return math.factorial(n) if n <= 200 else None
    if isinstance(node, ast.BinOp):
        return _fold_binop(node)
    return None


def _fold_binop(node: ast.BinOp) -> int | None:
    """:func:`_fold` for binary operators (integer-valued ones only)."""
    left, right = _fold(node.left), _fold(node.right)
    if isinstance(node.op, ast.Pow):
        if right is not None:
            base_digits = _digits(left) if left is not None else 1
            _check_power_size(base_digits, right)
            if left is not None and right >= 0 and base_digits * right <= _FOLD_DIGITS:
                return int(left**right)
        return None
    if left is None or right is None:
        return None
    if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
        raise ToolError(f"division by zero ({_where(node)})")
    ops: dict[type[ast.operator], Callable[[int, int], int]] = {
        ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b, ast.FloorDiv: lambda a, b: a // b,
        ast.Mod: lambda a, b: a % b,
    }
    op = ops.get(type(node.op))
    if op is None or _digits(left) + _digits(right) > _FOLD_DIGITS:
        return None
    return op(left, right)


# --------------------------------------------------------------------------- evaluation


def _real_number(x: sympy.Expr, what: str) -> sympy.Expr:
    """``x`` if it is a real number; ``ToolError`` otherwise."""
    if x.is_real is not True:
        raise ToolError(f"{what} needs a real number, got {_short(x)}")
    return x


def _integer(x: sympy.Expr, what: str) -> int:
    """``x`` as a Python int if it is an integer; ``ToolError`` otherwise."""
    if not isinstance(x, sympy.Integer):
        raise ToolError(f"{what} needs whole numbers, got {_short(x)}")
    return int(x)


def _round(x: sympy.Expr, ndigits: sympy.Expr | None = None) -> sympy.Expr:
    """Round half away from zero to ``ndigits`` decimals (exact, unlike float rounding)."""
    n = 0 if ndigits is None else _integer(ndigits, "round()'s digit count")
    if abs(n) > MAX_ROUND_DIGITS:
        raise ToolError(f"round() digit count must be between -{MAX_ROUND_DIGITS} and "
                        f"{MAX_ROUND_DIGITS}")
    scale = sympy.Integer(10) ** n
    scaled = _real_number(x, "round()") * scale
    rounded = sympy.floor(abs(scaled) + sympy.Rational(1, 2)) * sympy.sign(scaled)
    return rounded / scale


def _factorial(x: sympy.Expr) -> sympy.Expr:
    """``x!`` for a whole ``x`` in 0..MAX_FACTORIAL."""
    if not isinstance(x, sympy.Integer):
        raise ToolError(
            f"factorial needs a whole number from 0 to {MAX_FACTORIAL}, got {_short(x)}"
        )
    _check_factorial_arg(int(x))
    return sympy.factorial(x)


def _gcd_lcm(fn: Callable[[Any, Any], Any], name: str) -> Callable[..., sympy.Expr]:
    """gcd or lcm over any number of whole arguments."""

    def apply(*args: sympy.Expr) -> sympy.Expr:
        for a in args:
            _integer(a, f"{name}()")
        return sympy.Integer(reduce(fn, args))

    return apply


def _log(x: sympy.Expr, base: sympy.Expr | None = None) -> sympy.Expr:
    """Natural logarithm, or logarithm in ``base``."""
    if x.is_zero:
        raise ToolError("log(0) is undefined (minus infinity)")
    if base is None:
        return sympy.log(x)
    if base.is_zero or base == 1:
        raise ToolError(f"log base {base} is not allowed")
    return sympy.log(x, base)


_FUNCTIONS: dict[str, Callable[..., sympy.Expr]] = {
    "sqrt": sympy.sqrt, "cbrt": lambda x: sympy.real_root(x, 3) if x.is_real else sympy.cbrt(x),
    "exp": sympy.exp, "ln": _log, "log": _log,
    "log10": lambda x: _log(x, sympy.Integer(10)), "log2": lambda x: _log(x, sympy.Integer(2)),
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "asin": sympy.asin, "acos": sympy.acos,
    "atan": sympy.atan, "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh,
    "asinh": sympy.asinh, "acosh": sympy.acosh, "atanh": sympy.atanh,
    "atan2": lambda y, x: sympy.atan2(_real_number(y, "atan2()"), _real_number(x, "atan2()")),
    "hypot": lambda x, y: sympy.sqrt(x**2 + y**2),
    "abs": sympy.Abs, "floor": sympy.floor, "ceil": sympy.ceiling, "round": _round,
    "factorial": _factorial, "gcd": _gcd_lcm(sympy.gcd, "gcd"), "lcm": _gcd_lcm(sympy.lcm, "lcm"),
    "min": sympy.Min, "max": sympy.Max,
    "degrees": lambda x: x * 180 / sympy.pi, "radians": lambda x: x * sympy.pi / 180,
}


def _check_size(x: sympy.Expr) -> sympy.Expr:
    """Refuse any value holding a number with more than :data:`MAX_RESULT_DIGITS` digits."""
    atoms = [x] if isinstance(x, sympy.Rational) else x.atoms(sympy.Rational)
    for a in atoms:
        if _fraction_digits(a) > MAX_RESULT_DIGITS:
            raise ToolError(
                f"an intermediate result has about {_fraction_digits(a)} digits "
                f"(the limit is {MAX_RESULT_DIGITS})"
            )
    return x


class _Evaluator:
    """Builds the SymPy value of a checked tree bottom-up, measuring operands before big steps."""

    def __init__(self, source: str) -> None:
        self.source = source

    def value_of(self, node: ast.AST) -> sympy.Expr:
        """Value of ``node`` (already whitelisted by :func:`parse_expression`)."""
        if isinstance(node, ast.Constant):
            return literal_value(node, self.source)
        if isinstance(node, ast.Name):
            return _CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            inner = self.value_of(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            return _check_size(self._binop(node))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [self.value_of(a) for a in node.args]
            return _check_size(_FUNCTIONS[node.func.id](*args))
        raise _unsupported(node)  # unreachable after parse_expression; kept as a backstop

    def _binop(self, node: ast.BinOp) -> sympy.Expr:
        a, b = self.value_of(node.left), self.value_of(node.right)
        op = type(node.op)
        if op in (ast.Div, ast.FloorDiv, ast.Mod) and b.is_zero:
            raise ToolError(f"division by zero ({_where(node)})")
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            return a / b
        if op is ast.FloorDiv:
            return sympy.floor(a / b)
        if op is ast.Mod:
            return sympy.Mod(a, b)
        return self._power(a, b, node)

    def _power(self, base: sympy.Expr, exp: sympy.Expr, node: ast.AST) -> sympy.Expr:
        """``base**exp`` after checking the exponent's size and the result's estimated digits."""
        if base.is_zero and exp.is_negative:
            raise ToolError(f"division by zero: 0 raised to a negative power ({_where(node)})")
        if isinstance(exp, sympy.Rational):
            magnitude: int | Fraction = Fraction(int(exp.p), int(exp.q))
        else:
            approx = sympy.N(sympy.Abs(exp), 15)
            if not approx.is_Number:
                raise ToolError(f"cannot bound the exponent {_short(exp)}")
            magnitude = Fraction(math.ceil(float(approx)))
        numbers = [base] if isinstance(base, sympy.Rational) else base.atoms(sympy.Rational)
        base_digits = max((_fraction_digits(r) for r in numbers), default=1)
        _check_power_size(base_digits, magnitude)
        return base**exp


def _format_float(x: sympy.Expr) -> str:
    """A SymPy Float as short text: 15 significant digits without trailing-zero noise."""
    text = str(x)
    mantissa, sep, exponent = text.partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa + sep + exponent


def _exact_text(value: sympy.Expr) -> str:
    """SymPy's text of the exact value, or a note when it is too long to be useful."""
    if isinstance(value, sympy.Rational) and _fraction_digits(value) > MAX_EXACT_CHARS:
        return f"(exact value omitted: about {_fraction_digits(value)} digits; see numeric)"
    try:
        text = str(value)
    except ValueError:  # Python refuses to print ints over 4300 digits
        return "(exact value omitted: too long; see numeric)"
    if len(text) > MAX_EXACT_CHARS:
        return f"(exact value omitted: {len(text)} characters; see numeric)"
    return text


def _describe(expression: str, value: sympy.Expr) -> dict[str, Any]:
    """The tool's result for an evaluated ``value``."""
    bad = (sympy.zoo, sympy.oo, sympy.S.NegativeInfinity, sympy.nan)
    if value.has(*bad):
        raise ToolError("the result is infinite or undefined (e.g. division by zero or log(0))")
    # 30 digits, so that rounding to 15 for "numeric" and to a float for "value" are both exact.
    numeric = sympy.N(value, 30)
    re, im = numeric.as_real_imag()
    if not (isinstance(re, sympy.Number) and isinstance(im, sympy.Number)) or {re, im} & set(bad):
        raise ToolError(f"could not evaluate {_short(value)} to a number")
    result: dict[str, Any] = {"expression": expression, "exact": _exact_text(value)}
    if im.is_zero:
        result["numeric"] = _format_float(sympy.Float(re, 15))
        as_float = float(re)
        result["value"] = as_float if math.isfinite(as_float) else None
    else:
        sign = "-" if im.is_negative else "+"
        imag = _format_float(sympy.Float(abs(im), 15)) + "*I"
        if re.is_zero:
            result["numeric"] = imag if sign == "+" else f"-{imag}"
        else:
            result["numeric"] = f"{_format_float(sympy.Float(re, 15))} {sign} {imag}"
        result["value"] = None
        result["note"] = "the result is complex; I is the imaginary unit sqrt(-1)"
    return result


def evaluate(expression: str) -> dict[str, Any]:
    """Check and evaluate ``expression`` in this process (no time limit: the worker calls this)."""
    tree = parse_expression(expression)
    return _describe(expression, _Evaluator(expression).value_of(tree.body))


# --------------------------------------------------------------------------- worker process

#: The worker program (:mod:`agentbench.tools._calc_worker`); see there for the protocol.
WORKER_COMMAND = tuple(python_module_argv("agentbench.tools._calc_worker"))
_CRASHED = "the calculation crashed (probably out of memory); try a smaller expression"


class _Worker:
    """Client of one lazily started evaluation subprocess per process, shared by all threads.

    Calls are serialised. A plain subprocess, not multiprocessing: ``spawn`` re-imports the
    parent's ``__main__`` (fails for ``python -`` and unguarded scripts) and ``fork`` is unsafe in
    a multi-threaded caller. The worker runs in its own process group, so a timeout kills the
    whole group.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending = bytearray()  # bytes read from the worker after the last full line

    def evaluate(self, expression: str, timeout: float) -> dict[str, Any]:
        """Evaluate in the worker; kill it and raise ``ToolError`` when ``timeout`` passes."""
        request = (json.dumps({"expression": expression}) + "\n").encode()
        with self._lock:
            proc = self._running()
            try:
                self._write(proc, request)
                line = self._read_line(proc, timeout)
                reply = None if line is None else json.loads(line)
            except (OSError, EOFError, ValueError):  # dead worker or garbled reply
                self._stop()
                raise ToolError(_CRASHED) from None
            except BaseException:  # e.g. Ctrl-C: a late reply must never answer the next call
                self._stop()
                raise
            if line is None:
                self._stop()  # the next call starts a fresh worker
                raise ToolError(f"calculation timed out after {timeout} s")
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), dict):
            error = reply.get("error") if isinstance(reply, dict) else None
            raise ToolError(str(error or "the calculator's worker sent an invalid reply"))
        return dict(reply["ok"])

    def pid(self) -> int | None:
        """The worker's process id, or ``None`` when none is running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def stop(self) -> None:
        """Stop the worker if it runs (it restarts lazily on the next call)."""
        with self._lock:
            self._stop()

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's worker without stopping it; the child starts its own."""
        self._lock = threading.Lock()
        proc, self._proc, self._pending = self._proc, None, bytearray()
        if proc is not None:
            _close_pipes(proc)

    def _running(self) -> subprocess.Popen[bytes]:
        """The live worker, started (and waited for) if needed."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop()
        try:
            self._proc = subprocess.Popen(
                WORKER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, start_new_session=True, bufsize=0,
                # the current directory is kept off the worker's sys.path (python_module_argv),
                # so a local ./resource.py or a source checkout cannot shadow what it imports

            )
            line = self._read_line(self._proc, WORKER_START_TIMEOUT_S)
            ready = line is not None and json.loads(line) == {"ready": True}
        except (OSError, EOFError, ValueError):
            ready = False
        except BaseException:
            self._stop()
            raise
        if not ready or self._proc is None:
            self._stop()
            raise ToolError("the calculator's worker process could not start")
        return self._proc

    @staticmethod
    def _write(proc: subprocess.Popen[bytes], data: bytes) -> None:
        """Write all of ``data`` to the worker's stdin (small: the pipe buffer never fills)."""
        assert proc.stdin is not None
        view = memoryview(data)
        while view:
            view = view[os.write(proc.stdin.fileno(), view):]

    def _read_line(self, proc: subprocess.Popen[bytes], timeout: float) -> bytes | None:
        """The worker's next line, ``None`` if none is complete within ``timeout`` seconds;
        ``EOFError`` if the worker closed its stdout (it died)."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EOFError("the calculator's worker closed its output")
                self._pending += chunk
        end = self._pending.index(b"\n")
        line = bytes(self._pending[:end])
        del self._pending[: end + 1]
        return line

    def _stop(self) -> None:
        """Kill the worker's process group and reap the worker (caller holds the lock)."""
        proc, self._proc, self._pending = self._proc, None, bytearray()
        if proc is None:
            return
        if proc.returncode is None:  # not reaped yet, so its pid still names its process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        _close_pipes(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    """Close this process's ends of the worker's pipes."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


_WORKER = _Worker()
atexit.register(_WORKER.stop)
os.register_at_fork(after_in_child=_WORKER.forget_after_fork)


def shutdown_worker() -> None:
    """Stop the evaluation worker now (tests and shutdown code; it restarts when next needed)."""
    _WORKER.stop()


def worker_pid() -> int | None:
    """Process id of the running evaluation worker, if any."""
    return _WORKER.pid()


def _timeout(ctx: ToolContext) -> float:
    """The run's time limit for one calculation (``ctx.options["calculator_timeout_s"]``)."""
    value = ctx.options.get("calculator_timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return DEFAULT_TIMEOUT_S
    return float(value)


# --------------------------------------------------------------------------- the tool

_DESCRIPTION = """Evaluate an arithmetic expression exactly and return the result.
Use this for any calculation instead of doing arithmetic in your head: percentages, tips, prices,
unit conversions, powers, roots, logarithms, trigonometry. Write one expression in Python-like
syntax: numbers, + - * / // % ** and parentheses. Decimals are exact (0.1 + 0.2 is exactly 3/10).
'%' is modulo, not percent: 15% of 67.50 is 67.50 * 15 / 100. Use ** for powers, not ^.
Constants: pi, e, tau. Functions: sqrt, cbrt, exp, ln, log(x) (natural) or log(x, base), log10,
log2, sin, cos, tan, asin, acos, atan, atan2(y, x), sinh, cosh, tanh, asinh, acosh, atanh
(angles in radians; convert with radians(deg) and degrees(rad)), abs, round(x, ndigits) (half away
from zero), floor, ceil, factorial, gcd, lcm, min, max, hypot. No variables, units or text.
Returns JSON: "exact" (exact form, e.g. "81/8" or "sqrt(2)/2"), "numeric" (15 significant digits,
e.g. "10.125") and "value" (a number, or null if the result is complex).
Example: {"expression": "67.50 * 0.15"} returns
{"exact": "81/8", "numeric": "10.125", "value": 10.125}"""


@register_tool("calculator", CalculatorArgs, _DESCRIPTION, group="math")
def calculator(ctx: ToolContext, args: CalculatorArgs) -> dict[str, Any]:
    """Evaluate ``args.expression``: checked here, then computed in the time-limited worker."""
    parse_expression(args.expression)  # hostile input is refused here, without the worker
    return _WORKER.evaluate(args.expression, _timeout(ctx))
