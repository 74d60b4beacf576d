"""`when:` conditions: a small, safe expression language over the lead and earlier steps.

    lead.score >= 60 and lead.industry in ["software", "fintech"]
    steps.manager_review.decision == "approve"

Names are `lead.<field>` or `steps.<step_id>.<value>`; operators are comparisons, `in`,
`not in`, `and`, `or`, `not`; values are strings, numbers, true/false, null and lists.
Nothing is evaluated by Python's `eval`, and a condition is at most MAX_CONDITION_LENGTH
characters long and MAX_CONDITION_DEPTH levels deep.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any

_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


MAX_CONDITION_LENGTH = 1000  # characters
MAX_CONDITION_DEPTH = 32  # levels of the parsed expression, e.g. one per `not` or parenthesised `and`/`or`

_LITERALS = {"true": True, "false": False, "null": None}  # YAML's spelling, beside Python's


def _negative_number(node: ast.expr) -> bool:
    return (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool))


class ConditionError(ValueError):
    """A condition that cannot be parsed or names something unknown."""


@dataclass(frozen=True)
class Condition:
    source: str
    tree: ast.expr
    names: frozenset[tuple[str, ...]]

    def evaluate(self, context: dict[str, Any]) -> bool:
        """True when the condition holds for `context` ({"lead": {...}, "steps": {...}})."""
        return bool(_eval(self.tree, context))

    def compared_values(self) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
        """Each name tested for equality with literal values: `name == "a"`, `"a" != name`, `name in ["a", "b"]`.

        Returns (name, values) pairs in the order written; orderings (`<`, `>=`) and `"a" in name` are left out.
        """
        found = []
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Compare):
                continue
            operands = (node.left, *node.comparators)
            for left, op, right in zip(operands, node.ops, operands[1:]):
                if isinstance(op, (ast.Eq, ast.NotEq)):
                    pairs = ((left, (right,)), (right, (left,)))
                elif isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.List, ast.Tuple)):
                    pairs = ((left, tuple(right.elts)),)
                else:
                    continue
                for name_node, value_nodes in pairs:
                    path = _name_path(name_node) if isinstance(name_node, (ast.Attribute, ast.Name)) else None
                    values = [_literal(v) for v in value_nodes]
                    if path and path[0] in ("lead", "steps") and all(ok for ok, _ in values):
                        found.append((path, tuple(value for _, value in values)))
        return found


def parse_condition(source: str) -> Condition:
    """Parse `source`, raising ConditionError with the reason when it is not a condition."""
    if len(source) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"condition is {len(source):,} characters long, over the limit of "
                             f"{MAX_CONDITION_LENGTH}; shorten it")
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ConditionError(f"cannot parse condition {source!r}: {exc.msg}{where}") from None
    except (RecursionError, MemoryError):
        reason = f"condition is nested too deeply to parse; nest it at most {MAX_CONDITION_DEPTH} levels deep"
        raise ConditionError(reason) from None
    if _depth(tree) > MAX_CONDITION_DEPTH:  # _check and _eval recurse once per level
        raise ConditionError(f"condition is nested more than {MAX_CONDITION_DEPTH} levels deep; simplify it")
    names: set[tuple[str, ...]] = set()
    _check(tree, names)
    return Condition(source, tree, frozenset(names))


def _literal(node: ast.expr) -> tuple[bool, Any]:
    """(True, value) when `node` is a literal value of a condition, else (False, None)."""
    if isinstance(node, ast.Constant):
        return True, node.value
    if isinstance(node, ast.Name) and node.id in _LITERALS:
        return True, _LITERALS[node.id]
    if _negative_number(node):
        return True, -node.operand.value  # type: ignore[attr-defined]
    return False, None


def _depth(tree: ast.AST) -> int:
    """How many nodes deep `tree` is, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _name_path(node: ast.expr) -> tuple[str, ...] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return (node.id, *reversed(parts))
    return None


def _check(node: ast.expr, names: set[tuple[str, ...]]) -> None:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, names)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, names)
    elif _negative_number(node):
        pass
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise ConditionError(f"operator {type(op).__name__} is not allowed in a condition")
        for operand in (node.left, *node.comparators):
            _check(operand, names)
    elif isinstance(node, (ast.List, ast.Tuple)):
        for element in node.elts:
            _check(element, names)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (str, int, float, bool, type(None))):
            raise ConditionError(f"value {node.value!r} is not allowed in a condition")
    elif isinstance(node, ast.Name) and node.id in _LITERALS:
        pass
    elif isinstance(node, (ast.Attribute, ast.Name)):
        path = _name_path(node)
        valid = path is not None and (
            (path[0] == "lead" and len(path) == 2) or (path[0] == "steps" and len(path) == 3)
        )
        if not valid:
            shown = ".".join(path) if path else ast.unparse(node)
            raise ConditionError(f"unknown name {shown!r}; write lead.<field> or steps.<step_id>.<value>")
        names.add(path)
    else:
        raise ConditionError(f"{ast.unparse(node)!r} is not allowed in a condition")


def _eval(node: ast.expr, context: dict[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, context) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        return -node.operand.value if isinstance(node.op, ast.USub) else not _eval(node.operand, context)
    if isinstance(node, ast.Name) and node.id in _LITERALS:
        return _LITERALS[node.id]
    if isinstance(node, ast.Compare):
        left = _eval(node.left, context)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, context)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:  # e.g. None < 5: a missing value never satisfies an ordering
                return False
            left = right
        return True
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, context) for e in node.elts]
    if isinstance(node, ast.Constant):
        return node.value
    value: Any = context
    for part in _name_path(node) or ():
        value = value.get(part) if isinstance(value, dict) else None
    return value
