"""The Molecule way in: every role scenario under molecule/ passes `molecule test`.

Each scenario boots its own test-bed host (create), converges, checks idempotence (0 changed),
verifies with testinfra and destroys the host. Scenarios whose platform says
``image: faceswap-installed`` boot on this run's "Faceswap installed" layer (tests/hostimage.py),
handed to Molecule as ``$FSOCI_TESTBED_LAYER``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.testbed.fixtures import unavailable

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(
    p.parent.name
    for p in (ROOT / "molecule").glob("*/molecule.yml")
    if not p.parent.name.startswith("_")
)


def _on_the_image(scenario: str) -> bool:
    config = yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text())
    return any(p.get("image") == "faceswap-installed" for p in config.get("platforms", []))


@pytest.mark.testbed
@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(s, marks=[pytest.mark.installed_image, pytest.mark.faceswap])
        if _on_the_image(s)
        else s
        for s in SCENARIOS
    ],
)
def test_molecule_scenario(scenario: str, testbed: object, request: pytest.FixtureRequest) -> None:
    del testbed  # the fixture checks (once) that hosts can run here
    bindir = str(Path(sys.executable).parent)
    if shutil.which("molecule", path=bindir) is None:
        unavailable(f"molecule is not installed next to {sys.executable}")
    env = dict(os.environ, PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]))
    env.pop("ANSIBLE_CONFIG", None)
    if _on_the_image(scenario):
        env["FSOCI_TESTBED_LAYER"] = request.getfixturevalue("faceswap_image").layer
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
