"""The faceswap role on the `local` target: no become, the invoking user, the wheel set in place.

Installs the real Faceswap and its CPU requirements (about 5.6 GB) under a scratch root in
/var/tmp, checks an unchanged re-run changes nothing, that an unknown ini option is rejected
against Faceswap's own defaults, and removes the scratch root.
"""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceswap_oci import cache
from tests.faceswap.conftest import RoleRunner

pytestmark = [pytest.mark.faceswap, pytest.mark.slow]

PYTHON = "/usr/bin/python3"
LOCAL = {
    "all": {
        "hosts": {
            "local": {"ansible_connection": "local", "ansible_python_interpreter": PYTHON},
        }
    }
}


@pytest.fixture(scope="module")
def scratch_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    probe = subprocess.run(
        [PYTHON, "-c", "import tkinter, venv, ensurepip"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"{PYTHON} lacks tkinter or venv (install python3-tk python3-venv)")
    if shutil.disk_usage("/var/tmp").free < 12 * 2**30:
        pytest.skip("less than 12 GiB free in /var/tmp for a CPU install of Faceswap")
    root = Path("/var/tmp") / f"fsoci-local-test-{tmp_path_factory.getbasetemp().name}"
    yield root
    shutil.rmtree(root, ignore_errors=True)


def role_vars(root: Path, commit: str, wheels: cache.WheelSet, **more: object) -> dict[str, object]:
    return {
        "faceswap_root": str(root),
        "faceswap_user": getpass.getuser(),
        "faceswap_become": False,
        "faceswap_commit": commit,
        "faceswap_cache_dir": str(cache.cache_root()),
        "faceswap_wheel_dir": str(wheels.path),
        "faceswap_python": PYTHON,
        "faceswap_ini_dir": str(root / "jobs/demo/config"),
        "faceswap_ini": {"train": {"model.original": {"lowmem": True}}},
        **more,
    }


def test_local_install_then_unchanged_rerun(
    scratch_root: Path, run_role: RoleRunner, faceswap_commit: str, cpu_wheels: cache.WheelSet
) -> None:
    first = run_role(LOCAL, **role_vars(scratch_root, faceswap_commit, cpu_wheels))
    assert first.rc == 0, first.output[-3000:]
    assert first.changed.get("local", 0) > 0
    # On `local` the wheel set is used in place, not copied.
    assert not (scratch_root / "wheels").exists()
    smoke = json.loads((scratch_root / ".fsoci-smoke.json").read_text())
    assert smoke["key"]["commit"] == faceswap_commit
    assert smoke["result"]["torch"].startswith("2.12.1")
    assert smoke["result"]["cuda_available"] is False
    assert "lowmem = True" in (scratch_root / "jobs/demo/config/train.ini").read_text()

    again = run_role(LOCAL, **role_vars(scratch_root, faceswap_commit, cpu_wheels))
    assert again.rc == 0, again.output[-3000:]
    assert again.changed.get("local", 0) == 0

    checked = run_role(LOCAL, check=True, **role_vars(scratch_root, faceswap_commit, cpu_wheels))
    assert checked.rc == 0, checked.output[-3000:]
    assert checked.changed.get("local", 0) == 0

    other = {"train": {"model.original": {"lowmem": False}}}
    changed_ini = role_vars(scratch_root, faceswap_commit, cpu_wheels, faceswap_ini=other)
    predicted = run_role(LOCAL, check=True, **changed_ini)
    assert predicted.rc == 0, predicted.output[-3000:]
    assert predicted.changed.get("local", 0) == 1
    assert "lowmem = True" in (scratch_root / "jobs/demo/config/train.ini").read_text()


def test_clone_mode_from_a_git_url(
    scratch_root: Path, run_role: RoleRunner, faceswap_commit: str, cpu_wheels: cache.WheelSet
) -> None:
    """`clone` mode: the host clones the URL (here the controller's mirror, as a file URL)."""
    root = scratch_root.with_name(scratch_root.name + "-clone")
    try:
        more = {
            "faceswap_source_mode": "clone",
            "faceswap_git_url": cache.source_dir().as_uri(),
            "faceswap_ini": {},
        }
        result = run_role(LOCAL, **role_vars(root, faceswap_commit, cpu_wheels, **more))
        assert result.rc == 0, result.output[-3000:]
        head = subprocess.run(
            ["git", "-C", str(root / "faceswap"), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert head == faceswap_commit
        again = run_role(LOCAL, **role_vars(root, faceswap_commit, cpu_wheels, **more))
        assert again.rc == 0, again.output[-3000:]
        assert again.changed.get("local", 0) == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_unknown_ini_option_is_rejected_against_faceswap_defaults(
    scratch_root: Path, run_role: RoleRunner, faceswap_commit: str, cpu_wheels: cache.WheelSet
) -> None:
    if not (scratch_root / "faceswap/config/train.ini").exists():
        pytest.skip("needs the install made by test_local_install_then_unchanged_rerun")
    settings = {"train": {"model.original": {"lowmemory": True}}}
    result = run_role(
        LOCAL, **role_vars(scratch_root, faceswap_commit, cpu_wheels, faceswap_ini=settings)
    )
    assert result.rc != 0
    assert result.failures == [
        "faceswap_ini: train.ini [model.original] has no option 'lowmemory'; valid options: lowmem"
    ]
