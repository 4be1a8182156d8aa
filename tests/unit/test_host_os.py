"""`plan` for an OCI job names the image family and the host's Python, and the table behind it
agrees with what host_prepare installs (roles/host_prepare/vars)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import faceswap_oci
from faceswap_oci.api import HOST_OS
from faceswap_oci.spec import CONSENT_TEXT
from tests.media import write_pair
from tests.ociapi.fixtures import write_test_config

ROLE_VARS = Path(__file__).resolve().parents[2] / "roles" / "host_prepare" / "vars"


@pytest.mark.parametrize("os_name", sorted(HOST_OS))
def test_table_matches_host_prepare(os_name: str) -> None:
    entry = HOST_OS[os_name]
    role_vars = yaml.safe_load((ROLE_VARS / entry.host_prepare_vars).read_text())
    assert role_vars["_host_prepare_python"] == entry.python


def _job(tmp_path: Path, **oci: object) -> faceswap_oci.Job:
    write_pair(tmp_path)
    oci = {"config_file": str(write_test_config(tmp_path / "oci").config_file)} | oci
    spec = {
        "name": "planhost",
        "consent": CONSENT_TEXT,
        "target": {
            "kind": "oci",
            "oci": {"compartment": "ocid1.compartment.oc1..aaaa", "region": "eu-frankfurt-1"} | oci,
        },
        "inputs": {"a": "a.mp4", "b": "b.mp4"},
    }
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(spec))
    return faceswap_oci.load_job(path)


@pytest.mark.parametrize(
    ("oci", "image", "python"),
    [
        (
            {},
            "image: Oracle Linux 9, the newest Oracle-Linux-9.x-Gen2-GPU-* image for the shape "
            "(NVIDIA driver preinstalled)",
            "python: /usr/bin/python3.12 (the image's /usr/bin/python3 is 3.9); NVIDIA driver "
            "preinstalled on the Oracle-Linux-9.x-Gen2-GPU image",
        ),
        (
            {"os": "Canonical Ubuntu 24.04"},
            "image: Canonical Ubuntu 24.04, the newest image for the shape",
            "python: /usr/bin/python3.12 (the image's /usr/bin/python3 is 3.12); NVIDIA driver "
            "installed at setup (DKMS build, then a reboot)",
        ),
        (
            {"os": "Canonical Ubuntu 22.04"},
            "image: Canonical Ubuntu 22.04, the newest image for the shape",
            "python: /usr/bin/python3.11 (the image's /usr/bin/python3 is 3.10); NVIDIA driver "
            "installed at setup (DKMS build, then a reboot)",
        ),
        (
            {"os": "Oracle Linux 10"},
            "image: Oracle Linux 10, the newest Oracle-Linux-10.x-Gen2-GPU-* image for the shape "
            "(NVIDIA driver preinstalled)",
            "python: the newest python3.13/3.12/3.11 on the host (no table entry for this OS)",
        ),
    ],
    ids=["default", "ubuntu2404", "ubuntu2204", "unknown-os"],
)
def test_plan_names_image_and_python(
    tmp_path: Path, oci: dict[str, str], image: str, python: str
) -> None:
    plan = faceswap_oci.plan(_job(tmp_path, **oci), state_root=tmp_path / "state")
    lines = plan.summary().splitlines()
    assert f"  {image}" in lines
    assert f"  {python}" in lines


def test_plan_of_a_local_job_names_no_image(tmp_path: Path) -> None:
    write_pair(tmp_path)
    spec = {"name": "planlocal", "consent": CONSENT_TEXT, "target": {"kind": "local"},
            "inputs": {"a": "a.mp4", "b": "b.mp4"}}  # fmt: skip
    (tmp_path / "job.yml").write_text(yaml.safe_dump(spec))
    plan = faceswap_oci.plan(faceswap_oci.load_job(tmp_path / "job.yml"), state_root=tmp_path)
    assert plan.host is None
    assert not [line for line in plan.summary().splitlines() if "image:" in line]
