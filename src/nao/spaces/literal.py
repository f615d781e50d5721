"""Reading Genotype-like Python literals safely (``ast``, never ``eval``): shared by the
conv-cell and recurrent-cell spaces.

>>> import ast
>>> literal(ast.parse("[('sep_conv_3x3', 0), (skip_connect, -1)]", mode="eval").body)
[['sep_conv_3x3', 0], ['skip_connect', -1]]
>>> literal(ast.parse("range(2, 6)", mode="eval").body)
[2, 3, 4, 5]
"""

from __future__ import annotations

import ast
from typing import Any

from nao.errors import ParseError

# Concat lists are short: never materialise a larger range from user input.
MAX_RANGE = 256


def call_name(call: ast.Call) -> str | None:
    """The called name of ``Genotype(...)`` or ``genotypes.Genotype(...)``; None otherwise."""
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):  # genotypes.Genotype(...)
        return f.attr
    return None


def literal(node: ast.AST) -> Any:
    """A str/int/list for a literal-like AST node; ParseError (with column) for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        v = node.operand.value
        if isinstance(v, int) and not isinstance(v, bool):
            return -v
    if isinstance(node, ast.Name):  # an unquoted op name such as (sep_conv_3x3, 0)
        return node.id
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal(e) for e in node.elts]
    if isinstance(node, ast.Call) and call_name(node) == "range" and not node.keywords and 1 <= len(node.args) <= 2:
        bounds = [literal(a) for a in node.args]
        if all(isinstance(b, int) for b in bounds):
            r = range(*bounds)
            if len(r) <= MAX_RANGE:
                return list(r)
    col = getattr(node, "col_offset", "?")
    raise ParseError(
        f"cannot read {type(node).__name__} at column {col} of the genotype: only names, numbers, lists and range() are allowed"
    )
