"""The native core's layout: each part of src/chronik_perf/native cimports and imports every outside name it uses
(include order is no contract), and C declarations live in native/includes/*.pxd, one name per C function."""
import re
from pathlib import Path

NATIVE = Path(__file__).resolve().parents[1] / "src" / "chronik_perf" / "native"
PARTS = sorted(NATIVE.glob("*.pxi"))
DECLARATIONS = sorted((NATIVE / "includes").glob("*.pxd"))

_STRINGS = re.compile(r'[rbfu]*("""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\')')
_COMMENT = re.compile(r"#[^\n]*")
_NAME = re.compile(r"(?<![.\w])[A-Za-z_]\w*")


def code_of(path: Path) -> str:
    """The file without string literals and comments."""
    return _COMMENT.sub("", _STRINGS.sub('""', path.read_text()))


def imported_names(code: str) -> set[str]:
    """Names bound by the file's (c)import statements."""
    names = set()
    for names_text in re.findall(r"^from\s+\S+\s+c?import\s+(\([^)]*\)|[^\n]+)", code, re.M):
        for item in names_text.strip("()").replace("\n", " ").split(","):
            parts = item.split()
            if parts:
                names.add(parts[-1])
    for module, alias in re.findall(r"^c?import\s+([\w.]+)(?:\s+as\s+(\w+))?", code, re.M):
        names.add(alias or module.split(".")[0])
    return names


def declared_names(code: str) -> set[str]:
    """Names a .pxd declares: functions, variables (and struct members), structs, enum members."""
    names = set(re.findall(r"^\s*(?:cdef\s+(?:inline\s+)?)?[\w\s*]*?\b(\w+)\s*(?:\"\")?\s*\(", code, re.M))
    names |= set(re.findall(r"^[ \t]+[\w*]+(?:[ \t]+[\w*]+)*[ \t]+\**(\w+)[ \t]*$", code, re.M))
    names |= set(re.findall(r"(?:ctypedef struct|cdef struct|cdef enum)\s+(\w+)", code))
    return names | set(re.findall(r"^\s+([A-Z_][A-Z0-9_]*)\b\s*(?:=|\"\"|$)", code, re.M))


def used_names(path: Path) -> set[str]:
    """Names the file uses, less those a .pxd declares itself."""
    code = code_of(path)
    body = re.sub(r"^(from\s+\S+\s+c?import\s+(\([^)]*\)|[^\n]+)|c?import\s+[^\n]+)", "", code, flags=re.M)
    return set(_NAME.findall(body)) - (declared_names(body) if path.suffix == ".pxd" else set())


def test_the_layout_has_parts_and_declarations():
    assert len(PARTS) >= 15 and len(DECLARATIONS) >= 5
    core = (NATIVE.parent / "_core.pyx").read_text()
    included = re.findall(r'^include "native/(\w+\.pxi)"', core, re.M)
    assert sorted(included) == sorted(p.name for p in PARTS), "every part is included exactly once"


def test_every_part_imports_the_outside_names_it_uses_and_no_others():
    files = PARTS + DECLARATIONS
    universe = set()
    imports = {}
    for path in files:
        imports[path] = imported_names(code_of(path))
        universe |= imports[path]
    universe.discard("cython")  # the compiler's own module, always known
    missing = {path.name: sorted((used_names(path) & universe) - imports[path]) for path in files}
    assert {name: names for name, names in missing.items() if names} == {}
    unused = {path.name: sorted(imports[path] - used_names(path) - {"cython"}) for path in PARTS}
    assert {name: names for name, names in unused.items() if names} == {}


def test_c_declarations_live_in_includes_one_name_per_function():
    for path in PARTS:
        assert 'cdef extern from "' not in path.read_text(), f"{path.name} declares C functions itself"
    cnames = {}
    for path in DECLARATIONS:
        for name, cname in re.findall(r'(\w+)\s+"(\w+)"\s*\(', path.read_text()):
            cnames.setdefault(cname, set()).add(name)
    assert {cname: names for cname, names in cnames.items() if len(names) > 1} == {}


# CPython's object layouts and the calls that only make sense with them: one part reviews them all.
INTERNALS = {"PyDictObject", "PyMemberDescrObject", "PyLongObject", "PyType_GenericAlloc", "PyObject_GC_UnTrack",
             "PyObject_GC_Track", "_PyLong_AsByteArray", "_PyLong_FromByteArray"}


def test_cpython_layout_tricks_live_in_one_part():
    assert {path.name: sorted(used_names(path) & INTERNALS) for path in PARTS if used_names(path) & INTERNALS} == {
        "cpython_internals.pxi": sorted(INTERNALS)}
