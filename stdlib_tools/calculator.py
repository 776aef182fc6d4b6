"""Arithmetic on numbers, evaluated from a parsed expression tree (never ``eval``).

Every step is bounded: a power whose result would have more than :data:`MAX_DIGITS`
digits is refused before it is computed (``9**9**9`` answers at once), every
intermediate result is checked, and floats that overflow or turn complex are errors.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_SYMBOLS: dict[type[ast.operator], str] = {
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    ast.MatMult: "@",
}  # fmt: skip
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt, "log": math.log, "log10": math.log10, "log2": math.log2,
    "exp": math.exp, "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
    "acos": math.acos, "atan": math.atan, "abs": abs, "round": round, "floor": math.floor,
    "ceil": math.ceil, "min": min, "max": max,
}  # fmt: skip
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
#: integer results (and intermediate results) may have at most this many digits
MAX_DIGITS = 1_000
_MAX_BITS = math.ceil(MAX_DIGITS * math.log2(10))
#: the longest expression accepted
MAX_LENGTH = 1_000
#: how deeply an expression may nest
MAX_DEPTH = 100
#: the largest n of factorial(n)
MAX_FACTORIAL = 449


class CalculatorError(ValueError):
    """The expression is not arithmetic this tool evaluates, or its result is out of range."""


def run(expression: str) -> dict[str, float | int]:
    """Evaluate ``expression``: numbers, + - * / // % **, parentheses, pi, e, tau and the
    functions of :data:`_FUNCTIONS` plus ``factorial``."""
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"expression longer than {MAX_LENGTH} characters")
    if not expression.strip():
        raise CalculatorError("the expression is empty: give the arithmetic itself, e.g. 12 * 7")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise CalculatorError(f"not an arithmetic expression{where}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc}") from None
    return {"result": _eval(tree.body, 0)}


def _eval(node: ast.AST, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CalculatorError(f"the expression nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}: the constants are pi, e and tau")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        # a chain (1 + 2 + ... + n) nests to the left: only the right side is nesting
        left, right = _eval(node.left, depth), _eval(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        return _apply(_BINARY[type(node.op)], left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, depth + 1))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name = node.func.id
        if name not in _FUNCTIONS and name != "factorial":
            known = ", ".join([*_FUNCTIONS, "factorial"])
            raise CalculatorError(f"unknown function {name!r}; the functions are {known}")
        return _call(name, [_eval(arg, depth + 1) for arg in node.args])
    if isinstance(node, ast.BinOp) and type(node.op) in _SYMBOLS:
        symbol = _SYMBOLS[type(node.op)]
        raise CalculatorError(f"unsupported operator {symbol}: use + - * / // % **")
    raise CalculatorError(f"unsupported expression: {ast.unparse(node)}")


def _power(base: Any, exponent: Any) -> Any:
    # refused before computing: an integer power's size is known in advance
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if (abs(base).bit_length() - 1) * exponent > _MAX_BITS:
            raise CalculatorError(f"the result of the power has more than {MAX_DIGITS} digits")
    return _apply(operator.pow, base, exponent)


def _apply(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return _checked(function(*args))
    except ZeroDivisionError:
        if function is operator.pow:
            raise CalculatorError("0 cannot be raised to a negative power") from None
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("the result is too large for a floating-point number") from None


def _call(name: str, args: list[Any]) -> Any:
    if name == "factorial":
        if len(args) != 1 or not isinstance(args[0], int) or not 0 <= args[0] <= MAX_FACTORIAL:
            raise CalculatorError(f"factorial takes one whole number from 0 to {MAX_FACTORIAL}")
        return _checked(math.factorial(args[0]))
    function = _FUNCTIONS[name]
    if name == "round" and len(args) == 2 and isinstance(args[1], int):
        if abs(args[1]) > MAX_DIGITS:
            raise CalculatorError(f"round's digits must be between -{MAX_DIGITS} and {MAX_DIGITS}")
    shown = ", ".join(_short(a) for a in args)
    try:
        return _apply(function, *args)
    except ValueError as exc:
        if isinstance(exc, CalculatorError):
            raise
        raise CalculatorError(f"{name}({shown}) is undefined ({exc})") from None
    except TypeError as exc:
        raise CalculatorError(f"{name}({shown}): {exc}") from None


def _checked(value: Any) -> Any:
    if isinstance(value, complex):
        raise CalculatorError(
            "the result is a complex number (a fractional power of a negative number?)"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError(
            "the result is too large" if math.isinf(value) else "the result is not a number"
        )
    if isinstance(value, int) and value.bit_length() >= _MAX_BITS - 3:
        # near the limit the bit length cannot tell: count the digits (cheap at this size)
        if value.bit_length() > _MAX_BITS or len(str(abs(value))) > MAX_DIGITS:
            raise CalculatorError(f"the result has more than {MAX_DIGITS} digits")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
