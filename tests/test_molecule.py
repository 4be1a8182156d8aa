"""The Molecule way in: every role scenario under molecule/ passes `molecule test`.

Each scenario boots its own test-bed host (create), converges, checks idempotence (0 changed),
verifies with testinfra and destroys the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testbed.fixtures import unavailable

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(
    p.parent.name
    for p in (ROOT / "molecule").glob("*/molecule.yml")
    if not p.parent.name.startswith("_")
)


@pytest.mark.testbed
@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, testbed: object) -> None:
    del testbed  # the fixture checks (once) that hosts can run here
    bindir = str(Path(sys.executable).parent)
    if shutil.which("molecule", path=bindir) is None:
        unavailable(f"molecule is not installed next to {sys.executable}")
    env = dict(os.environ, PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]))
    env.pop("ANSIBLE_CONFIG", None)
    proc = subprocess.run(
        [f"{bindir}/molecule", "test", "-s", scenario],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        stdin=subprocess.DEVNULL,
    )
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"molecule test -s {scenario} failed:\n{tail}"
    assert "idempotence" in proc.stdout + proc.stderr
