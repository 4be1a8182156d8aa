"""ansible-test sanity (the tests that run offline) over the OCI modules, module_utils, doc
fragment and inventory plugin, and the upload's media_push action and sha256sums module, in a
copy laid out as ansible_collections/faceswap_oci/core."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ["validate-modules", "ansible-doc", "compile", "import", "no-assert", "yamllint"]


def test_ansible_test_sanity(tmp_path: Path) -> None:
    coll = tmp_path / "ansible_collections" / "faceswap_oci" / "core"
    (coll / "plugins").mkdir(parents=True)
    shutil.copy(ROOT / "galaxy.yml", coll)
    shutil.copytree(ROOT / "meta", coll / "meta")
    for sub, pattern in [
        ("modules", "oci_*.py"),
        ("module_utils", "oci_*.py"),
        ("doc_fragments", "oci.py"),
        ("inventory", "oci_job.py"),
        ("modules", "media_push.py"),
        ("modules", "sha256sums.py"),
        ("module_utils", "digests.py"),
        ("action", "media_push.py"),
    ]:
        (coll / "plugins" / sub).mkdir(exist_ok=True)
        for f in (ROOT / "plugins" / sub).glob(pattern):
            shutil.copy(f, coll / "plugins" / sub)
    args = [str(Path(sys.executable).parent / "ansible-test"), "sanity", "--python", "3.11"]
    for name in TESTS:
        args += ["--test", name]
    proc = subprocess.run(args, cwd=coll, capture_output=True, text=True, timeout=600, check=False)
    out = proc.stdout + proc.stderr
    if proc.returncode and ("does not have pip available" in out or "Download failed" in out):
        pytest.skip("ansible-test cannot bootstrap pip for its sanity venvs here (no network)")
    assert proc.returncode == 0, out[-5000:]
