"""The "Faceswap installed" image (tests/hostimage.py): one real `setup` on a plain host shaped
like Oracle Linux 9's Python made it, and a host booted on it has Faceswap installed and ready,
so its own `setup` installs nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import faceswap_oci
from faceswap_oci import events as ev
from tests.faceswap.playbook import ROLE_PLAY, run_playbook
from tests.hostimage import Image
from tests.testbed import Host

pytestmark = [pytest.mark.testbed, pytest.mark.faceswap]


def test_the_image_was_made_by_a_real_setup(faceswap_image: Image, faceswap_commit: str) -> None:
    record = faceswap_image.record
    assert record["phases_run"] == ["setup"]
    assert record["commit"] == faceswap_commit
    assert record["smoke"]["key"]["commit"] == faceswap_commit
    assert record["smoke"]["result"]["torch"].startswith("2.12.1")
    assert record["smoke"]["result"]["cuda_available"] is False
    # The install itself happened in that run: the venv and Faceswap's requirements.
    changed = record["tasks_changed"]
    assert record["changed"] == len(changed) > 0
    assert any("requirements" in task.lower() for task in changed), changed


# The setup tasks that act on one job's folder under jobs/<name>/ (the image carries no job).
PER_JOB = {
    "Create the job directories",
    "Create the ini folder",
    "Render the ini files from Faceswap's defaults and faceswap_ini",
    "Write the environment file the phases source",
}


def test_setup_on_the_image_only_adds_the_jobs_own_folders(
    installed_host: Host, faceswap_image: Image, xdg: Path, job_file: Callable[..., Path]
) -> None:
    job = faceswap_oci.load_job(job_file("onimage", installed_host.job_target()))
    seen: list[ev.Event] = []
    result = faceswap_oci.run(job, on_event=seen.append, only="setup")
    assert result.ok, result.error
    changed = {
        e.task for e in seen if isinstance(e, ev.TaskDone) and e.status is ev.TaskStatus.CHANGED
    }
    assert changed == PER_JOB
    installed = set(faceswap_image.record["tasks_changed"])
    assert PER_JOB.issubset(installed)
    assert "Install the requirements with pip" in installed
    venv = installed_host.ssh(
        "/opt/faceswap-oci/venv/bin/python -c 'import torch; print(torch.__version__)'"
    )
    assert venv.stdout.startswith("2.12.1")


def test_setup_on_an_old_system_python_installed_faceswap_on_the_one_beside_it(
    faceswap_image: Image,
) -> None:
    """The image's builder host was shaped like Oracle Linux 9 (``/usr/bin/python3`` a real 3.9,
    python3.11 beside it) and its job set no ``faceswap_python``: setup chose python3.11 and
    left the host's own python3 alone (issue 19; before host_prepare reported its interpreter,
    this setup failed on the supported-Python check)."""
    record = faceswap_image.record
    assert record["system_python"].startswith("3.9.")
    assert record["reports"]["faceswap_python"]["python"] == "/usr/bin/python3.11"
    ready = record["reports"]["faceswap_ready"]
    assert (ready["python"], ready["smoke_checked"]) == ("3.11", True)
    assert record["venv_python"] == "/usr/bin/python3.11"
    assert record["faceswap_usage"].startswith("usage: faceswap.py")


def test_the_faceswap_role_alone_picks_the_python_beside_an_old_python3(
    installed_host: Host, faceswap_commit: str, tmp_path: Path
) -> None:
    """The faceswap role on its own, in check mode, Ansible itself on the host's 3.9: unset, it
    picks python3.11; the old default, faceswap_python=/usr/bin/python3, is refused naming the
    version."""
    base = installed_host.host_vars() | {"ansible_python_interpreter": "/usr/bin/python3"}
    version = installed_host.ssh("/usr/bin/python3 -c 'import sys; print(sys.version_info[:2])'")
    assert version.stdout.strip() == "(3, 9)"
    role = run_playbook(
        ROLE_PLAY,
        {
            "all": {
                "hosts": {
                    "unset": base,
                    "old_default": base | {"faceswap_python": "/usr/bin/python3"},
                }
            }
        },
        tmp_path / "role",
        extra_vars={
            "faceswap_commit": faceswap_commit,
            "faceswap_ini_dir": "/opt/faceswap-oci/jobs/oldpy/config",
        },
        check=True,
    )
    assert role.failures == [
        "faceswap_python '/usr/bin/python3' is Python 3.9; Faceswap needs Python 3.11, 3.12, "
        "3.13: point faceswap_python at one (e.g. /usr/bin/python3.12)."
    ]
    # The faceswap_python event, as the YAML result format (ansible.cfg) prints it.
    assert "chosen: newest supported on the host" in role.output
    assert "python: /usr/bin/python3.11" in role.output
