"""The protocol ratios script stays runnable: its cases build byte-identical frames on both sides and every timed
function runs (no timing asserted here)."""
import importlib.util
import pathlib
import re
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
        if theirs is not None:  # None: no kafka-python peer (ConsumerGroupHeartbeat), timed against the floor only
            theirs()
        else:
            assert decode is not None
        if decode is not None:  # the floor builds exactly what our decoder returned
            assert module.floor_of(decode)() == module.plain(decode())
            floors += 1
        names.append(name)
    assert len(names) == 8 and floors == 6 and all(re.search(r" v\d+ ", n) for n in names)
    assert sum("heartbeat" in n for n in names) == 2
