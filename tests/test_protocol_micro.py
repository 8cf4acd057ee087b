"""The protocol ratios script stays runnable: its cases build byte-identical frames on both sides and every timed
function runs (no timing asserted here)."""
import importlib.util
import pathlib
import sys

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "micro" / "ratios_protocol.py"
sys.path.insert(0, str(SCRIPT.parent))  # its shared bodies (protocol_bodies.py), as when run as a script


def test_ratios_cases_run_and_agree():
    spec = importlib.util.spec_from_file_location("ratios_protocol", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = []
    floors = 0
    for name, ours, theirs, decode in module.cases():  # cases() asserts both sides encode the same bytes
        ours()
        theirs()
        if decode is not None:  # the floor builds exactly what our decoder returned
            assert module.floor_of(decode)() == module.plain(decode())
            floors += 1
        names.append(name)
    assert len(names) == 6 and floors == 4 and all("v12" in n or "v9" in n for n in names)
