"""Whether PGV finds anything wrong in a message, running only the parts of PGV's generated
validator that read the fields the message has set.

PGV's function for a type is a list of statements, each reading a few fields of `p` (a
oneof's statements share a `present` flag: they are one part). A part that reads only unset
fields (not in `ListFields`) reads the values an empty message of the type has, so its
errors are those it gives on the empty message, found once per type. For a message, the
parts of its set fields run; any other part with errors on the empty message (a required
field missing) is an error. A route's RouteAction reads ~40 fields and has 3 set. Only
whether there is an error counts here: `pgv.check` reports them (with PGV's full
function). A type whose function does anything else with `p`, or returns early, or whose
parts fail on the empty message, is checked with the full function."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from protoc_gen_validate import validator

from . import pgv_codegen

Validator = Callable[[Message], list[str]]

_QUICK: dict[Descriptor, Validator] = {}


def quick_errors(msg: Message) -> list[str]:
    """Empty when PGV finds nothing wrong in `msg` and under it, else some of the errors
    (or a placeholder); raises when PGV's code fails."""
    descriptor = msg.DESCRIPTOR
    quick = _QUICK.get(descriptor)
    if quick is None:
        quick = _QUICK[descriptor] = _plan(msg)
    return quick(msg)


Plan = tuple[dict[FieldDescriptor, tuple[Validator, ...]], tuple[Validator, ...]]
"""A type's parts by the field they read, and those with errors on an empty message."""

_LOCAL: dict[Descriptor, Plan | None] = {}


def local_plan(msg: Message, walked: frozenset[FieldDescriptor]) -> Plan | None:
    """The parts of `msg`'s type for a walk that itself visits the messages of the
    `walked` fields (their checks left out of the parts: `_validate_all` of one of them
    answers []; every other message inside is checked as `quick_errors` checks it). None
    when the type's function cannot be split: the walk runs `full_errors` then."""
    descriptor = msg.DESCRIPTOR
    if descriptor not in _LOCAL:
        _LOCAL[descriptor] = _parts_plan(msg, walked)
    return _LOCAL[descriptor]


def full_errors(msg: Message) -> list[str]:
    """PGV's whole function's errors for `msg` and everything under it
    (`pgv._validate_all`, installed as PGV's `_validate_all`)."""
    errors: list[str] = validator._validate_all(msg)
    return errors


def _plan(msg: Message) -> Validator:
    plan = _parts_plan(msg, frozenset())
    return full_errors if plan is None else _runner(plan)


def _nothing(_: Message) -> list[str]:
    return []


def _parts_plan(msg: Message, walked: frozenset[FieldDescriptor]) -> Plan | None:
    descriptor = msg.DESCRIPTOR
    try:
        function = ast.parse(pgv_codegen.pgv_source(msg)).body[0]
    except Exception:  # PGV's own function fails (or not) as it would
        return None
    if not isinstance(function, ast.FunctionDef):
        return None
    body = function.body
    if not (_is_err_init(body[0]) and _is_return_err(body[-1])):
        return None
    statements = body[1:-1]
    if any(isinstance(node, ast.Return) for s in statements for node in ast.walk(s)):
        return None
    parts = _parts(statements)
    reads = [_fields_read(part, descriptor) for part in parts]
    if any(r is None for r in reads):
        return None
    functions = [_function(f"_part{i}", part) for i, part in enumerate(parts)]
    if walked:
        functions = [_LeaveWalked(descriptor, walked).visit(f) for f in functions]
    closure = {"_validate_all": quick_errors, "_walked": _nothing}
    made = pgv_codegen.define(descriptor, functions, closure)
    empty = type(msg)()
    try:
        failing = tuple(part for part in made if part(empty))
    except Exception:
        return None
    by_field: dict[FieldDescriptor, tuple[Validator, ...]] = {}
    for part, fields in zip(made, reads, strict=True):
        for fd in dict.fromkeys(fields or ()):  # once per field it reads
            by_field[fd] = (*by_field.get(fd, ()), part)
    return by_field, failing


class _LeaveWalked(ast.NodeTransformer):
    """`_validate_all(x)` becomes `_walked(x)` where `x` is a message of a `walked` field:
    `p.f`, `p.f[key]`, or `item` of `for item in p.f`."""

    def __init__(self, descriptor: Descriptor, walked: frozenset[FieldDescriptor]) -> None:
        self.fields = descriptor.fields_by_name
        self.walked = walked
        self.loops: list[tuple[str, str]] = []  # (loop variable, field), innermost last

    def visit_For(self, node: ast.For) -> ast.AST:
        field = _field_of(node.iter)
        target = node.target
        loop = (target.id, field) if isinstance(target, ast.Name) and field is not None else None
        if loop is not None:
            self.loops.append(loop)
        self.generic_visit(node)
        if loop is not None:
            self.loops.pop()
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if not (
            isinstance(node.func, ast.Name)
            and node.func.id == "_validate_all"
            and len(node.args) == 1
            and not node.keywords
        ):
            return node
        arg = node.args[0]
        field = _field_of(arg.value if isinstance(arg, ast.Subscript) else arg)
        if field is None and isinstance(arg, ast.Name):
            field = next((f for name, f in reversed(self.loops) if name == arg.id), None)
        fd = self.fields.get(field) if field is not None else None
        if fd is not None and fd in self.walked:
            node.func = ast.Name(id="_walked", ctx=ast.Load())
        return node


def _field_of(node: ast.expr) -> str | None:
    """`f` for `p.f`."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr if node.value.id == "p" else None
    return None


def _runner(plan: Plan) -> Validator:
    def quick(msg: Message) -> list[str]:
        return plan_errors(plan, msg, msg.ListFields())

    return quick


def plan_errors(plan: Plan, msg: Message, fields: list[tuple[FieldDescriptor, Any]]) -> list[str]:
    """Some of PGV's errors in `msg` (whose `ListFields` are `fields`) by the parts of
    `plan` for its set fields, or a placeholder when a required part's field is not set;
    empty when there are none."""
    by_field, required = plan
    run: list[Validator] = []
    for fd, _ in fields:
        parts = by_field.get(fd)
        if parts is not None:
            run += parts
    for part in required:
        if part not in run:
            return ["a required part is missing"]
    for part in run:  # a part twice (two of its fields set) gives the same answer
        err = part(msg)
        if err:
            return err
    return []


def _assigned(node: ast.stmt, name: str) -> ast.expr | None:
    """The value of `node` when it is `name = value`."""
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == name
    ):
        return node.value
    return None


def _is_err_init(node: ast.stmt) -> bool:
    """`err = []`: where PGV's function starts."""
    value = _assigned(node, "err")
    return isinstance(value, ast.List) and not value.elts


def _is_return_err(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Return) and isinstance(node.value, ast.Name) and node.value.id == "err"
    )


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _parts(statements: list[ast.stmt]) -> list[list[ast.stmt]]:
    """The statements in parts: each alone, but a oneof's (from its `present = False` on,
    the consecutive ones using `present`) together."""
    parts: list[list[ast.stmt]] = []
    shared = False
    for statement in statements:
        present = _mentions(statement, "present")
        if present and shared and not _is_present_reset(statement):
            parts[-1].append(statement)
        else:
            parts.append([statement])
        shared = present
    return parts


def _is_present_reset(node: ast.stmt) -> bool:
    """`present = False`: where PGV's code for a oneof starts."""
    value = _assigned(node, "present")
    return isinstance(value, ast.Constant) and value.value is False


def _fields_read(part: list[ast.stmt], descriptor: Descriptor) -> list[FieldDescriptor] | None:
    """The fields `part` reads (`p.name`, `_has_field(p, "name")`); None when it uses `p`
    otherwise."""
    fields: list[FieldDescriptor] = []
    uses = 0
    for statement in part:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and node.id == "p":
                uses += 1
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "p"
            ):
                fd = descriptor.fields_by_name.get(node.attr)
                if fd is None:
                    return None
                fields.append(fd)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_has_field"
            ):
                args = node.args
                if not (
                    len(args) == 2
                    and isinstance(args[0], ast.Name)
                    and args[0].id == "p"
                    and isinstance(args[1], ast.Constant)
                    and isinstance(args[1].value, str)
                ):
                    return None
                fd = descriptor.fields_by_name.get(args[1].value)
                if fd is None:
                    return None
                fields.append(fd)
    if uses != len(fields):  # every `p` is one of the two reads
        return None
    return fields


def _function(name: str, part: list[ast.stmt]) -> ast.FunctionDef:
    """`def name(p): err = []; <part>; return err`."""
    init = ast.Assign(
        targets=[ast.Name(id="err", ctx=ast.Store())], value=ast.List(elts=[], ctx=ast.Load())
    )
    done = ast.Return(value=ast.Name(id="err", ctx=ast.Load()))
    args: Any = ast.arguments(
        posonlyargs=[], args=[ast.arg(arg="p")], kwonlyargs=[], kw_defaults=[], defaults=[]
    )
    return ast.FunctionDef(name=name, args=args, body=[init, *part, done], decorator_list=[])
