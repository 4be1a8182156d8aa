"""Verify nvidia_driver on a GPU-less test host: CPU backend, nothing installed, clear failure
when a GPU is required."""

import json

import pytest

RECORD = "/var/lib/faceswap-oci-molecule/nvidia_driver.json"


@pytest.fixture(scope="module")
def record(host):
    return json.loads(host.file(RECORD).content_string)


def test_backend_is_cpu(record):
    assert record["backend"] == "cpu"
    # the file the faceswap role installs for cpu (gpu_table.BACKENDS): Faceswap's
    # requirements_cpu.txt points at PyTorch's own index, so the base set is what is installed
    assert record["detected"]["requirements_file"] == "_requirements_base.txt"


def test_detection_found_no_gpu(record):
    detected = record["detected"]
    assert (detected["gpu_count"], detected["gpus"], detected["source"]) == (0, [], "none")
    assert detected["driver_version"] is None


def test_plan_changes_nothing(record):
    plan = record["plan"]
    assert (plan["action"], plan["packages"], plan["repo"], plan["branch"]) == (
        "none",
        [],
        None,
        None,
    )
    assert plan["distribution"].startswith("Debian 12")


def test_require_gpu_fails_with_the_message(record):
    assert record["require_gpu_failure"] == (
        "nvidia_driver_require_gpu is true but this host has no NVIDIA GPU (nvidia-smi, lspci "
        "and /sys/bus/pci found none). Run on a GPU host or shape, or set "
        "nvidia_driver_require_gpu: false to use the CPU backend."
    )


def test_no_driver_packages_or_repositories(host):
    listed = host.run("dpkg-query -W -f '${Package}\\n'")
    assert listed.rc == 0, listed.stderr
    nvidia = [p for p in listed.stdout.split() if p.startswith(("nvidia-", "libnvidia-"))]
    assert nvidia == []
    sources = host.run(
        "grep -rls -e nvidia -e restricted /etc/apt/sources.list /etc/apt/sources.list.d"
    )
    assert sources.stdout.strip() == ""


def test_detection_module_agrees_on_the_host(host):
    result = host.ansible("faceswap_oci.core.nvidia_gpu_info", "require_gpu=false", check=True)
    assert (result["source"], result["backend"], result["action"]) == ("none", "cpu", "none")
    assert result["changed"] is False
