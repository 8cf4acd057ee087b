"""The docs: the MkDocs site builds with --strict (no broken link, no page left out), the API reference is
generated from the docstrings, and the README stays short with the two commands first and working links."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fail_or_skip

ROOT = Path(__file__).resolve().parents[1]
TWO_COMMANDS = [
    "pip install -e . && python -m chronik_perf.e2e --quick",
    "pip install -e '.[test]' && python -m pytest",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built by `mkdocs build --strict` (a warning fails the build)."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        fail_or_skip("mkdocs is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_site_builds_strict_with_every_page(site):
    nav_pages = re.findall(r":\s*([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert len(nav_pages) > 20
    for page in nav_pages:
        built = site / (page[:-3] + "/index.html" if not page.endswith("index.md") else page[:-3] + ".html")
        assert built.exists(), page


def test_api_reference_comes_from_docstrings(site):
    records = (site / "reference" / "records" / "index.html").read_text()
    assert "parse_batches" in records and "build_batch" in records
    client = (site / "reference" / "client" / "index.html").read_text()
    assert "produce_many" in client


def test_readme_short_with_the_two_commands_first():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 200
    first_code = text.index("```")
    block = text[first_code:text.index("```", first_code + 3)]
    for command in TWO_COMMANDS:
        assert command in block
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text()


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)\)", text)
    local = [link for link in links if "://" not in link]
    assert local
    for link in local:
        assert (ROOT / link).exists(), link
