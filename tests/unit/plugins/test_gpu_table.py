"""The GPU table: parsing probe output, GPU -> backend, driver adequacy, the driver decision."""

from __future__ import annotations

import pytest
from ansible_collections.faceswap_oci.core.plugins.module_utils import gpu_table as t

# Lines as nvidia-smi --query-gpu=name,pci.device_id,memory.total,driver_version,compute_cap
# --format=csv,noheader,nounits prints them (names and memory sizes from published runs).
SMI_CASES = [
    # line, model, backend, compute capability, memory MiB
    ("NVIDIA A10, 0x223610DE, 23028, 580.95.05, 8.6", "A10", "nvidia13", "8.6", 23028),
    ("Tesla T4, 0x1EB810DE, 15360, 580.95.05, 7.5", "T4", "nvidia13", "7.5", 15360),
    ("Tesla V100-SXM2-16GB, 0x1DB110DE, 16384, 580.126.09, 7.0", "V100", "nvidia12", "7.0", 16384),
    ("Tesla V100-PCIE-16GB, 0x1DB410DE, 16384, 580.126.09, 7.0", "V100", "nvidia12", "7.0", 16384),
    ("NVIDIA A100-SXM4-40GB, 0x20B010DE, 40960, 580.95.05, 8.0", "A100", "nvidia13", "8.0", 40960),
    (
        "NVIDIA A100-SXM4-80GB, 0x20B210DE, 81920, 580.95.05, 8.0",
        "A100-80GB",
        "nvidia13",
        "8.0",
        81920,
    ),
    ("NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 580.95.05, 9.0", "H100", "nvidia13", "9.0", 81559),
    ("NVIDIA L40S, 0x26B910DE, 46068, 580.95.05, 8.9", "L40S", "nvidia13", "8.9", 46068),
    ("NVIDIA L4, 0x27B810DE, 23034, 580.95.05, 8.9", "L4", "nvidia13", "8.9", 23034),
    ("Tesla P100-PCIE-16GB, 0x15F810DE, 16384, 535.183.01, 6.0", "P100", "nvidia12", "6.0", 16384),
    ("NVIDIA H200, 0x233510DE, 143771, 580.95.05, 9.0", "H200", "nvidia13", "9.0", 143771),
]


@pytest.mark.parametrize(("line", "model", "backend", "cc", "memory"), SMI_CASES)
def test_parse_nvidia_smi_line(line: str, model: str, backend: str, cc: str, memory: int) -> None:
    gpus, driver = t.parse_nvidia_smi_csv(line + "\n")
    assert driver == line.split(", ")[3]
    assert len(gpus) == 1
    gpu = gpus[0]
    assert (gpu.model, gpu.backend, gpu.compute_capability, gpu.memory_mib) == (
        model,
        backend,
        cc,
        memory,
    )
    assert gpu.name == line.split(", ")[0]


def test_parse_nvidia_smi_several_gpus_and_no_compute_cap_column() -> None:
    # Drivers before 510 do not know compute_cap; the module then queries without it.
    text = "Tesla V100-SXM2-16GB, 0x1DB110DE, 16160, 470.256.02\n" * 2
    gpus, driver = t.parse_nvidia_smi_csv(text)
    assert driver == "470.256.02"
    assert [g.compute_capability for g in gpus] == ["7.0", "7.0"]
    assert t.required_backend(gpus) == "nvidia12"


def test_parse_nvidia_smi_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="unexpected nvidia-smi line"):
        t.parse_nvidia_smi_csv("No devices were found\n")


# Lines as `lspci -nn` prints them, from published outputs.
LSPCI_CASES = [
    (
        "17:00.0 3D controller [0302]: NVIDIA Corporation GA102GL [A10] [10de:2236] (rev a1)",
        "A10",
        "A10",
        "nvidia13",
    ),
    (
        "00:04.0 3D controller [0302]: NVIDIA Corporation TU104GL [Tesla T4] [10de:1eb8] (rev a1)",
        "Tesla T4",
        "T4",
        "nvidia13",
    ),
    (
        "05:00.0 3D controller [0302]: NVIDIA Corporation GV100GL [Tesla V100] [10de:1db1]",
        "Tesla V100",
        "V100",
        "nvidia12",
    ),
    # An old pci.ids names nothing: the device id still finds the model.
    (
        "08:00.0 3D controller [0302]: NVIDIA Corporation Device [10de:1db1] (rev a1)",
        "Tesla V100-SXM2-16GB",
        "V100",
        "nvidia12",
    ),
    (
        "0000:07:00.0 3D controller [0302]: NVIDIA Corporation GA100 [A100 SXM4 40GB] "
        "[10de:20b0] (rev a1)",
        "A100 SXM4 40GB",
        "A100",
        "nvidia13",
    ),
    (
        "18:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2330] "
        "(rev a1)",
        "H100 SXM5 80GB",
        "H100",
        "nvidia13",
    ),
    # Not in the table: the chip family gives architecture and compute capability.
    (
        "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 "
        "[GeForce RTX 3090] [10de:2204] (rev a1)",
        "GeForce RTX 3090",
        None,
        "nvidia13",
    ),
    (
        "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GP104 "
        "[GeForce GTX 1080] [10de:1b80] (rev a1)",
        "GeForce GTX 1080",
        None,
        "nvidia12",
    ),
]


@pytest.mark.parametrize(("line", "name", "model", "backend"), LSPCI_CASES)
def test_parse_lspci_line(line: str, name: str, model: str | None, backend: str) -> None:
    gpus = t.parse_lspci(line)
    assert [(g.name, g.model, g.backend) for g in gpus] == [(name, model, backend)]


def test_parse_lspci_keeps_only_nvidia_display_controllers() -> None:
    text = "\n".join(
        [
            "00:02.0 VGA compatible controller [0300]: ASPEED Technology, Inc. ASPEED Graphics "
            "Family [1a03:2000] (rev 41)",
            "0000:0a:00.0 Bridge [0680]: NVIDIA Corporation GH100 [H100 NVSwitch] [10de:22a3] "
            "(rev a1)",
            "af:00.0 3D controller [0302]: NVIDIA Corporation GA102GL [A10] [10de:2236] (rev a1)",
            "af:00.1 Audio device [0403]: NVIDIA Corporation Device [10de:1aef] (rev a1)",
            "00:1f.0 ISA bridge [0601]: Intel Corporation C620 Series Chipset [8086:a1c1]",
        ]
    )
    assert [g.model for g in t.parse_lspci(text)] == ["A10"]


def test_parse_lspci_without_nvidia() -> None:
    text = "00:00.0 Host bridge [0600]: Intel Corporation 440FX - 82441FX PMC [8086:1237] (rev 02)"
    assert t.parse_lspci(text) == []


def test_gpus_from_sysfs() -> None:
    devices = [
        ("0x8086\n", "0x1237\n", "0x060000\n"),
        ("0x10de\n", "0x2236\n", "0x030200\n"),
        ("0x10de\n", "0x1aef\n", "0x040300\n"),
        ("0x10de\n", "0x22a3\n", "0x068000\n"),
    ]
    assert [g.model for g in t.gpus_from_sysfs(devices)] == ["A10"]


@pytest.mark.parametrize(
    ("cc", "backend"),
    [
        ((12, 0), "nvidia13"),
        ((9, 0), "nvidia13"),
        ((8, 6), "nvidia13"),
        ((7, 5), "nvidia13"),
        ((7, 2), "nvidia12"),
        ((7, 0), "nvidia12"),
        ((6, 0), "nvidia12"),
        ((5, 0), "nvidia12"),
        ((3, 7), "nvidia11"),
        ((3, 5), "nvidia11"),
        ((3, 0), "unsupported"),
        (None, "unsupported"),
    ],
)
def test_backend_for_compute_capability(cc: tuple[int, int] | None, backend: str) -> None:
    assert t.backend_for_compute_capability(cc) == backend


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0x223610DE", 0x2236),
        ("0x1EB810DE", 0x1EB8),
        ("2236", 0x2236),
        ("0x2236", 0x2236),
        ("10de:1db1", 0x1DB1),
        ("1a03:2000", None),
        ("0x20001A03", None),
        ("zz", None),
        (None, None),
        (0x2330, 0x2330),
    ],
)
def test_parse_pci_device_id(text: str | int | None, expected: int | None) -> None:
    assert t.parse_pci_device_id(text) == expected


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("NVIDIA A10", "A10"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA A10-24Q", "A10"),
        ("NVIDIA A100-SXM4-40GB", "A100"),
        ("NVIDIA A100-PCIE-40GB", "A100"),
        ("NVIDIA A100 80GB PCIe", "A100-80GB"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40", "L40"),
        ("NVIDIA L40S", "L40S"),
        ("Tesla V100S-PCIE-32GB", "V100-32GB"),
        ("Tesla V100-SXM2-32GB", "V100-32GB"),
        ("Tesla P100-PCIE-12GB", "P100-12GB"),
        ("NVIDIA GeForce RTX 4090", None),
        ("", None),
    ],
)
def test_lookup_name_matches_whole_tokens(name: str, model: str | None) -> None:
    found = t.lookup_name(name)
    assert (found.key if found else None) == model


@pytest.mark.parametrize(
    ("version", "backend", "adequate"),
    [
        ("580.95.05", "nvidia13", True),
        ("590.44.01", "nvidia13", True),
        ("570.148.08", "nvidia13", False),
        ("570.148.08", "nvidia12", True),
        ("525.60.13", "nvidia12", True),
        ("470.256.02", "nvidia12", False),
        (None, "nvidia13", False),
        ("", "nvidia12", False),
        (None, "cpu", True),
        ("580.95.05", "rocm", False),
    ],
)
def test_driver_adequate(version: str | None, backend: str, adequate: bool) -> None:
    assert t.driver_adequate(version, backend) is adequate


@pytest.mark.parametrize(
    ("shape", "model", "count", "backend"),
    [
        ("VM.GPU.A10.1", "A10", 1, "nvidia13"),
        ("VM.GPU.A10.2", "A10", 2, "nvidia13"),
        ("BM.GPU.A10.4", "A10", 4, "nvidia13"),
        ("VM.GPU3.1", "V100", 1, "nvidia12"),
        ("VM.GPU3.4", "V100", 4, "nvidia12"),
        ("BM.GPU3.8", "V100", 8, "nvidia12"),
        ("VM.GPU2.1", "P100", 1, "nvidia12"),
        ("BM.GPU4.8", "A100", 8, "nvidia13"),
        ("BM.GPU.A100-v2.8", "A100-80GB", 8, "nvidia13"),
        ("BM.GPU.H100.8", "H100", 8, "nvidia13"),
        ("VM.GPU.L40S.1", "L40S", 1, "nvidia13"),
        ("BM.GPU.L40S.4", "L40S", 4, "nvidia13"),
    ],
)
def test_oci_shapes(shape: str, model: str, count: int, backend: str) -> None:
    entry = t.lookup_oci_shape(shape)
    assert entry is not None
    assert (entry.gpu_model, entry.gpu_count) == (model, count)
    gpu_model = t.model_by_key(entry.gpu_model)
    assert gpu_model is not None
    assert t.backend_for_compute_capability(gpu_model.compute_capability) == backend


def test_every_shape_names_a_known_model() -> None:
    assert t.lookup_oci_shape("VM.Standard.E5.Flex") is None
    for shape in t.OCI_SHAPES.values():
        assert t.model_by_key(shape.gpu_model) is not None, shape


def test_table_has_no_duplicate_device_ids_or_keys() -> None:
    ids = [i for m in t.MODELS for i in m.pci_device_ids]
    assert len(ids) == len(set(ids))
    assert len({m.key for m in t.MODELS}) == len(t.MODELS)
    for m in t.MODELS:
        assert m.architecture in t.ARCHITECTURES


def _gpus(*names: str) -> list[t.Gpu]:
    return t.gpus_from_facts([{"name": n} for n in names])


# gpus, driver, requested backend, pinned branch ->
#   backend, action, target branch, kernel modules, fabric manager
DECISIONS = [
    (_gpus("NVIDIA A10"), None, "auto", None, "nvidia13", "install", 580, "open", False),
    # A preinstalled driver CUDA 12 accepts (a GPU image's): auto keeps it, with the CUDA 12.6
    # wheels; asking for nvidia13, or pinning a branch, still installs.
    (_gpus("NVIDIA A10"), "570.148.08", "auto", None, "nvidia12", "none", 580, "open", False),
    (
        _gpus("NVIDIA A10"),
        "570.148.08",
        "nvidia13",
        None,
        "nvidia13",
        "install",
        580,
        "open",
        False,
    ),
    (_gpus("NVIDIA A10"), "570.148.08", "auto", "580", "nvidia13", "install", 580, "open", False),
    (_gpus("NVIDIA A10"), "520.61.05", "auto", None, "nvidia13", "install", 580, "open", False),
    (_gpus("NVIDIA A10"), "580.95.05", "auto", None, "nvidia13", "none", 580, "open", False),
    (_gpus("NVIDIA A10"), "590.44.01", "auto", "580", "nvidia13", "none", 580, "open", False),
    (
        _gpus("Tesla V100-SXM2-16GB"),
        None,
        "auto",
        None,
        "nvidia12",
        "install",
        580,
        "proprietary",
        False,
    ),
    (
        _gpus("Tesla V100-SXM2-16GB"),
        "535.183.01",
        "auto",
        None,
        "nvidia12",
        "none",
        580,
        "proprietary",
        False,
    ),
    (
        _gpus("Tesla V100-SXM2-16GB"),
        None,
        "auto",
        "535",
        "nvidia12",
        "install",
        535,
        "proprietary",
        False,
    ),
    (
        _gpus("Tesla P100-PCIE-16GB"),
        None,
        "auto",
        None,
        "nvidia12",
        "install",
        580,
        "proprietary",
        False,
    ),
    (
        _gpus(*["NVIDIA H100 80GB HBM3"] * 8),
        "580.95.05",
        "auto",
        None,
        "nvidia13",
        "none",
        580,
        "open",
        True,
    ),
    (
        _gpus(*["NVIDIA A100-SXM4-40GB"] * 8),
        None,
        "auto",
        None,
        "nvidia13",
        "install",
        580,
        "open",
        True,
    ),
    (_gpus(*["NVIDIA A10"] * 4), None, "auto", None, "nvidia13", "install", 580, "open", False),
    # Mixed: the oldest GPU decides backend and kernel module flavour.
    (
        _gpus("NVIDIA A10", "Tesla V100-PCIE-16GB"),
        None,
        "auto",
        None,
        "nvidia12",
        "install",
        580,
        "proprietary",
        False,
    ),
    # nvidia12 wheels run on a Turing+ GPU too, when asked for.
    (_gpus("NVIDIA A10"), "535.183.01", "nvidia12", None, "nvidia12", "none", 580, "open", False),
    # The CPU backend needs no driver, GPU or not.
    (_gpus("NVIDIA A10"), None, "cpu", None, "cpu", "none", None, None, False),
    ([], None, "auto", None, "cpu", "none", None, None, False),
    ([], None, "cpu", "580", "cpu", "none", None, None, False),
]


@pytest.mark.parametrize(
    ("gpus", "driver", "requested", "pinned", "backend", "action", "target", "kmod", "fm"),
    DECISIONS,
)
def test_decide(
    gpus: list[t.Gpu],
    driver: str | None,
    requested: str,
    pinned: str | None,
    backend: str,
    action: str,
    target: int | None,
    kmod: str | None,
    fm: bool,
) -> None:
    d = t.decide(gpus, driver, requested=requested, pinned_branch=pinned)
    assert d.problems == ()
    assert (d.backend, d.action, d.target_branch, d.kernel_modules, d.fabric_manager) == (
        backend,
        action,
        target,
        kmod,
        fm,
    )
    assert d.requirements_file == t.BACKENDS[backend].requirements_file
    assert d.driver_adequate is (action == "none")


PROBLEMS = [
    (
        [],
        None,
        "auto",
        True,
        None,
        "nvidia_driver_require_gpu is true but this host has no NVIDIA GPU (nvidia-smi, lspci "
        "and /sys/bus/pci found none). Run on a GPU host or shape, or set "
        "nvidia_driver_require_gpu: false to use the CPU backend.",
    ),
    (
        [],
        None,
        "nvidia13",
        False,
        None,
        "nvidia_driver_backend is nvidia13 but this host has no NVIDIA GPU. Set "
        "nvidia_driver_backend: auto or cpu, or run on a GPU host.",
    ),
    (
        _gpus("Tesla V100-SXM2-16GB"),
        None,
        "nvidia13",
        False,
        None,
        "nvidia_driver_backend is nvidia13 (CUDA 13 wheels) but Tesla V100-SXM2-16GB (compute "
        "capability 7.0) needs compute capability >= 7.5. Set nvidia_driver_backend: nvidia12 "
        "or auto.",
    ),
    (
        _gpus("Tesla K80"),
        None,
        "auto",
        False,
        None,
        "Tesla K80 (compute capability 3.7) is a Kepler-class GPU: Faceswap's "
        "requirements_nvidia_11.txt would need the legacy 470 driver branch, which this "
        "project does not install or support. Set nvidia_driver_backend: cpu, or use a GPU "
        "with compute capability >= 5.0.",
    ),
    (
        _gpus("NVIDIA A10"),
        None,
        "auto",
        False,
        "470",
        "nvidia_driver_branch 470 is below 580, the minimum for backend nvidia13. Pin 580 or "
        "newer, or leave it empty.",
    ),
    (
        _gpus("Tesla V100-SXM2-16GB"),
        None,
        "auto",
        False,
        "590",
        "nvidia_driver_branch 590 no longer supports Tesla V100-SXM2-16GB (Volta); the last "
        "branch for it is 580. Pin nvidia_driver_branch: '580'.",
    ),
    (
        _gpus("NVIDIA A10"),
        None,
        "auto",
        False,
        "r580",
        "nvidia_driver_branch 'r580' is not a driver branch number; write e.g. '580', or leave "
        "it empty to use the table's branch.",
    ),
    (
        t.gpus_from_facts([{"name": "Mystery GPU"}]),
        None,
        "auto",
        False,
        None,
        "No Faceswap 3 backend supports Mystery GPU: compute capability below 3.5 or unknown. "
        "Set nvidia_driver_backend: cpu to train on the CPU.",
    ),
]


@pytest.mark.parametrize(
    ("gpus", "driver", "requested", "require_gpu", "pinned", "message"), PROBLEMS
)
def test_decide_problems(
    gpus: list[t.Gpu],
    driver: str | None,
    requested: str,
    require_gpu: bool,
    pinned: str | None,
    message: str,
) -> None:
    d = t.decide(gpus, driver, requested=requested, require_gpu=require_gpu, pinned_branch=pinned)
    assert d.problems == (message,)


def test_kepler_on_cpu_backend_is_fine() -> None:
    d = t.decide(_gpus("Tesla K80"), None, requested="cpu")
    assert (d.problems, d.backend, d.action) == ((), "cpu", "none")


def test_decision_to_dict_is_plain() -> None:
    d = t.decide(_gpus("NVIDIA A10"), "580.95.05").to_dict()
    assert d["problems"] == []
    assert d["backend"] == "nvidia13"
    assert d["driver_branch"] == 580


def test_describe_gpu_prefers_device_id_and_measured_values() -> None:
    gpu = t.describe_gpu(
        name="NVIDIA A10-4Q",
        pci_device_id="0x223610DE",
        memory_mib="4096",
        compute_capability="8.6",
    )
    assert (gpu.model, gpu.memory_mib, gpu.compute_capability) == ("A10", 4096, "8.6")
    table_only = t.describe_gpu(pci_device_id="0x2330")
    assert (table_only.name, table_only.memory_mib, table_only.architecture) == (
        "NVIDIA H100 80GB HBM3",
        80 * 1024,
        "Hopper",
    )
