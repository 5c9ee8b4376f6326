"""The calculator's expression language: parsing, static checks and size bounds.

One job: decide, in the caller's process and without computing anything big, whether an
expression is inside the whitelisted language (:func:`parse_expression`). It holds the limits
(``MAX_*``), the whitelists of syntax, names and functions, the exact value of literals
(:func:`literal_value`) and the size checks for powers and factorials that the evaluator
(:mod:`agentbench.tools._calc_eval`) reuses. See :mod:`agentbench.tools.calculator` for the
three safety layers.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import sympy

from agentbench.errors import ToolError

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
