# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one table of NVIDIA GPUs, Faceswap backends and driver branches.

Pure, typed functions, used by the ``nvidia_gpu_info`` module and by plain Python
(the spec and cost code can import it as
``ansible_collections.faceswap_oci.core.plugins.module_utils.gpu_table``).

Facts behind the numbers:

* Faceswap 3 requirements files (``requirements/requirements_nvidia_13.txt`` says
  "Cuda compatibility 7.5-", ``_nvidia_12`` covers 5.0-12.0, ``_nvidia_11`` covers 3.5-9.0).
* NVIDIA's CUDA minor-version compatibility: CUDA 13.x needs driver >= 580, 12.x >= 525,
  11.x >= 450 (docs.nvidia.com/deploy/cuda-compatibility).
* Driver branch 580 is the last one for Maxwell, Pascal and Volta; 470 the last for Kepler.
  The open kernel modules run on Turing and newer only, and are NVIDIA's default from 560 on
  (docs.nvidia.com/datacenter/tesla/driver-installation-guide/kernel-modules.html).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

Backend = Literal["cpu", "nvidia13", "nvidia12", "nvidia11", "unsupported"]
RequestedBackend = Literal["auto", "cpu", "nvidia13", "nvidia12"]
Action = Literal["none", "install"]

NVIDIA_PCI_VENDOR: Final = 0x10DE
# PCI display classes: VGA compatible controller, 3D controller. NVSwitch bridges (0680) and
# the HDMI audio function (0403) of an NVIDIA card are not GPUs.
GPU_PCI_CLASSES: Final = frozenset({0x0300, 0x0302})

REQUESTED_BACKENDS: Final[tuple[RequestedBackend, ...]] = ("auto", "cpu", "nvidia13", "nvidia12")


@dataclass(frozen=True)
class Architecture:
    name: str
    # Newest driver branch that still supports it; None while current branches do.
    last_driver_branch: int | None
    open_kernel_modules: bool


ARCHITECTURES: Final[dict[str, Architecture]] = {
    a.name: a
    for a in (
        Architecture("Kepler", 470, False),
        Architecture("Maxwell", 580, False),
        Architecture("Pascal", 580, False),
        Architecture("Volta", 580, False),
        Architecture("Turing", None, True),
        Architecture("Ampere", None, True),
        Architecture("Ada Lovelace", None, True),
        Architecture("Hopper", None, True),
        Architecture("Blackwell", None, True),
    )
}


@dataclass(frozen=True)
class BackendSpec:
    """One Faceswap requirements flavour: what pip installs for it (``requirements`` files of
    Faceswap's tree with ``-r``, ``extra`` specifiers), Faceswap's own name for it
    (FACESWAP_BACKEND) and the driver it needs. The one backend table: faceswap_oci.cache
    downloads wheels from it; the faceswap role's copy is checked against it."""

    backend: Backend
    requirements: tuple[str, ...]
    cuda: str | None
    min_driver_branch: int | None
    default_driver_branch: int | None
    faceswap: str = "nvidia"
    extra: tuple[str, ...] = ()

    @property
    def requirements_file(self) -> str:
        return self.requirements[0].rsplit("/", 1)[-1]


CPU_TORCH_SPEC: Final = "torch==2.12.1"
"""Faceswap's requirements_cpu.txt points at PyTorch's own CPU index, which is not reachable
everywhere; the package index's torch runs on the CPU too, and Faceswap's runtime check refuses
torch 2.13 and newer, hence the pin."""

BACKENDS: Final[dict[str, BackendSpec]] = {
    "nvidia13": BackendSpec(
        "nvidia13", ("requirements/requirements_nvidia_13.txt",), "13.0", 580, 580
    ),
    # 580 is the long-term branch and the last one that still drives V100/P100: one branch
    # for every GPU this project installs a driver for.
    "nvidia12": BackendSpec(
        "nvidia12", ("requirements/requirements_nvidia_12.txt",), "12.6", 525, 580
    ),
    # Kepler needs the legacy 470 branch, which this project does not install.
    "nvidia11": BackendSpec(
        "nvidia11", ("requirements/requirements_nvidia_11.txt",), "11.8", 450, 470
    ),
    "cpu": BackendSpec(
        "cpu",
        ("requirements/_requirements_base.txt",),
        None,
        None,
        None,
        faceswap="cpu",
        extra=(CPU_TORCH_SPEC,),
    ),
}


@dataclass(frozen=True)
class GpuModel:
    """A GPU model as the table knows it."""

    key: str
    name: str
    architecture: str
    compute_capability: tuple[int, int]
    memory_gib: int
    pci_device_ids: tuple[int, ...]
    # Lower-case substrings of the nvidia-smi name, most specific first across the table.
    name_patterns: tuple[str, ...]
    sxm: bool = False


def _m(
    key: str,
    name: str,
    arch: str,
    cc: tuple[int, int],
    mem: int,
    ids: tuple[int, ...],
    patterns: tuple[str, ...],
    sxm: bool = False,
) -> GpuModel:
    return GpuModel(key, name, arch, cc, mem, ids, patterns, sxm)


# Device ids from lspci's pci.ids names ("GA102GL [A10] [10de:2236]") and nvidia-smi
# "pci.device_id" values ("0x223610DE": device id in the high 16 bits).
MODELS: Final[tuple[GpuModel, ...]] = (
    _m("K80", "Tesla K80", "Kepler", (3, 7), 12, (0x102D,), ("k80",)),
    _m("M60", "Tesla M60", "Maxwell", (5, 2), 8, (0x13F2,), ("m60",)),
    _m("P100-12GB", "Tesla P100-PCIE-12GB", "Pascal", (6, 0), 12, (0x15F7,), ("p100-pcie-12gb",)),
    _m("P100", "Tesla P100-PCIE-16GB", "Pascal", (6, 0), 16, (0x15F8, 0x15F9), ("p100",)),
    _m("P40", "Tesla P40", "Pascal", (6, 1), 24, (0x1B38,), ("p40",)),
    _m(
        "V100-32GB",
        "Tesla V100-SXM2-32GB",
        "Volta",
        (7, 0),
        32,
        (0x1DB5, 0x1DB6, 0x1DF6),
        ("v100-sxm2-32gb", "v100-pcie-32gb", "v100s"),
        sxm=True,
    ),
    _m("V100", "Tesla V100-SXM2-16GB", "Volta", (7, 0), 16, (0x1DB1, 0x1DB4), ("v100",), sxm=True),
    _m("T4", "Tesla T4", "Turing", (7, 5), 16, (0x1EB8,), ("t4",)),
    _m(
        "A100-80GB",
        "NVIDIA A100-SXM4-80GB",
        "Ampere",
        (8, 0),
        80,
        (0x20B2, 0x20B5),
        ("a100-sxm4-80gb", "a100 80gb", "a100-pcie-80gb"),
        sxm=True,
    ),
    _m(
        "A100", "NVIDIA A100-SXM4-40GB", "Ampere", (8, 0), 40, (0x20B0, 0x20F1), ("a100",), sxm=True
    ),
    _m("A10G", "NVIDIA A10G", "Ampere", (8, 6), 24, (0x2237,), ("a10g",)),
    _m("A10", "NVIDIA A10", "Ampere", (8, 6), 24, (0x2236,), ("a10",)),
    _m("L4", "NVIDIA L4", "Ada Lovelace", (8, 9), 24, (0x27B8,), ("l4",)),
    _m("L40S", "NVIDIA L40S", "Ada Lovelace", (8, 9), 48, (0x26B9,), ("l40s",)),
    _m("L40", "NVIDIA L40", "Ada Lovelace", (8, 9), 48, (0x26B5,), ("l40",)),
    _m(
        "H100",
        "NVIDIA H100 80GB HBM3",
        "Hopper",
        (9, 0),
        80,
        (0x2330, 0x2331, 0x2321),
        ("h100",),
        sxm=True,
    ),
    _m("H200", "NVIDIA H200", "Hopper", (9, 0), 141, (0x2335,), ("h200",), sxm=True),
    _m("B200", "NVIDIA B200", "Blackwell", (10, 0), 180, (0x2901,), ("b200",), sxm=True),
)

_BY_KEY: Final[dict[str, GpuModel]] = {m.key: m for m in MODELS}
_BY_PCI_ID: Final[dict[int, GpuModel]] = {i: m for m in MODELS for i in m.pci_device_ids}


@dataclass(frozen=True)
class OciShape:
    shape: str
    gpu_model: str  # a key of MODELS
    gpu_count: int


# OCI GPU shapes (docs.oracle.com, Compute Shapes, GPU shapes) -> the GPU they carry.
OCI_SHAPES: Final[dict[str, OciShape]] = {
    s.shape: s
    for s in (
        OciShape("VM.GPU2.1", "P100", 1),
        OciShape("BM.GPU2.2", "P100", 2),
        OciShape("VM.GPU3.1", "V100", 1),
        OciShape("VM.GPU3.2", "V100", 2),
        OciShape("VM.GPU3.4", "V100", 4),
        OciShape("BM.GPU3.8", "V100", 8),
        OciShape("BM.GPU4.8", "A100", 8),
        OciShape("BM.GPU.A100-v2.8", "A100-80GB", 8),
        OciShape("VM.GPU.A10.1", "A10", 1),
        OciShape("VM.GPU.A10.2", "A10", 2),
        OciShape("BM.GPU.A10.4", "A10", 4),
        OciShape("VM.GPU.L40S.1", "L40S", 1),
        OciShape("VM.GPU.L40S.2", "L40S", 2),
        OciShape("BM.GPU.L40S.4", "L40S", 4),
        OciShape("BM.GPU.L40S-NC.4", "L40S", 4),
        OciShape("BM.GPU.H100.8", "H100", 8),
        OciShape("BM.GPU.H200.8", "H200", 8),
        OciShape("BM.GPU.B200.8", "B200", 8),
    )
}

# Chip code name prefixes (lspci's "GA102GL [...]") for devices missing from MODELS: the
# architecture and a conservative compute capability for that family.
_CHIP_FAMILIES: Final[tuple[tuple[str, str, tuple[int, int]], ...]] = (
    ("GB1", "Blackwell", (10, 0)),
    ("GB2", "Blackwell", (12, 0)),
    ("GH1", "Hopper", (9, 0)),
    ("AD1", "Ada Lovelace", (8, 9)),
    ("GA100", "Ampere", (8, 0)),
    ("GA1", "Ampere", (8, 6)),
    ("TU1", "Turing", (7, 5)),
    ("GV1", "Volta", (7, 0)),
    ("GP100", "Pascal", (6, 0)),
    ("GP1", "Pascal", (6, 1)),
    ("GM2", "Maxwell", (5, 2)),
    ("GM1", "Maxwell", (5, 0)),
    ("GK2", "Kepler", (3, 5)),
    ("GK1", "Kepler", (3, 0)),
)

_ARCH_BY_MAJOR: Final[dict[int, str]] = {
    3: "Kepler",
    5: "Maxwell",
    6: "Pascal",
    8: "Ampere",
    9: "Hopper",
    10: "Blackwell",
    12: "Blackwell",
}


@dataclass(frozen=True)
class Gpu:
    """One detected (or injected) GPU, completed from the table where it could be."""

    name: str
    pci_device_id: str | None = None  # "0x2236"
    memory_mib: int | None = None
    compute_capability: str | None = None  # "8.6"
    model: str | None = None  # a key of MODELS
    architecture: str | None = None
    backend: Backend = "unsupported"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """What the role must do, computed before it changes anything."""

    backend: Backend
    detected_backend: Backend
    requirements_file: str | None
    driver_version: str | None
    driver_branch: int | None
    min_driver_branch: int | None
    target_branch: int | None
    driver_adequate: bool
    action: Action
    kernel_modules: Literal["open", "proprietary"] | None
    fabric_manager: bool
    problems: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = list(self.problems)
        return d


def model_by_key(key: str) -> GpuModel | None:
    return _BY_KEY.get(key)


def parse_compute_capability(text: str | None) -> tuple[int, int] | None:
    """'8.6' -> (8, 6); anything else (None, '', '[N/A]') -> None."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def format_compute_capability(cc: tuple[int, int]) -> str:
    return f"{cc[0]}.{cc[1]}"


def parse_pci_device_id(text: str | int | None) -> int | None:
    """Device id from nvidia-smi's '0x223610DE', lspci's '2236' or '10de:2236', or an int."""
    if text is None:
        return None
    if isinstance(text, int):
        return text if text <= 0xFFFF else text >> 16
    s = text.strip().lower()
    if ":" in s:
        vendor, _, s = s.partition(":")
        if vendor not in ("10de", "0x10de"):
            return None
    if s.startswith("0x"):  # no str.removeprefix: targets may run Python 3.8
        s = s[2:]
    if not re.fullmatch(r"[0-9a-f]{1,8}", s):
        return None
    value = int(s, 16)
    if len(s) > 4:  # nvidia-smi: device id in the high half, vendor in the low half
        if value & 0xFFFF != NVIDIA_PCI_VENDOR:
            return None
        value >>= 16
    return value


def parse_driver_branch(version: str | None) -> int | None:
    """'580.95.05' -> 580; None or garbage -> None."""
    if not version:
        return None
    m = re.match(r"\s*(\d+)(?:\.|$)", version)
    return int(m.group(1)) if m else None


def lookup_pci_device(device_id: int | None) -> GpuModel | None:
    return None if device_id is None else _BY_PCI_ID.get(device_id)


def lookup_name(name: str | None) -> GpuModel | None:
    """Match an nvidia-smi or lspci product name ('NVIDIA A10', 'Tesla V100-SXM2-16GB')."""
    if not name:
        return None
    text = name.lower()
    best: tuple[int, GpuModel] | None = None
    for model in MODELS:
        for pattern in model.name_patterns:
            # Whole-token match, so 'a10' does not match 'a100' and 'l4' not 'l40s'.
            hit = re.search(rf"(?<![0-9a-z]){re.escape(pattern)}(?![0-9a-z])", text)
            if hit and (best is None or len(pattern) > best[0]):
                best = (len(pattern), model)
    return best[1] if best else None


def chip_family(chip: str | None) -> tuple[str, tuple[int, int]] | None:
    """'GA102GL' -> ('Ampere', (8, 6)): a fallback for GPUs missing from the table."""
    if not chip:
        return None
    code = chip.strip().upper()
    for prefix, arch, cc in _CHIP_FAMILIES:
        if code.startswith(prefix):
            return arch, cc
    return None


def lookup_oci_shape(shape: str) -> OciShape | None:
    return OCI_SHAPES.get(shape)


def backend_for_compute_capability(cc: tuple[int, int] | None) -> Backend:
    """Faceswap requirements flavour for one GPU."""
    if cc is None:
        return "unsupported"
    if cc >= (7, 5):
        return "nvidia13"
    if cc >= (5, 0):
        return "nvidia12"
    if cc >= (3, 5):
        return "nvidia11"
    return "unsupported"


def architecture_for(cc: tuple[int, int]) -> str:
    if cc[0] == 7:
        return "Turing" if cc >= (7, 5) else "Volta"
    if cc == (8, 9):
        return "Ada Lovelace"
    return _ARCH_BY_MAJOR.get(cc[0], "unknown")


def describe_gpu(
    name: str | None = None,
    pci_device_id: str | int | None = None,
    memory_mib: int | str | None = None,
    compute_capability: str | None = None,
    chip: str | None = None,
) -> Gpu:
    """Complete what a probe (or a test) says about one GPU from the table."""
    device = parse_pci_device_id(pci_device_id)
    model = lookup_pci_device(device) or lookup_name(name)
    cc = parse_compute_capability(compute_capability)
    arch: str | None = None
    if cc is None and model is not None:
        cc = model.compute_capability
    if model is not None:
        arch = model.architecture
    elif cc is not None:
        arch = architecture_for(cc)
    else:
        family = chip_family(chip)
        if family is not None:
            arch, cc = family
    memory: int | None
    try:
        memory = int(str(memory_mib).strip()) if memory_mib not in (None, "") else None
    except ValueError:
        memory = None
    if memory is None and model is not None:
        memory = model.memory_gib * 1024
    return Gpu(
        name=name or (model.name if model else "unknown NVIDIA GPU"),
        pci_device_id=None if device is None else f"0x{device:04x}",
        memory_mib=memory,
        compute_capability=None if cc is None else format_compute_capability(cc),
        model=model.key if model else None,
        architecture=arch,
        backend=backend_for_compute_capability(cc),
    )


_RANK: Final[dict[str, int]] = {"nvidia13": 3, "nvidia12": 2, "nvidia11": 1, "unsupported": 0}


def required_backend(gpus: Sequence[Gpu]) -> Backend:
    """The newest flavour every GPU can run: the oldest GPU decides; no GPU -> cpu."""
    if not gpus:
        return "cpu"
    return min((g.backend for g in gpus), key=lambda b: _RANK[b])


def driver_adequate(driver_version: str | None, backend: str) -> bool:
    spec = BACKENDS.get(backend)
    if spec is None:
        return False
    if spec.min_driver_branch is None:
        return True
    branch = parse_driver_branch(driver_version)
    return branch is not None and branch >= spec.min_driver_branch


def _gpu_label(gpus: Iterable[Gpu]) -> str:
    seen: dict[str, int] = {}
    for g in gpus:
        cc = f" (compute capability {g.compute_capability})" if g.compute_capability else ""
        label = g.name + cc
        seen[label] = seen.get(label, 0) + 1
    return ", ".join(f"{n}x {label}" if n > 1 else label for label, n in seen.items())


def decide(
    gpus: Sequence[Gpu],
    driver_version: str | None,
    requested: str = "auto",
    require_gpu: bool = False,
    pinned_branch: str | int | None = None,
) -> Decision:
    """The driver plan: backend, branch, and whether to install; problems say why not."""
    problems: list[str] = []
    detected = required_backend(gpus)
    if requested not in REQUESTED_BACKENDS:
        problems.append(
            f"nvidia_driver_backend is {requested!r}; choose one of "
            f"{', '.join(REQUESTED_BACKENDS)}."
        )
        requested = "auto"
    backend: Backend = detected if requested == "auto" else requested  # type: ignore[assignment]
    # A driver already loaded that CUDA 12 accepts but CUDA 13 does not (525-579, e.g. on a
    # cloud GPU image with its driver preinstalled): with `auto`, take the CUDA 12.6 wheels,
    # which cover every GPU the CUDA 13 ones do (compute capability 5.0-12.0), rather than
    # install a driver and reboot a paid VM. A pinned branch asks for an install on purpose.
    if (
        requested == "auto"
        and backend == "nvidia13"
        and pinned_branch in (None, "")
        and not driver_adequate(driver_version, "nvidia13")
        and driver_adequate(driver_version, "nvidia12")
    ):
        backend = "nvidia12"
    labels = _gpu_label(gpus)

    if not gpus:
        if require_gpu:
            problems.append(
                "nvidia_driver_require_gpu is true but this host has no NVIDIA GPU "
                "(nvidia-smi, lspci and /sys/bus/pci found none). Run on a GPU host or "
                "shape, or set nvidia_driver_require_gpu: false to use the CPU backend."
            )
        if backend in ("nvidia13", "nvidia12"):
            problems.append(
                f"nvidia_driver_backend is {backend} but this host has no NVIDIA GPU. "
                "Set nvidia_driver_backend: auto or cpu, or run on a GPU host."
            )
    elif detected == "unsupported" and backend != "cpu":
        problems.append(
            f"No Faceswap 3 backend supports {labels}: compute capability below 3.5 or "
            "unknown. Set nvidia_driver_backend: cpu to train on the CPU."
        )
    elif detected == "nvidia11" and backend != "cpu":
        problems.append(
            f"{labels} is a Kepler-class GPU: Faceswap's requirements_nvidia_11.txt would need "
            "the legacy 470 driver branch, which this project does not install or support. "
            "Set nvidia_driver_backend: cpu, or use a GPU with compute capability >= 5.0."
        )
    elif backend == "nvidia13" and detected == "nvidia12":
        problems.append(
            f"nvidia_driver_backend is nvidia13 (CUDA 13 wheels) but {labels} needs compute "
            "capability >= 7.5. Set nvidia_driver_backend: nvidia12 or auto."
        )

    spec = BACKENDS.get(backend)
    needs_driver = bool(gpus) and backend in ("nvidia13", "nvidia12")
    min_branch = spec.min_driver_branch if spec and needs_driver else None
    current = parse_driver_branch(driver_version)
    target: int | None = None
    if needs_driver:
        if pinned_branch not in (None, ""):
            parsed = parse_driver_branch(str(pinned_branch))
            if parsed is None or not re.fullmatch(r"\d+", str(pinned_branch).strip()):
                problems.append(
                    f"nvidia_driver_branch {pinned_branch!r} is not a driver branch number; "
                    "write e.g. '580', or leave it empty to use the table's branch."
                )
            target = parsed
        else:
            target = spec.default_driver_branch if spec else None
        if target is not None and min_branch is not None and target < min_branch:
            problems.append(
                f"nvidia_driver_branch {target} is below {min_branch}, the minimum for "
                f"backend {backend}. Pin {min_branch} or newer, or leave it empty."
            )
        for g in gpus:
            arch = ARCHITECTURES.get(g.architecture or "")
            if arch and arch.last_driver_branch and target and target > arch.last_driver_branch:
                problems.append(
                    f"nvidia_driver_branch {target} no longer supports {g.name} "
                    f"({arch.name}); the last branch for it is {arch.last_driver_branch}. "
                    f"Pin nvidia_driver_branch: '{arch.last_driver_branch}'."
                )
                break
    adequate = driver_adequate(driver_version, backend) if needs_driver else True
    action: Action = "install" if needs_driver and not adequate else "none"
    kernel_modules: Literal["open", "proprietary"] | None = None
    if needs_driver:
        open_ok = all(
            ARCHITECTURES[g.architecture].open_kernel_modules
            for g in gpus
            if g.architecture in ARCHITECTURES
        )
        kernel_modules = "open" if open_ok else "proprietary"
    # Eight SXM GPUs sit on an HGX board with NVSwitch, which needs Fabric Manager for CUDA.
    fabric_manager = needs_driver and len(gpus) >= 8 and all(_is_sxm(g) for g in gpus)
    return Decision(
        backend=backend,
        detected_backend=detected,
        requirements_file=spec.requirements_file if spec else None,
        driver_version=driver_version or None,
        driver_branch=current,
        min_driver_branch=min_branch,
        target_branch=target,
        driver_adequate=adequate,
        action=action,
        kernel_modules=kernel_modules,
        fabric_manager=fabric_manager,
        problems=tuple(problems),
    )


def _is_sxm(gpu: Gpu) -> bool:
    model = _BY_KEY.get(gpu.model or "")
    if model is None or not model.sxm:
        return False
    # PCIe variants share the table entry; their nvidia-smi name says PCIE.
    return "pcie" not in gpu.name.lower()


def gpus_from_facts(items: Iterable[Mapping[str, Any]]) -> list[Gpu]:
    """Injected facts (dicts with name / pci_device_id / memory_mib / compute_capability)."""
    out: list[Gpu] = []
    for item in items:
        out.append(
            describe_gpu(
                name=item.get("name"),
                pci_device_id=item.get("pci_device_id"),
                memory_mib=item.get("memory_mib"),
                compute_capability=item.get("compute_capability"),
                chip=item.get("chip"),
            )
        )
    return out


def parse_nvidia_smi_csv(text: str) -> tuple[list[Gpu], str | None]:
    """Parse ``nvidia-smi --query-gpu=name,pci.device_id,memory.total,driver_version[,compute_cap]
    --format=csv,noheader,nounits``: one line per GPU. Returns the GPUs and the driver version."""
    gpus: list[Gpu] = []
    driver: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            raise ValueError(f"unexpected nvidia-smi line: {line!r}")
        name, device, memory, version = parts[:4]
        cc = parts[4] if len(parts) > 4 else None
        driver = driver or version
        gpus.append(
            describe_gpu(
                name=name,
                pci_device_id=device,
                memory_mib=re.sub(r"\s*MiB$", "", memory),
                compute_capability=cc,
            )
        )
    return gpus, driver


_LSPCI_LINE: Final = re.compile(
    r"^(?P<slot>\S+)\s+(?P<cls_name>[^\[]*?)\s*\[(?P<cls>[0-9a-fA-F]{4})\]:\s*"
    r"(?P<desc>.*?)\s*\[(?P<vendor>[0-9a-fA-F]{4}):(?P<device>[0-9a-fA-F]{4})\]"
)


def parse_lspci(text: str) -> list[Gpu]:
    """Parse ``lspci -nn``: NVIDIA (vendor 10de) VGA and 3D controllers only."""
    gpus: list[Gpu] = []
    for raw in text.splitlines():
        m = _LSPCI_LINE.match(raw.strip())
        if not m:
            continue
        if int(m.group("vendor"), 16) != NVIDIA_PCI_VENDOR:
            continue
        if int(m.group("cls"), 16) not in GPU_PCI_CLASSES:
            continue
        desc = re.sub(r"^NVIDIA Corporation\s*", "", m.group("desc")).strip()
        chip, _, rest = desc.partition(" ")
        bracket = re.search(r"\[([^\]]+)\]", rest)
        name = bracket.group(1) if bracket else (desc or None)
        gpus.append(
            describe_gpu(
                name=name if name and name != "Device" else None,
                pci_device_id=m.group("device"),
                chip=chip,
            )
        )
    return gpus


def gpus_from_sysfs(devices: Iterable[tuple[str, str, str]]) -> list[Gpu]:
    """From /sys/bus/pci/devices/*/{vendor,device,class} contents ('0x10de', '0x2236',
    '0x030200'): the fallback on minimal hosts without pciutils."""
    gpus: list[Gpu] = []
    for vendor, device, klass in devices:
        try:
            if int(vendor.strip(), 16) != NVIDIA_PCI_VENDOR:
                continue
            if int(klass.strip(), 16) >> 8 not in GPU_PCI_CLASSES:
                continue
            dev = int(device.strip(), 16)
        except ValueError:
            continue
        gpus.append(describe_gpu(pci_device_id=dev))
    return gpus
