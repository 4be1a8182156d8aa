"""ansible-test sanity (validate-modules, ansible-doc, compile, import, no-assert, yamllint) over
every plugin of the collection, in a copy laid out as ansible_collections/faceswap_oci/core.

ansible-test makes a virtual environment per sanity test and bootstraps pip into it from a
download this machine cannot reach; ``tests/oci/sanity_get_pip.py`` is put where ansible-test
looks for that download first (its cache), so pip and the tests' requirements come from the
package index. Its HOME (venvs and that cache) is a folder of its own under /var/tmp, kept
between runs so a re-run does not reinstall the requirements.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ["validate-modules", "ansible-doc", "compile", "import", "no-assert", "yamllint"]
HOME = Path("/var/tmp/faceswap-oci-ansible-test")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _bootstrap_cache() -> Path:
    from ansible_test._internal.python_requirements import get_venv_packages

    pip = get_venv_packages(SimpleNamespace(version="3.11"))["pip"]
    cache = HOME / ".ansible" / "test" / "cache" / f"get_pip_{pip.replace('.', '_')}.py"
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).with_name("sanity_get_pip.py"), cache)
    return cache


def test_ansible_test_sanity(tmp_path: Path) -> None:
    coll = tmp_path / "ansible_collections" / "faceswap_oci" / "core"
    coll.mkdir(parents=True)
    shutil.copy(ROOT / "galaxy.yml", coll)
    shutil.copytree(ROOT / "meta", coll / "meta")
    shutil.copytree(
        ROOT / "plugins", coll / "plugins", ignore=shutil.ignore_patterns("__pycache__")
    )
    _bootstrap_cache()
    args = [str(Path(sys.executable).parent / "ansible-test"), "sanity", "--python", "3.11"]
    args.append("--local")
    for name in TESTS:
        args += ["--test", name]
    env = {"HOME": str(HOME), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    proc = subprocess.run(
        args, cwd=coll, capture_output=True, text=True, timeout=1400, check=False, env=env
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    for name in TESTS:
        assert f'Running sanity test "{name}"' in out
