"""The CI skip policy (tests/ci_policy.py): on CI a skip fails unless its reason is allowed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CASES = """
import pytest

def test_plain_skip():
    pytest.skip("no reason worth a pass")

def test_gpu_skip():
    pytest.skip("needs an NVIDIA GPU (nvidia-smi found none)")

@pytest.fixture
def missing():
    pytest.skip("a fixture that cannot make its thing")

def test_fixture_skip(missing):
    pass

def test_passes():
    pass
"""


@pytest.mark.parametrize(
    ("ci", "summary"),
    [("", "1 passed, 3 skipped"), ("true", "1 failed, 1 passed, 1 skipped, 1 error")],
)
def test_skips_fail_on_ci_except_the_allowed_reasons(tmp_path: Path, ci: str, summary: str) -> None:
    (tmp_path / "test_cases.py").write_text(CASES)
    env = dict(os.environ, CI=ci, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.ci_policy",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout
    assert summary in out, out
    if ci:
        assert proc.returncode == 1
        assert "skipped on CI ('no reason worth a pass'): a skip is a failure here" in out
        assert "skipped on CI ('a fixture that cannot make its thing')" in out
        assert "allowed: 'needs an NVIDIA GPU'" in out
        assert "skipped: test_cases.py::test_gpu_skip: needs an NVIDIA GPU" in out
        assert "1 allowed skip(s)" in out
    else:
        assert proc.returncode == 0
        assert "skips allowed on CI" not in out
