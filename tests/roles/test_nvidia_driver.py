"""The nvidia_driver role's decisions, run for real with ansible-playbook in check mode.

Every case is one inventory host on a local connection: GPU facts are injected through the
role's `nvidia_driver_gpu_facts`, the OS facts (Ubuntu, Oracle Linux, ...) through a small
test module, and `--tags nvidia_driver_configure` stops the role after detection and the plan,
so no package manager of a foreign OS is asked anything. Plans and failures are read from
ansible-runner's events, the way the wrapper reads a real run. The CPU-host cases use no injection
at all: they detect this machine's (absent) GPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.roles.plans import run_plans

PLAYBOOK = Path(__file__).with_name("nvidia_driver_plan.yml")

UBUNTU_2404 = {
    "distribution": "Ubuntu",
    "distribution_version": "24.04",
    "distribution_major_version": "24",
    "os_family": "Debian",
    "kernel": "6.8.0-1013-oracle",
    "architecture": "x86_64",
}
UBUNTU_2204 = UBUNTU_2404 | {
    "distribution_version": "22.04",
    "distribution_major_version": "22",
    "kernel": "5.15.0-1066-oracle",
}
ORACLE_9 = {
    "distribution": "OracleLinux",
    "distribution_version": "9.4",
    "distribution_major_version": "9",
    "os_family": "RedHat",
    "kernel": "5.15.0-300.163.18.el9uek.x86_64",
    "architecture": "x86_64",
}
ORACLE_8 = ORACLE_9 | {
    "distribution_version": "8.10",
    "distribution_major_version": "8",
    "kernel": "4.18.0-553.el8_10.x86_64",
}
DEBIAN_12 = {
    "distribution": "Debian",
    "distribution_version": "12.8",
    "distribution_major_version": "12",
    "os_family": "Debian",
    "kernel": "6.1.0-28-cloud-amd64",
    "architecture": "x86_64",
}

A10 = {"gpus": [{"name": "NVIDIA A10", "pci_device_id": "0x223610DE", "memory_mib": 23028}]}
V100 = {"gpus": [{"name": "Tesla V100-SXM2-16GB", "pci_device_id": "0x1DB110DE"}]}
# BM.GPU4.8: eight A100 SXM4 on an NVSwitch board, here with an older 535 driver.
A100X8 = {
    "gpus": [{"name": "NVIDIA A100-SXM4-40GB", "pci_device_id": "0x20B010DE"}] * 8,
    "driver_version": "535.183.01",
}
H100X8_580 = {
    "gpus": [{"name": "NVIDIA H100 80GB HBM3", "pci_device_id": "0x233010DE"}] * 8,
    "driver_version": "580.95.05",
}

RHEL9_REPO = {
    "name": "cuda-rhel9",
    "description": "NVIDIA CUDA repository for RHEL 9 (driver packages)",
    "baseurl": "https://developer.download.nvidia.com/compute/cuda/repos/rhel9/x86_64",
    "gpgkey": "https://developer.download.nvidia.com/compute/cuda/repos/rhel9/x86_64/D42D0685.pub",
}
RHEL8_REPO = {
    "name": "cuda-rhel8",
    "description": "NVIDIA CUDA repository for RHEL 8 (driver packages)",
    "baseurl": "https://developer.download.nvidia.com/compute/cuda/repos/rhel8/x86_64",
    "gpgkey": "https://developer.download.nvidia.com/compute/cuda/repos/rhel8/x86_64/D42D0685.pub",
}

# case -> (role vars, OS facts or None for this machine's, expected plan subset)
PLAN_CASES: dict[str, tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]] = {
    "a10_ubuntu2404": (
        {"nvidia_driver_gpu_facts": A10},
        UBUNTU_2404,
        {
            "action": "install",
            "backend": "nvidia13",
            "family": "Debian",
            "branch": 580,
            "kernel_modules": "open",
            "repo": {
                "name": "ubuntu-noble-restricted",
                "description": "Ubuntu 24.04 (noble) archive, restricted component",
                "baseurl": None,
                "gpgkey": None,
            },
            "module_stream": None,
            "packages": [
                "nvidia-headless-580-server-open",
                "nvidia-utils-580-server",
                "linux-headers-6.8.0-1013-oracle",
            ],
        },
    ),
    "a10_ubuntu2204_pinned_590": (
        {"nvidia_driver_gpu_facts": A10, "nvidia_driver_branch": "590"},
        UBUNTU_2204,
        {
            "action": "install",
            "branch": 590,
            "packages": [
                "nvidia-headless-590-server-open",
                "nvidia-utils-590-server",
                "linux-headers-5.15.0-1066-oracle",
            ],
        },
    ),
    "v100_ubuntu2204": (
        {"nvidia_driver_gpu_facts": V100, "nvidia_driver_require_gpu": True},
        UBUNTU_2204,
        {
            "action": "install",
            "backend": "nvidia12",
            "family": "Debian",
            "branch": 580,
            "kernel_modules": "proprietary",
            "repo": {
                "name": "ubuntu-jammy-restricted",
                "description": "Ubuntu 22.04 (jammy) archive, restricted component",
                "baseurl": None,
                "gpgkey": None,
            },
            "packages": [
                "nvidia-headless-580-server",
                "nvidia-utils-580-server",
                "linux-headers-5.15.0-1066-oracle",
            ],
        },
    ),
    "a10_oracle9": (
        {"nvidia_driver_gpu_facts": A10},
        ORACLE_9,
        {
            "action": "install",
            "backend": "nvidia13",
            "family": "RedHat",
            "branch": 580,
            "repo": RHEL9_REPO,
            "module_stream": "nvidia-driver:580-open",
            "packages": [
                "nvidia-driver-cuda",
                "kmod-nvidia-open-dkms",
                "kernel-uek-devel-5.15.0-300.163.18.el9uek.x86_64",
                "kernel-headers",
            ],
            "fabric_manager": False,
        },
    ),
    # The 535 driver already there works with the CUDA 12.6 wheels: auto keeps it.
    "a100x8_oracle8_old_driver_kept": (
        {"nvidia_driver_gpu_facts": A100X8},
        ORACLE_8,
        {
            "action": "none",
            "backend": "nvidia12",
            "driver_version": "535.183.01",
            "packages": [],
            "repo": None,
        },
    ),
    "a100x8_oracle8_old_driver_nvidia13": (
        {"nvidia_driver_gpu_facts": A100X8, "nvidia_driver_backend": "nvidia13"},
        ORACLE_8,
        {
            "action": "install",
            "backend": "nvidia13",
            "family": "RedHat",
            "branch": 580,
            "driver_version": "535.183.01",
            "repo": RHEL8_REPO,
            "module_stream": "nvidia-driver:580-open",
            "packages": [
                "nvidia-driver-cuda",
                "kmod-nvidia-open-dkms",
                "kernel-devel-4.18.0-553.el8_10.x86_64",
                "kernel-headers",
                "nvidia-fabric-manager",
            ],
            "fabric_manager": True,
        },
    ),
    "h100x8_oracle9_driver_580_present": (
        {"nvidia_driver_gpu_facts": H100X8_580},
        ORACLE_9,
        {
            "action": "none",
            "backend": "nvidia13",
            "family": "RedHat",
            "branch": 580,
            "driver_version": "580.95.05",
            "repo": None,
            "module_stream": None,
            "packages": [],
        },
    ),
    # An adequate driver on an OS this role cannot install on is fine: nothing to do.
    "h100x8_debian12_driver_580_present": (
        {"nvidia_driver_gpu_facts": H100X8_580},
        DEBIAN_12,
        {"action": "none", "backend": "nvidia13", "supported_os": False, "packages": []},
    ),
    "cpu_host": (
        {},
        None,
        {"action": "none", "backend": "cpu", "branch": None, "packages": [], "repo": None},
    ),
}

FAIL_CASES: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str, str]] = {
    "cpu_host_require_gpu": (
        {"nvidia_driver_require_gpu": True},
        None,
        "Check the host can run the wanted backend",
        "nvidia_driver_require_gpu is true but this host has no NVIDIA GPU (nvidia-smi, lspci "
        "and /sys/bus/pci found none). Run on a GPU host or shape, or set "
        "nvidia_driver_require_gpu: false to use the CPU backend.",
    ),
    "a10_debian12_unsupported": (
        {"nvidia_driver_gpu_facts": A10},
        DEBIAN_12,
        "Check this OS can take the driver install",
        "nvidia_driver: this host needs NVIDIA driver branch 580 or newer for the nvidia13 "
        "backend, and the role installs drivers only on Ubuntu 22.04, Ubuntu 24.04, "
        "OracleLinux 8, OracleLinux 9; this host is Debian 12.8. Use a supported image, "
        "install the driver yourself, or set nvidia_driver_backend: cpu.",
    ),
    "v100_forced_nvidia13": (
        {"nvidia_driver_gpu_facts": V100, "nvidia_driver_backend": "nvidia13"},
        UBUNTU_2204,
        "Check the host can run the wanted backend",
        "nvidia_driver_backend is nvidia13 (CUDA 13 wheels) but Tesla V100-SXM2-16GB (compute "
        "capability 7.0) needs compute capability >= 7.5. Set nvidia_driver_backend: nvidia12 "
        "or auto.",
    ),
    "a10_ubuntu2404_without_become": (
        {"nvidia_driver_gpu_facts": A10, "nvidia_driver_become": False},
        UBUNTU_2404 | {"user_uid": 1000},
        "Check the install can get root",
        "nvidia_driver: this host needs NVIDIA driver branch 580 (nvidia-headless-580-server-open, "
        "nvidia-utils-580-server, linux-headers-6.8.0-1013-oracle), which needs root, but "
        "nvidia_driver_become is false. Set nvidia_driver_become: true, or install the driver "
        "yourself and run again.",
    ),
    "require_gpu_with_cpu_backend": (
        {"nvidia_driver_require_gpu": True, "nvidia_driver_backend": "cpu"},
        None,
        "Check the GPU requirement agrees with the backend",
        "nvidia_driver_require_gpu is true but nvidia_driver_backend is cpu; set "
        "nvidia_driver_backend to auto, nvidia13 or nvidia12, or nvidia_driver_require_gpu to "
        "false.",
    ),
}

# Cases that detect this machine's own GPUs instead of injected ones.
LOCAL_DETECTION = {"cpu_host", "cpu_host_require_gpu", "require_gpu_with_cpu_backend"}


def _machine_has_nvidia_gpu() -> bool:
    for dev in Path("/sys/bus/pci/devices").glob("*"):
        try:
            vendor = (dev / "vendor").read_text().strip()
            klass = (dev / "class").read_text().strip()
        except OSError:
            continue
        if vendor == "0x10de" and klass.startswith("0x03"):
            return True
    return shutil.which("nvidia-smi") is not None


PLAN_TASK = "Compute the driver plan before changing anything"
DETECT_TASK = "Record what was detected"
BACKEND_TASK = "Set the Faceswap backend for the faceswap role"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run the playbook once for all cases; return each host's plan or failure, read from
    ansible-runner's events as the wrapper reads them."""
    work = tmp_path_factory.mktemp("nvidia_driver_plans")
    hosts: dict[str, dict[str, Any]] = {}
    for name, (role_vars, facts, *_rest) in {**PLAN_CASES, **FAIL_CASES}.items():
        host = dict(role_vars)
        if facts is not None:
            host["case_os_facts"] = facts
        hosts[name] = host
    facts = {
        PLAN_TASK: ("plan", "nvidia_driver_plan"),
        DETECT_TASK: ("detected", "nvidia_driver_detected"),
        BACKEND_TASK: ("backend", "nvidia_driver_faceswap_backend"),
    }
    results = run_plans(PLAYBOOK, hosts, "nvidia_driver_configure", work, facts)
    return results


def _skip_if_gpu_here(case: str) -> None:
    if case in LOCAL_DETECTION and _machine_has_nvidia_gpu():
        pytest.skip("this machine has an NVIDIA GPU; the CPU-host cases need one without")


@pytest.mark.parametrize("case", sorted(PLAN_CASES))
def test_plan(case: str, outcomes: dict[str, dict[str, Any]]) -> None:
    _skip_if_gpu_here(case)
    outcome = outcomes[case]
    assert "failed" not in outcome, outcome.get("failed")
    assert outcome.keys() == {"plan", "detected", "backend"}
    expected = PLAN_CASES[case][2]
    plan = outcome["plan"]
    assert {k: plan[k] for k in expected} == expected
    assert outcome["backend"] == expected.get("backend", plan["backend"])
    assert outcome["detected"]["action"] == plan["action"]


@pytest.mark.parametrize("case", sorted(FAIL_CASES))
def test_failure_message(case: str, outcomes: dict[str, dict[str, Any]]) -> None:
    _skip_if_gpu_here(case)
    _vars, _facts, task, message = FAIL_CASES[case]
    assert outcomes[case] == {"failed": (task, message)}


def test_cpu_host_detection_is_real(outcomes: dict[str, dict[str, Any]]) -> None:
    _skip_if_gpu_here("cpu_host")
    detected = outcomes["cpu_host"]["detected"]
    assert (detected["source"], detected["gpus"], detected["gpu_count"]) == ("none", [], 0)
    # the file the cpu install uses (the one backend table, gpu_table.BACKENDS)
    assert detected["requirements_file"] == "_requirements_base.txt"
