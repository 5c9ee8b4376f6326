"""The calculator's evaluator: a checked tree to an exact SymPy value, then to the tool's result.

One job: :func:`evaluate` (which the worker process, :mod:`agentbench.tools._calc_worker`, calls)
parses with :func:`~agentbench.tools._calc_parse.parse_expression`, builds the SymPy value bottom
up (:class:`_Evaluator`, measuring operands before every power or factorial and capping every
intermediate number at ``MAX_RESULT_DIGITS`` digits), and formats it as ``exact`` / ``numeric`` /
``value``. No string is ever converted by SymPy's parser (``sympify`` calls ``eval``).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from fractions import Fraction
from functools import reduce
from typing import Any

import sympy

from agentbench.errors import ToolError

from ._calc_parse import (
    _CONSTANTS,
    MAX_EXACT_CHARS,
    MAX_FACTORIAL,
    MAX_RESULT_DIGITS,
    MAX_ROUND_DIGITS,
    _check_factorial_arg,
    _check_power_size,
    _fraction_digits,
    _short,
    _unsupported,
    _where,
    literal_value,
    parse_expression,
)


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
