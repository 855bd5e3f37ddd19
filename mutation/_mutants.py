"""A small AST mutator: every mutation point of a file, keyed by what survives code moving around.

Operators (the classic set, small on purpose): comparison flips (``==``/``!=``, ``<``/``<=``, ``>``/``>=``,
``in``/``not in``, ``is``/``is not``), ``and``/``or``, dropping ``not``, arithmetic swaps (``+``/``-``,
``*``/``/``, ``//`` → ``*``), constants (a number + 1, ``True``/``False``, a string or bytes with ``XX``
appended), ``return x`` → ``return None``, and a call statement → ``pass``. Docstrings, annotations,
f-strings, ``__all__`` and logging calls are never mutated.

A mutant is applied as a text edit of the node's own source segment (the rest of the file stays byte for
byte), so its diff is the one line or two that changed.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Mutant", "apply", "diff", "enumerate_mutants"]

_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
}


@dataclass(frozen=True, slots=True, order=True)
class Mutant:
    """One mutation: where (file, enclosing function, position) and what (original → mutated source)."""

    file: str
    function: str
    line: int
    col: int
    end_line: int
    end_col: int
    operator: str
    original: str
    mutated: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies the mutant across line shifts (equivalent.toml and the CI baseline use it)."""
        return (self.file, self.function, self.original, self.mutated)

    @property
    def label(self) -> str:
        return f"{self.file}:{self.line} {self.function}: {self.original!r} -> {self.mutated!r}"


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _is_logging(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("logger", "logging")
    )


class _Finder(ast.NodeVisitor):
    def __init__(self, file: str, source: str, excluded: frozenset[str]) -> None:
        self.file, self.source, self.excluded = file, source, excluded
        self.scope: list[str] = []
        self.found: list[Mutant] = []
        self.skip: set[int] = set()

    # -- scopes and what is never mutated --------------------------------------------------------------

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        name = ".".join(self.scope)
        if name not in self.excluded:
            for decorator in node.decorator_list:
                self.visit(decorator)
            if not isinstance(node, ast.ClassDef):
                for default in [*node.args.defaults, *node.args.kw_defaults]:
                    if default is not None:
                        self.visit(default)
            for statement in node.body:
                self.visit(statement)
        self.scope.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _scoped

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:  # noqa: ARG002
        return  # f-strings: messages, and segment edits inside them are fragile

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        self.generic_visit(node)

    # -- mutation points ----------------------------------------------------------------------------------

    def _add(self, node: ast.expr | ast.stmt, operator: str, replacement: str, *, statement: bool = False) -> None:
        original = ast.get_source_segment(self.source, node)
        if original is None:
            return
        assert node.end_lineno is not None
        assert node.end_col_offset is not None
        self.found.append(
            Mutant(
                file=self.file,
                function=".".join(self.scope) or "<module>",
                line=node.lineno,
                col=node.col_offset,
                end_line=node.end_lineno,
                end_col=node.end_col_offset,
                operator=operator,
                original=original,
                mutated=replacement if statement else f"({replacement})",
            )
        )

    def visit_Compare(self, node: ast.Compare) -> None:
        for index, op in enumerate(node.ops):
            swap = _COMPARE_SWAPS.get(type(op))
            if swap is not None:
                ops = list(node.ops)
                ops[index] = swap()
                self._add(node, "compare", ast.unparse(ast.Compare(node.left, ops, node.comparators)))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, "boolean", ast.unparse(ast.BoolOp(other, node.values)))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self._add(node, "not", ast.unparse(node.operand))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = _BINOP_SWAPS.get(type(node.op))
        # `%` on a string is formatting, `+` on strings is concatenation: both stay arithmetic swaps here.
        if swap is not None:
            self._add(node, "arithmetic", ast.unparse(ast.BinOp(node.left, swap(), node.right)))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if id(node) in self.skip:
            return
        value = node.value
        if isinstance(value, bool):
            self._add(node, "constant", repr(not value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._add(node, "constant", repr(value + 1))
        elif isinstance(value, str) and value:
            self._add(node, "constant", repr(value + "XX"))
        elif isinstance(value, bytes) and value:
            self._add(node, "constant", repr(value + b"XX"))

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            self._add(node, "return", "return None", statement=True)
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Call) and _is_logging(node.value):
            return
        if isinstance(node.value, ast.Call | ast.Await):
            self._add(node, "statement", "pass", statement=True)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_logging(node):
            return
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:  # noqa: ARG002
        return  # annotations (not evaluated: `from __future__ import annotations`)


def enumerate_mutants(root: Path, file: str, excluded: frozenset[str] = frozenset()) -> list[Mutant]:
    """Every mutation point of ``root / file``, in source order (excluded functions left out)."""
    source = (root / file).read_text(encoding="utf-8")
    tree = ast.parse(source)
    finder = _Finder(file, source, excluded)
    finder.skip = _docstring_nodes(tree)
    finder.visit(tree)
    return finder.found


def _offset(lines: list[str], line: int, col: int) -> int:
    """Character offset of (1-based line, UTF-8 byte column) in the joined source."""
    before = sum(len(text) for text in lines[: line - 1])
    return before + len(lines[line - 1].encode("utf-8")[:col].decode("utf-8"))


def apply(source: str, mutant: Mutant) -> str:
    """``source`` with ``mutant`` applied (only its own segment changes)."""
    lines = source.splitlines(keepends=True)
    start, end = _offset(lines, mutant.line, mutant.col), _offset(lines, mutant.end_line, mutant.end_col)
    if source[start:end] != mutant.original:
        raise ValueError(f"the source moved under {mutant.label}")
    return source[:start] + mutant.mutated + source[end:]


def diff(source: str, mutant: Mutant) -> str:
    """The unified diff a mutant makes (one line of context)."""
    mutated = apply(source, mutant)
    return "".join(
        difflib.unified_diff(
            source.splitlines(keepends=True),
            mutated.splitlines(keepends=True),
            fromfile=f"a/{mutant.file}",
            tofile=f"b/{mutant.file}",
            n=1,
        )
    )


def iter_all(root: Path, files: list[str], excluded: frozenset[str]) -> Iterator[Mutant]:
    """Every mutant of every configured file."""
    for file in files:
        yield from enumerate_mutants(root, file, excluded)
