"""PGV's generated validator of a message type (`_validate_all_inner`'s function), built from
the very source PGV generates with two rewrites that keep every result and error text:
`_has_field(p, "x")` becomes `p.HasField("x")` for a field with presence (PGV's helper calls
exactly that) and `True` for one without (PGV's helper catches the `ValueError` that
`HasField` raises for it and answers that the field exists); `re.search(PATTERN, value)`
with a constant pattern uses the pattern compiled once. A route config's PGV check calls
`_has_field` ~50 times per virtual host: a Python call and a `try` each."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from protoc_gen_validate import validator

Validator = Callable[[Message], list[str]]

# PGV's own rewrites of its `validate` function into `validate_all`, in its order
# (`validator._validate_all_inner`).
_PGV_STEPS = (
    "ChangeFuncName",
    "InitErr",
    "ReturnErr",
    "ChangeInnerCall",
    "ChangeRaise",
    "ChangeEmbedded",
    "ChangeExpr",
)


@contextmanager
def _generating() -> Iterator[None]:
    """Around PGV's generation of a type's function: PGV 1.3.3 reads FieldDescriptor.label,
    deprecated by protobuf 6, while it generates one (never when it runs it): not ours to
    fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"label\(\) is deprecated", DeprecationWarning)
        yield


def pgv_source(msg: Message) -> str:
    """The source of PGV's `generate_validate_all` for `msg`'s type, as PGV builds it."""
    with _generating():
        template = validator.file_template(validator.ValidatingMessage(msg))
    func_ast: Any = ast.parse(template)
    for step in _PGV_STEPS:
        func_ast = ast.fix_missing_locations(getattr(validator, step)().visit(func_ast))
    source: str = validator.unparse(ast.fix_missing_locations(func_ast))
    return source


class _Rewrite(ast.NodeTransformer):
    """The two rewrites, for the type `descriptor`; `patterns` collects the compiled ones."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self.patterns: list[re.Pattern[Any]] = []

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func, args = node.func, node.args
        if node.keywords or len(args) != 2:
            return node
        if (
            isinstance(func, ast.Name)
            and func.id == "_has_field"
            and isinstance(args[0], ast.Name)
            and args[0].id == "p"
        ):
            return self._has_field(node, args[1])
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "search"
            and isinstance(func.value, ast.Name)
            and func.value.id == "re"
            and isinstance(args[0], ast.Constant)
            and isinstance(args[0].value, (str, bytes))
        ):
            self.patterns.append(re.compile(args[0].value))
            pattern = ast.Name(id=f"_pattern{len(self.patterns) - 1}", ctx=ast.Load())
            search = ast.Attribute(value=pattern, attr="search", ctx=ast.Load())
            return ast.Call(func=search, args=[args[1]], keywords=[])
        return node

    def _has_field(self, node: ast.Call, name: ast.expr) -> ast.AST:
        if not isinstance(name, ast.Constant) or not isinstance(name.value, str):
            return node
        fd = self.descriptor.fields_by_name.get(name.value)
        if fd is None:
            return node
        if fd.has_presence and not fd.is_repeated:
            has = ast.Attribute(
                value=ast.Name(id="p", ctx=ast.Load()), attr="HasField", ctx=ast.Load()
            )
            return ast.Call(func=has, args=[name], keywords=[])
        return ast.Constant(value=True)


def generate(msg: Message) -> Validator:
    """The validator of `msg`'s type: PGV's source rewritten, defined in PGV's module
    namespace (the names its code uses, and `_validate_all` for the messages inside) with
    the compiled patterns as closure variables. Should PGV's source not be had or the
    rewrite fail (another PGV version), PGV's own function (which fails as it would)."""
    try:
        return _rewritten(msg.DESCRIPTOR, pgv_source(msg))
    except Exception:
        with _generating():
            pgv_own: Validator = validator._validate_all_inner(validator.ValidatingMessage(msg))
        return pgv_own


def _rewritten(descriptor: Descriptor, source: str) -> Validator:
    (made,) = define(descriptor, ast.parse(source).body, {})
    return made


def define(
    descriptor: Descriptor, functions: Sequence[ast.stmt], closure: dict[str, Any]
) -> list[Validator]:
    """`functions` (definitions from PGV's source for type `descriptor`) rewritten and
    defined in PGV's module namespace, with the compiled patterns and `closure` (name:
    value) as closure variables."""
    rewrite = _Rewrite(descriptor)
    functions = [rewrite.visit(function) for function in functions]
    values = {**closure, **{f"_pattern{i}": p for i, p in enumerate(rewrite.patterns)}}
    names = [function.name for function in functions if isinstance(function, ast.FunctionDef)]
    maker = ast.FunctionDef(
        name="_make",
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=n) for n in values],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=[
            *functions,
            ast.Return(
                value=ast.List(elts=[ast.Name(id=n, ctx=ast.Load()) for n in names], ctx=ast.Load())
            ),
        ],
        decorator_list=[],
    )
    module = ast.fix_missing_locations(ast.Module(body=[maker], type_ignores=[]))
    local_vars: dict[str, Any] = {}
    exec(compile(module, f"<pgv {descriptor.full_name}>", "exec"), vars(validator), local_vars)
    made: list[Validator] = local_vars["_make"](*values.values())
    return made
