"""The protocol ratios script stays runnable: its cases build byte-identical frames on both sides and every timed
function runs (no timing asserted here)."""
import importlib.util
import pathlib

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "micro" / "ratios_protocol.py"


def test_ratios_cases_run_and_agree():
    spec = importlib.util.spec_from_file_location("ratios_protocol", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = []
    for name, ours, theirs in module.cases():  # cases() asserts both sides encode the same bytes
        ours()
        theirs()
        names.append(name)
    assert len(names) == 6 and all("v12" in n or "v9" in n for n in names)
