"""pytest plugin: the pinned Faceswap commit, its CPU wheel set and one install on this machine.

``local_faceswap`` installs the real Faceswap with the `faceswap` role on the ``local`` target
(no become, the invoking user, the wheel set used in place) once per session, at the ``local``
target's own layout under a scratch data folder in /var/tmp (``<data home>/faceswap-oci``, as
the runner makes it from ``$XDG_DATA_HOME``): the role's own local tests check that install, the
pipeline tests run their phases against it, and API tests of the ``local`` target point
``XDG_DATA_HOME`` at it (``installed_xdg``), so their `setup` finds Faceswap installed. The
folder is removed at the end of the session.

A Faceswap source cache without the pinned commit is an error, not a skip: fill it with
``faceswap-oci source add /path/to/faceswap``.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from faceswap_oci import cache
from tests.faceswap.playbook import ROLE_PLAY, PlaybookResult, run_playbook
from tests.hostimage import pinned_commit

PYTHON = "/usr/bin/python3"
LOCAL = {
    "all": {
        "hosts": {
            "local": {"ansible_connection": "local", "ansible_python_interpreter": PYTHON},
        }
    }
}


@dataclass(frozen=True)
class LocalInstall:
    """Faceswap installed on this machine: its root and the role run that installed it."""

    data_home: Path
    root: Path
    commit: str
    wheels: cache.WheelSet
    first: PlaybookResult


def local_role_vars(
    root: Path, commit: str, wheels: cache.WheelSet, **more: object
) -> dict[str, object]:
    """The faceswap role's variables for an install on the ``local`` target under *root*."""
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


def run_local_role(
    workdir: Path,
    root: Path,
    commit: str,
    wheels: cache.WheelSet,
    *,
    check: bool = False,
    **more: object,
) -> PlaybookResult:
    return run_playbook(
        ROLE_PLAY, LOCAL, workdir, local_role_vars(root, commit, wheels, **more), check=check
    )


@pytest.fixture(scope="session")
def faceswap_commit() -> str:
    """The pinned commit, resolved in the controller's source cache (fails loudly if absent)."""
    return pinned_commit()


@pytest.fixture(scope="session")
def cpu_wheels(faceswap_commit: str) -> cache.WheelSet:
    """The CPU wheel set for Python 3.11 on manylinux x86_64 (Debian 12 hosts and this one)."""
    return cache.ensure_wheels(faceswap_commit, "cpu", "3.11", "manylinux_2_28_x86_64")


@pytest.fixture(scope="session")
def local_faceswap(
    faceswap_commit: str, cpu_wheels: cache.WheelSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalInstall]:
    probe = subprocess.run(
        [PYTHON, "-c", "import tkinter, venv, ensurepip"], capture_output=True, check=False
    )
    assert probe.returncode == 0, (
        f"{PYTHON} lacks tkinter or venv: apt-get install python3-tk python3-venv "
        "(scripts/test.sh does as root)"
    )
    free = shutil.disk_usage("/var/tmp").free
    assert free >= 12 * 2**30, (
        f"a CPU install of Faceswap needs 12 GiB in /var/tmp ({free >> 30} free)"
    )
    data_home = Path("/var/tmp") / f"fsoci-local-test-{tmp_path_factory.getbasetemp().name}"
    root = data_home / "faceswap-oci"
    try:
        first = run_local_role(
            tmp_path_factory.mktemp("local-install"), root, faceswap_commit, cpu_wheels
        )
        assert first.rc == 0, first.output[-3000:]
        yield LocalInstall(data_home, root, faceswap_commit, cpu_wheels, first)
    finally:
        shutil.rmtree(data_home, ignore_errors=True)
