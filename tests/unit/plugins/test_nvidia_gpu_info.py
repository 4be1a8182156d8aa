"""The nvidia_gpu_info module: probe order and fallbacks, injected facts, the full result."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.faceswap_oci.core.plugins.modules import nvidia_gpu_info as mod

SMI = "/usr/bin/nvidia-smi"
LSPCI = "/usr/bin/lspci"
FULL_QUERY = [
    SMI,
    "--query-gpu=name,pci.device_id,memory.total,driver_version,compute_cap",
    "--format=csv,noheader,nounits",
]
OLD_QUERY = [
    SMI,
    "--query-gpu=name,pci.device_id,memory.total,driver_version",
    "--format=csv,noheader,nounits",
]

A10_SMI = "NVIDIA A10, 0x223610DE, 23028, 580.95.05, 8.6\n"
H100X8_SMI = "NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 580.95.05, 9.0\n" * 8
V100_LSPCI = (
    "00:00.0 Host bridge [0600]: Intel Corporation 440FX - 82441FX PMC [Natoma] [8086:1237]\n"
    "00:04.0 3D controller [0302]: NVIDIA Corporation GV100GL [Tesla V100 SXM2 16GB] "
    "[10de:1db1] (rev a1)\n"
)
NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure "
    "that the latest NVIDIA driver is installed and running.\n\n"
)
OLD_DRIVER_ERROR = 'Field "compute_cap" is not a valid field to query.\n\n'


class FakeHost:
    """Answers run_command and get_bin_path from a table of commands."""

    def __init__(self, tools: dict[str, str], answers: dict[tuple[str, ...], tuple[int, str]]):
        self.tools = tools
        self.answers = answers
        self.calls: list[list[str]] = []

    def which(self, name: str) -> str | None:
        return self.tools.get(name)

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        rc, out = self.answers[tuple(argv)]
        return rc, out, ""


def _sysfs(tmp_path: Path, devices: dict[str, tuple[str, str, str]]) -> str:
    for slot, (vendor, device, klass) in devices.items():
        d = tmp_path / slot
        d.mkdir()
        (d / "vendor").write_text(vendor + "\n")
        (d / "device").write_text(device + "\n")
        (d / "class").write_text(klass + "\n")
    return str(tmp_path)


@pytest.mark.parametrize(
    ("tools", "answers", "source", "models", "driver", "error"),
    [
        pytest.param(
            {"nvidia-smi": SMI, "lspci": LSPCI},
            {tuple(FULL_QUERY): (0, A10_SMI)},
            "nvidia-smi",
            ["A10"],
            "580.95.05",
            None,
            id="nvidia-smi-a10",
        ),
        pytest.param(
            {"nvidia-smi": SMI},
            {tuple(FULL_QUERY): (0, H100X8_SMI)},
            "nvidia-smi",
            ["H100"] * 8,
            "580.95.05",
            None,
            id="nvidia-smi-8xh100",
        ),
        pytest.param(
            {"nvidia-smi": SMI},
            {
                tuple(FULL_QUERY): (6, OLD_DRIVER_ERROR),
                tuple(OLD_QUERY): (0, "Tesla T4, 0x1EB810DE, 15109, 470.256.02\n"),
            },
            "nvidia-smi",
            ["T4"],
            "470.256.02",
            None,
            id="old-driver-without-compute-cap",
        ),
        pytest.param(
            {"nvidia-smi": SMI, "lspci": LSPCI},
            {tuple(FULL_QUERY): (9, NO_DRIVER), (LSPCI, "-nn"): (0, V100_LSPCI)},
            "lspci",
            ["V100"],
            None,
            NO_DRIVER.splitlines()[0],
            id="driver-not-loaded-falls-back-to-lspci",
        ),
        pytest.param(
            {"lspci": LSPCI},
            {(LSPCI, "-nn"): (0, V100_LSPCI)},
            "lspci",
            ["V100"],
            None,
            None,
            id="lspci-only",
        ),
        pytest.param(
            {"lspci": LSPCI},
            {(LSPCI, "-nn"): (0, V100_LSPCI.splitlines()[0] + "\n")},
            "none",
            [],
            None,
            None,
            id="lspci-no-gpu",
        ),
    ],
)
def test_probe(
    tools: dict[str, str],
    answers: dict[tuple[str, ...], tuple[int, str]],
    source: str,
    models: list[str],
    driver: str | None,
    error: str | None,
    tmp_path: Path,
) -> None:
    host = FakeHost(tools, answers)
    got_source, gpus, got_driver, got_error = mod.probe(host.run, host.which, str(tmp_path))
    assert (got_source, [g.model for g in gpus], got_driver, got_error) == (
        source,
        models,
        driver,
        error,
    )


def test_probe_reads_sysfs_without_pciutils(tmp_path: Path) -> None:
    root = _sysfs(
        tmp_path,
        {
            "0000:00:00.0": ("0x8086", "0x1237", "0x060000"),
            "0000:00:04.0": ("0x10de", "0x2236", "0x030200"),
            "0000:00:04.1": ("0x10de", "0x1aef", "0x040300"),
        },
    )
    host = FakeHost({}, {})
    source, gpus, driver, error = mod.probe(host.run, host.which, root)
    assert (source, [g.model for g in gpus], driver, error) == ("sysfs", ["A10"], None, None)
    assert host.calls == []


def test_probe_nothing_anywhere(tmp_path: Path) -> None:
    host = FakeHost({}, {})
    assert mod.probe(host.run, host.which, str(tmp_path)) == ("none", [], None, None)


def _run_module(
    args: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        mod.main()
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def _no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_a: object, **_k: object) -> None:
        raise AssertionError("injected facts must not probe the host")

    monkeypatch.setattr(mod, "probe", fail)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            {"gpus": [{"name": "NVIDIA A10"}], "require_gpu": True},
            {"backend": "nvidia13", "action": "install", "target_branch": 580, "problems": []},
        ),
        (
            {
                "gpus": [{"pci_device_id": "0x233010DE"}] * 8,
                "driver_version": "580.95.05",
            },
            {"backend": "nvidia13", "action": "none", "fabric_manager": True, "driver_branch": 580},
        ),
        (
            {"gpus": [{"name": "Tesla V100-SXM2-16GB"}], "driver_branch": "580"},
            {"backend": "nvidia12", "kernel_modules": "proprietary", "min_driver_branch": 525},
        ),
        (
            {"gpus": [], "require_gpu": True},
            {
                "backend": "cpu",
                "action": "none",
                "problems": [
                    "nvidia_driver_require_gpu is true but this host has no NVIDIA GPU "
                    "(nvidia-smi, lspci and /sys/bus/pci found none). Run on a GPU host or "
                    "shape, or set nvidia_driver_require_gpu: false to use the CPU backend."
                ],
            },
        ),
    ],
)
def test_module_with_injected_facts(
    args: dict[str, Any],
    expected: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_probe(monkeypatch)
    result = _run_module(args, capsys, monkeypatch)
    assert result["changed"] is False
    assert result["source"] == "injected"
    assert result["gpu_count"] == len(args["gpus"])
    assert {k: result[k] for k in expected} == expected


def test_module_result_keys_match_return_doc(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    _no_probe(monkeypatch)
    result = _run_module({"gpus": [{"name": "NVIDIA A10"}]}, capsys, monkeypatch)
    documented = set(yaml.safe_load(mod.RETURN))
    assert documented == set(result) - {"changed", "invocation"}


def test_module_probes_the_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake_probe(
        run: Callable[[list[str]], tuple[int, str, str]], which: Callable[[str], str | None]
    ) -> tuple[str, list[Any], str | None, str | None]:
        calls.append("probe")
        gpus, driver = mod.parse_nvidia_smi_csv(A10_SMI)
        return "nvidia-smi", gpus, driver, None

    monkeypatch.setattr(mod, "probe", fake_probe)
    result = _run_module({"_ansible_check_mode": True}, capsys, monkeypatch)
    assert calls == ["probe"]
    assert (result["source"], result["driver_version"], result["action"]) == (
        "nvidia-smi",
        "580.95.05",
        "none",
    )
    assert result["gpus"][0]["model"] == "A10"


def test_module_rejects_an_empty_injected_gpu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_probe(monkeypatch)
    result = _run_module({"gpus": [{"memory_mib": 1}]}, capsys, monkeypatch)
    assert result["failed"] is True
    assert result["msg"] == (
        "gpus[0]: give a name (e.g. 'NVIDIA A10') or a pci_device_id (e.g. '0x2236') for each "
        "injected GPU."
    )
