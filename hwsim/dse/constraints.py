"""A small, safe expression language for sweep constraints.

A constraint is either a string expression or a structured bound::

    constraints:
      - "onchip_bytes <= 64e6"
      - "hw.core.matrix.rows * hw.core.matrix.cols <= 4096 and beam >= 4"
      - {field: hw.dram_bw_bytes_per_s, min: 50e9, max: 400e9}

Expressions are parsed with Python's ``ast`` module and evaluated by walking a whitelist of node
types: numbers, strings, booleans, names (dotted, e.g. ``hw.core.matrix.rows``), arithmetic
(``+ - * / // % **``), comparisons (chained, ``in`` / ``not in`` a literal list), ``and``, ``or``,
``not`` and parentheses. Anything else (calls, subscripts, lambdas, comprehensions, attribute
access on values) is rejected when the sweep is loaded, so no arbitrary code ever runs.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from models.yamlio import ConfigError

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_MAX_POW_EXPONENT = 64
#: Largest magnitude of any intermediate value (about the largest float). Bounding every result,
#: not only each exponent, keeps nested powers (``((beam ** 64) ** 64) ** 64``) and long products
#: from building integers of millions of digits.
MAX_MAGNITUDE = 1e308


def _check_pow(base: float, exponent: float) -> None:
    if abs(exponent) > _MAX_POW_EXPONENT:
        raise ValueError(f"exponent {exponent} too large (at most {_MAX_POW_EXPONENT})")
    if exponent > 0 and abs(base) > 1 and exponent * math.log10(abs(base)) > math.log10(MAX_MAGNITUDE):
        raise ValueError(f"{base!r} ** {exponent!r} exceeds {MAX_MAGNITUDE:g}")


def _bounded(value: Any) -> Any:
    if isinstance(value, complex):  # (-8) ** 0.5
        raise ValueError(f"complex result {value!r}")
    if isinstance(value, (int, float)) and abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"intermediate value exceeds {MAX_MAGNITUDE:g}")
    return value


@lru_cache(maxsize=1024)
def _parse(text: str) -> ast.Expression:
    return ast.parse(text, mode="eval")


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` as a string if ``node`` is a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _check(node: ast.AST, names: set[str]) -> None:
    """Raise ValueError if ``node`` uses anything outside the whitelist; collect names."""
    if isinstance(node, ast.Expression):
        _check(node.body, names)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool)):
            raise ValueError(f"constant {node.value!r} is not allowed")
    elif isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        if name is None:
            raise ValueError("attribute access is only allowed in dotted names (hw.core.matrix.rows)")
        if any(part.startswith("_") for part in name.split(".")):
            raise ValueError(f"name {name!r}: components may not start with '_'")
        names.add(name)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, names)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
        _check(node.operand, names)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check(node.left, names)
        _check(node.right, names)
    elif isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
        _check(node.left, names)
        for c in node.comparators:
            _check(c, names)
    elif isinstance(node, (ast.List, ast.Tuple)):
        for e in node.elts:
            if not isinstance(e, ast.Constant):
                raise ValueError("lists may hold literal values only")
            _check(e, names)
    else:
        raise ValueError(f"{type(node).__name__} is not allowed in a constraint")


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        return env[_dotted(node)]
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, env) for v in node.values)
        return any(_eval(v, env) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        if not isinstance(node.op, ast.Not) and not isinstance(v, (int, float)):
            raise ValueError(f"arithmetic needs numbers, got {v!r}")
        return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        for v in (left, right):
            if not isinstance(v, (int, float)):  # "ab" * 10**9 would allocate gigabytes
                raise ValueError(f"arithmetic needs numbers, got {v!r}")
        if isinstance(node.op, ast.Pow):
            _check_pow(left, right)
        return _bounded(_BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, env)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, (ast.List, ast.Tuple)):
        return tuple(_eval(e, env) for e in node.elts)
    raise ValueError(f"{type(node).__name__} is not allowed")  # unreachable after _check


@dataclass(frozen=True)
class Constraint:
    """One compiled constraint.

    Attributes:
        text: the expression as written (structured bounds are rewritten as an expression).
        names: the dotted names it reads.
    """

    text: str
    names: frozenset[str]

    def __call__(self, env: Mapping[str, Any]) -> bool:
        """True if the point described by ``env`` (name -> value) satisfies the constraint."""
        return bool(_eval(_parse(self.text), env))


def compile_constraint(raw: Any, where: str) -> Constraint:
    """Compile a constraint from its YAML form (a string or ``{field, min, max}``).

    Args:
        raw: the parsed YAML item.
        where: ``file: constraints[i]`` for error messages.

    Raises:
        ConfigError: syntax error, forbidden construct, or malformed structured bound.
    """
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"field", "min", "max"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; expected field, min, max")
        field = raw.get("field")
        if not isinstance(field, str) or not field:
            raise ConfigError(f"{where}.field: expected a dotted name, got {field!r}")
        if "min" not in raw and "max" not in raw:
            raise ConfigError(f"{where}: give min, max or both")
        terms = []
        for key, op in (("min", ">="), ("max", "<=")):
            if key in raw:
                bound = _number(raw[key], f"{where}.{key}")
                terms.append(f"{field} {op} {bound!r}")
        raw = " and ".join(terms)
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: expected an expression string or {{field, min, max}}, got {raw!r}")
    try:
        tree = ast.parse(raw, mode="eval")
        names: set[str] = set()
        _check(tree, names)
    except SyntaxError as exc:
        raise ConfigError(f"{where}: invalid expression {raw!r}: {exc.msg}") from exc
    except ValueError as exc:
        raise ConfigError(f"{where}: {raw!r}: {exc}") from exc
    return Constraint(raw, frozenset(names))


def _number(value: Any, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return value
