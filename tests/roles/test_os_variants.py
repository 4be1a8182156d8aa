"""What host_prepare and nvidia_driver would do on the OCI images' operating systems.

One local-connection host per case, in check mode, with `--tags host_prepare_configure,
nvidia_driver_configure`: the roles take the case's OS facts (the distribution-version vars file
by first_found, the os_family task file), compute their plans and stop before any package
manager is asked (dnf and Ubuntu's archive cannot run here). The package lists asserted are
the ones the roles pass to apt/dnf (`host_prepare_plan.packages`, `nvidia_driver_plan.packages`).
The sources of the names are cited beside each table in roles/host_prepare/vars/*.yml and
roles/nvidia_driver/vars/*.yml; the comments below say which.

The GPU image cases answer with an `nvidia-smi` of their own on the case's PATH, printing what
the real one prints for the module's query (`--query-gpu=name,pci.device_id,memory.total,
driver_version,compute_cap --format=csv,noheader,nounits`: one line per GPU, comma-separated,
values without units; NVIDIA's nvidia-smi documentation, `nvidia-smi --help-query-gpu`). Which
driver branch the current Oracle-Linux-9.x-Gen2-GPU image carries is not stated in the image
release notes this project could read (docs.oracle.com/iaas/images/), so the table covers the
branches such an image may hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.roles.plans import run_plans
from tests.roles.test_nvidia_driver import A10, ORACLE_8, ORACLE_9, UBUNTU_2204, UBUNTU_2404

PLAYBOOK = Path(__file__).with_name("os_variants.yml")
ROOT_FACTS = {"user_uid": 0, "user_id": "root"}

# roles/host_prepare/vars/RedHat.yml: python3.12 (RHEL 9 docs, table 1.1: since 9.4; RHEL 8.10
# too), python3.12-tkinter (the -tkinter split of the OL 9.5 release notes' package list),
# mesa-libGL (AppStream), glib2, acl, rsync (BaseOS), git (AppStream).
OL_PACKAGES = ["acl", "git", "glib2", "mesa-libGL", "python3.12", "python3.12-tkinter", "rsync"]
# roles/host_prepare/vars/Ubuntu-24.yml: noble's python3 is 3.12; libglib2.0-0t64 since the
# time_t transition (LP #2063221 dropped libglib2.0-0 from noble).
U2404_PACKAGES = [
    "acl", "ca-certificates", "git", "libgl1", "libglib2.0-0t64",
    "python3-tk", "python3-venv", "rsync",
]  # fmt: skip
# roles/host_prepare/vars/Ubuntu-22.yml: jammy's python3 is 3.10; python3.11 and
# python3.11-venv from jammy-updates' universe.
U2204_PACKAGES = [
    "acl", "ca-certificates", "git", "libgl1", "libglib2.0-0",
    "python3-tk", "python3.11", "python3.11-venv", "rsync",
]  # fmt: skip
# roles/nvidia_driver/vars/main.yml and OracleLinux-9.yml: NVIDIA's driver installation guide
# for Oracle Linux (CUDA repository for RHEL 9, dnf module stream nvidia-driver:580-open,
# nvidia-driver-cuda + kmod-nvidia-open-dkms, the UEK kernel's devel package).
OL9_DRIVER = [
    "nvidia-driver-cuda", "kmod-nvidia-open-dkms",
    "kernel-uek-devel-5.15.0-300.163.18.el9uek.x86_64", "kernel-headers",
]  # fmt: skip

# nvidia-smi's answer on an A10 VM (VM.GPU.A10.1) with the given driver loaded.
A10_SMI = "NVIDIA A10, 0x223610DE, 23028, {driver}, 8.6"

# case -> OS facts, nvidia-smi driver (None: GPU facts injected, no driver), expected
#   (host_prepare plan, nvidia_driver plan subset)
CASES: dict[str, tuple[dict[str, Any], str | None, dict[str, Any], dict[str, Any]]] = {
    # The OL9 GPU image with a current driver: nothing to install, CUDA 13 wheels.
    "ol9_gpu_image_580": (
        ORACLE_9,
        "580.95.05",
        {"family": "RedHat", "setup_tasks": "setup-RedHat.yml", "packages": OL_PACKAGES,
         "python": "python3.12"},
        {"action": "none", "backend": "nvidia13", "driver_version": "580.95.05", "packages": [],
         "repo": None, "module_stream": None},
    ),
    # An image whose driver predates 580: kept, with the CUDA 12.6 wheels (no DKMS, no reboot).
    "ol9_gpu_image_570": (
        ORACLE_9,
        "570.195.03",
        {"family": "RedHat", "packages": OL_PACKAGES, "python": "python3.12"},
        {"action": "none", "backend": "nvidia12", "driver_version": "570.195.03", "packages": []},
    ),
    "ol9_gpu_image_535": (
        ORACLE_9,
        "535.247.01",
        {"family": "RedHat", "packages": OL_PACKAGES, "python": "python3.12"},
        {"action": "none", "backend": "nvidia12", "packages": []},
    ),
    # Older than CUDA 12 accepts (525): the role installs 580 from NVIDIA's repository.
    "ol9_gpu_image_470": (
        ORACLE_9,
        "470.256.02",
        {"family": "RedHat", "packages": OL_PACKAGES, "python": "python3.12"},
        {"action": "install", "backend": "nvidia13", "module_stream": "nvidia-driver:580-open",
         "packages": OL9_DRIVER},
    ),
    # The plain OL9 image on an A10 (no driver): the same install.
    "ol9_plain_image": (
        ORACLE_9,
        None,
        {"family": "RedHat", "packages": OL_PACKAGES, "python": "python3.12"},
        {"action": "install", "backend": "nvidia13", "module_stream": "nvidia-driver:580-open",
         "packages": OL9_DRIVER},
    ),
    "ol8_plain_image": (
        ORACLE_8,
        None,
        {"family": "RedHat", "packages": OL_PACKAGES, "python": "python3.12"},
        {"action": "install", "module_stream": "nvidia-driver:580-open",
         "packages": ["nvidia-driver-cuda", "kmod-nvidia-open-dkms",
                      "kernel-devel-4.18.0-553.el8_10.x86_64", "kernel-headers"]},
    ),
    # Ubuntu: Ubuntu's server driver packages from the archive's restricted component
    # (roles/nvidia_driver/vars/Ubuntu-24.04.yml: Ubuntu Server docs, install-nvidia-drivers).
    "ubuntu2404": (
        UBUNTU_2404,
        None,
        {"family": "Debian", "setup_tasks": "setup-Debian.yml", "packages": U2404_PACKAGES,
         "python": "python3.12"},
        {"action": "install", "backend": "nvidia13", "family": "Debian", "module_stream": None,
         "packages": ["nvidia-headless-580-server-open", "nvidia-utils-580-server",
                      "linux-headers-6.8.0-1013-oracle"]},
    ),
    "ubuntu2204": (
        UBUNTU_2204,
        None,
        {"family": "Debian", "setup_tasks": "setup-Debian.yml", "packages": U2204_PACKAGES,
         "python": "python3.11"},
        {"action": "install", "backend": "nvidia13", "family": "Debian",
         "packages": ["nvidia-headless-580-server-open", "nvidia-utils-580-server",
                      "linux-headers-5.15.0-1066-oracle"]},
    ),
}  # fmt: skip

HOST_PLAN_TASK = "Decide the packages and the Python for this OS"
DRIVER_PLAN_TASK = "Compute the driver plan before changing anything"


def _fake_nvidia_smi(bindir: Path, line: str) -> None:
    """A stand-in nvidia-smi (no GPU here) that answers the module's --query-gpu with the line
    and refuses anything else, so an unexpected call shows up as a failed probe."""
    bindir.mkdir(parents=True)
    script = bindir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in --query-gpu=*) ;; *) echo "Invalid combination of input arguments." >&2;'
        " exit 2;; esac\n"
        f"echo '{line}'\n"
    )
    script.chmod(0o755)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    work = tmp_path_factory.mktemp("os_variants")
    hosts: dict[str, dict[str, Any]] = {}
    for name, (facts, driver, _host, _driver) in CASES.items():
        host: dict[str, Any] = {
            "case_os_facts": facts | ROOT_FACTS,
            "case_root": str(work / name / "root"),
        }
        if driver is None:
            host["nvidia_driver_gpu_facts"] = A10
        else:
            bindir = work / name / "bin"
            _fake_nvidia_smi(bindir, A10_SMI.format(driver=driver))
            host["case_environment"] = {"PATH": f"{bindir}:/usr/bin:/bin"}
        hosts[name] = host
    facts = {
        HOST_PLAN_TASK: ("host", "host_prepare_plan"),
        DRIVER_PLAN_TASK: ("driver", "nvidia_driver_plan"),
        "Record what was detected": ("detected", "nvidia_driver_detected"),
    }
    tags = "host_prepare_configure,nvidia_driver_configure"
    results = run_plans(PLAYBOOK, hosts, tags, work, facts)
    return results


@pytest.mark.parametrize("case", sorted(CASES))
def test_host_and_driver_plan(case: str, outcomes: dict[str, dict[str, Any]]) -> None:
    facts, driver, want_host, want_driver = CASES[case]
    got = outcomes[case]
    assert "failed" not in got, got["failed"]
    assert {k: got["host"][k] for k in want_host} == want_host
    assert {k: got["driver"][k] for k in want_driver} == want_driver
    # The driver decision came from the case's nvidia-smi output, not from injected facts.
    assert got["detected"]["source"] == ("injected" if driver is None else "nvidia-smi")
    assert got["host"]["distribution"].startswith(facts["distribution"])
