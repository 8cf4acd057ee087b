"""src/chronik_perf/_core.pyi describes the built module: every public name of chronik_perf._core, and every public
member of its classes, appears in the stub, and the stub names nothing the module lacks."""
import ast
import inspect
from pathlib import Path

import chronik_perf
from chronik_perf import _core

STUB = Path(chronik_perf.__file__).with_name("_core.pyi")


def public_names(namespace) -> set[str]:
    """Names of the module's own public objects (not modules or functions it imported)."""
    names = set()
    for name, value in vars(namespace).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if getattr(value, "__module__", _core.__name__) != _core.__name__:
            continue
        names.add(name)
    return names


def stub_names(body) -> dict[str, ast.AST]:
    out = {}
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def test_every_public_name_of_the_core_is_in_the_stub():
    stub = stub_names(ast.parse(STUB.read_text()).body)
    module = public_names(_core)
    assert len(module) >= 40
    assert sorted(module - set(stub)) == []
    assert sorted(name for name in stub if not name.startswith("_")) == sorted(module)


def test_every_public_member_of_the_core_classes_is_in_the_stub():
    stub = stub_names(ast.parse(STUB.read_text()).body)
    missing = {}
    for name in public_names(_core):
        cls = getattr(_core, name)
        if not isinstance(cls, type) or issubclass(cls, Exception):
            continue
        members = set()
        for klass in cls.__mro__:
            if klass.__module__ == _core.__name__:
                members |= {m for m in vars(klass) if not m.startswith("_")}
                members |= {m for m in ("__len__", "__enter__", "__exit__") if m in vars(klass)}
        declared = set()
        node = stub[name]
        while node is not None:
            declared |= set(stub_names(node.body))
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            node = stub.get(bases[0]) if bases else None
        if members - declared:
            missing[name] = sorted(members - declared)
    assert missing == {}
