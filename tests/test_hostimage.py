"""The "Faceswap installed" image (tests/hostimage.py): one real `setup` on a plain host made it,
and a host booted on it has Faceswap installed and ready, so its own `setup` installs nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import faceswap_oci
from faceswap_oci import events as ev
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
