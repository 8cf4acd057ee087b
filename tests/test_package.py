"""The package refuses to import without its native core and says how to build it."""
import shutil
import subprocess
import sys
from pathlib import Path

import chronik_perf
from chronik_perf import _core


def test_compiled_core_is_what_runs():
    assert Path(_core.__file__).suffix in (".so", ".pyd")


def test_import_without_built_core_explains(tmp_path):
    pkg = Path(chronik_perf.__file__).parent
    copy = tmp_path / "chronik_perf"
    copy.mkdir()
    for py in pkg.glob("*.py"):
        shutil.copy(py, copy / py.name)
    result = subprocess.run([sys.executable, "-c", "import chronik_perf"], cwd=tmp_path,
                            capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode != 0
    assert "native core" in result.stderr and "pip install -e ." in result.stderr
