"""A full disk is an OSError, never SIGBUS: index files are written through a shared mapping, so their blocks are
allocated before they are mapped. Run on a 1 MiB tmpfs in a private mount namespace (unshare)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from conftest import fail_or_skip

FILL_INDEX = """
import errno, os, sys
from chronik_perf.index import OffsetIndex
path = os.path.join(sys.argv[1], "00000000000000000000.index")
try:
    index = OffsetIndex(path, 0, writable=True, max_index_size=4 << 20)   # 4 MiB on a 1 MiB disk
    for i in range(index.max_entries):
        index.append(i, i)
    print("no error")
except OSError as exc:
    print("OSError", errno.errorcode[exc.errno])
"""

FILL_SEGMENT = """
import errno, sys
from chronik_perf.records import build_batch
from chronik_perf.storage import LogSegment
try:
    segment = LogSegment(sys.argv[1], 0, create=True, max_index_size=64 << 10)
    batch = build_batch([bytes(1000)] * 100)
    while True:
        segment.append(batch)
except OSError as exc:
    print("OSError", errno.errorcode[exc.errno])
"""


def on_small_tmpfs(code):
    """Run Python `code` with argv[1] a directory on a fresh 1 MiB tmpfs (own mount namespace); the finished run."""
    unshare = shutil.which("unshare")
    if unshare is None:
        fail_or_skip("unshare (util-linux) is needed to mount a small tmpfs")
    userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    with tempfile.TemporaryDirectory() as mnt:
        script = 'mount -t tmpfs -o size=1m tmpfs "$1" && echo mounted >&2 && exec "$2" -c "$3" "$1"'
        run = subprocess.run([unshare, *userns, "--mount", "sh", "-c", script, "sh", mnt, sys.executable, code],
                             capture_output=True, text=True, timeout=120)
    if "mounted" not in run.stderr:
        fail_or_skip(f"cannot mount a tmpfs in a private mount namespace: {run.stderr.strip()}")
    return run


def test_index_on_a_full_disk_is_an_oserror_not_sigbus():
    run = on_small_tmpfs(FILL_INDEX)
    assert run.returncode != -signal.SIGBUS, "SIGBUS writing an index on a full disk"
    assert run.returncode == 0 and run.stdout.strip() == "OSError ENOSPC", run.stdout + run.stderr


def test_segment_on_a_full_disk_is_an_oserror_not_sigbus():
    run = on_small_tmpfs(FILL_SEGMENT)
    assert run.returncode == 0 and run.stdout.strip() == "OSError ENOSPC", run.stdout + run.stderr
