#!/usr/bin/python
# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_gpu_info
short_description: Detect NVIDIA GPUs and decide the Faceswap backend and driver they need
version_added: "0.1.0"
description:
  - Reads the host's NVIDIA GPUs from C(nvidia-smi) when it works, else from C(lspci -nn)
    (vendor 10de, VGA and 3D controllers), else from C(/sys/bus/pci/devices) on minimal hosts
    without pciutils.
  - Completes each GPU from the project's GPU table (model, architecture, compute capability,
    memory) and maps it to the Faceswap requirements flavour it needs
    (compute capability >= 7.5 C(nvidia13), 5.0-7.4 C(nvidia12), no GPU C(cpu)).
  - Decides whether the installed driver is adequate (C(nvidia13) needs branch 580 or newer,
    C(nvidia12) 525 or newer) and which branch to install otherwise.
  - Never changes the host. Problems (no GPU where one is required, a GPU no backend supports,
    a pinned branch that cannot work) are returned in RV(problems), not raised, so the caller
    can fail with its own message.
author:
  - faceswap-oci developers (@faceswap-oci)
options:
  backend:
    description:
      - The Faceswap backend wanted. V(auto) takes the one the detected GPUs need.
    type: str
    choices: [auto, cpu, nvidia13, nvidia12]
    default: auto
  driver_branch:
    description:
      - Driver branch to install when the present driver is not adequate, for example V("580").
      - Empty means the table's branch for the backend (580).
    type: str
    default: ""
  require_gpu:
    description:
      - Report a problem when the host has no NVIDIA GPU.
    type: bool
    default: false
  gpus:
    description:
      - Injected GPU facts that replace detection (tests, check mode, planning for another host).
      - Each item needs O(gpus[].name) or O(gpus[].pci_device_id); the table fills in the rest.
    type: list
    elements: dict
    suboptions:
      name:
        description: Product name as nvidia-smi prints it, for example V(NVIDIA A10).
        type: str
      pci_device_id:
        description: PCI device id, for example V(0x2236) or nvidia-smi's V(0x223610DE).
        type: str
      memory_mib:
        description: Memory in MiB.
        type: int
      compute_capability:
        description: Compute capability, for example V(8.6).
        type: str
  driver_version:
    description:
      - Driver version that goes with injected O(gpus), for example V(580.95.05).
      - Ignored unless O(gpus) is given.
    type: str
extends_documentation_fragment: [faceswap_oci.core.attributes.READ_ONLY]
notes:
  - C(nvidia-smi) drivers older than 510 do not know the C(compute_cap) field; the module then
    queries without it and takes the compute capability from the table.
seealso:
  - name: NVIDIA CUDA compatibility
    description: The minimum driver branch for each CUDA major version.
    link: https://docs.nvidia.com/deploy/cuda-compatibility/
"""

EXAMPLES = r"""
- name: Detect the GPUs and the backend they need
  faceswap_oci.core.nvidia_gpu_info:
  register: gpu_info

- name: Plan for an A10 with no driver yet, without probing
  faceswap_oci.core.nvidia_gpu_info:
    gpus:
      - name: NVIDIA A10
    require_gpu: true
  register: gpu_plan

- name: Pin the driver branch
  faceswap_oci.core.nvidia_gpu_info:
    backend: nvidia13
    driver_branch: "580"
  register: gpu_info
"""

RETURN = r"""
source:
  description: Where the GPU list came from.
  returned: always
  type: str
  choices: [nvidia-smi, lspci, sysfs, injected, none]
  sample: nvidia-smi
gpus:
  description: The GPUs found, completed from the table.
  returned: always
  type: list
  elements: dict
  sample:
    - name: NVIDIA A10
      pci_device_id: "0x2236"
      memory_mib: 23028
      compute_capability: "8.6"
      model: A10
      architecture: Ampere
      backend: nvidia13
gpu_count:
  description: Number of GPUs found.
  returned: always
  type: int
  sample: 1
driver_version:
  description: Version of the loaded NVIDIA driver; null when nvidia-smi did not answer.
  returned: always
  type: str
  sample: 580.95.05
driver_branch:
  description: Major number of RV(driver_version).
  returned: always
  type: int
  sample: 580
nvidia_smi_error:
  description: First line of nvidia-smi's error when it is installed but failed (driver not loaded).
  returned: always
  type: str
  sample: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
backend:
  description: Faceswap backend to use (O(backend), or the detected one for V(auto)).
  returned: always
  type: str
  sample: nvidia13
detected_backend:
  description: Backend the GPUs need; V(cpu) without GPU, V(unsupported) for GPUs no backend runs.
  returned: always
  type: str
  sample: nvidia13
requirements_file:
  description: Faceswap requirements file of RV(backend).
  returned: always
  type: str
  sample: requirements_nvidia_13.txt
min_driver_branch:
  description: Oldest driver branch RV(backend) works with; null for V(cpu).
  returned: always
  type: int
  sample: 580
target_branch:
  description: Branch to install when RV(action) is V(install) (O(driver_branch) or the table's).
  returned: always
  type: int
  sample: 580
driver_adequate:
  description: Whether the loaded driver is new enough for RV(backend) (always true for cpu).
  returned: always
  type: bool
  sample: true
action:
  description: V(none) when nothing has to change, V(install) when a driver must be installed.
  returned: always
  type: str
  sample: none
kernel_modules:
  description: Kernel module flavour for the GPUs (V(open) for Turing and newer only).
  returned: always
  type: str
  sample: open
fabric_manager:
  description: Whether the host has eight SXM GPUs on an NVSwitch board, which need Fabric Manager.
  returned: always
  type: bool
  sample: false
problems:
  description: Reasons the host cannot run the wanted backend, each naming the fix; empty if none.
  returned: always
  type: list
  elements: str
  sample: []
"""

import glob  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.faceswap_oci.core.plugins.module_utils.gpu_table import (  # noqa: E402
    REQUESTED_BACKENDS,
    Gpu,
    decide,
    gpus_from_facts,
    gpus_from_sysfs,
    parse_driver_branch,
    parse_lspci,
    parse_nvidia_smi_csv,
)

QUERY_FIELDS = "name,pci.device_id,memory.total,driver_version"
SYSFS_PCI = "/sys/bus/pci/devices"


def _first_line(*texts: str) -> str:
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                return line.strip()
    return ""


def _read_sysfs(root: str) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for dev in sorted(glob.glob(os.path.join(root, "*"))):
        try:
            values = []
            for name in ("vendor", "device", "class"):
                with open(os.path.join(dev, name), encoding="ascii") as fh:
                    values.append(fh.read())
        except OSError:
            continue
        out.append((values[0], values[1], values[2]))
    return out


def probe(
    run: Callable[[list[str]], tuple[int, str, str]],
    which: Callable[[str], str | None],
    sysfs_root: str = SYSFS_PCI,
) -> tuple[str, list[Gpu], str | None, str | None]:
    """Find the GPUs: (source, gpus, driver_version, nvidia_smi_error)."""
    smi_error: str | None = None
    smi = which("nvidia-smi")
    if smi:
        fmt = "--format=csv,noheader,nounits"
        rc, out, err = run([smi, f"--query-gpu={QUERY_FIELDS},compute_cap", fmt])
        if rc != 0 and "compute_cap" in out + err:
            rc, out, err = run([smi, f"--query-gpu={QUERY_FIELDS}", fmt])
        if rc == 0:
            try:
                gpus, driver = parse_nvidia_smi_csv(out)
            except ValueError as exc:
                smi_error = str(exc)
            else:
                if gpus:
                    return "nvidia-smi", gpus, driver, None
                smi_error = "nvidia-smi listed no GPU"
        else:
            smi_error = _first_line(out, err) or f"nvidia-smi exited with {rc}"
    lspci = which("lspci")
    if lspci:
        rc, out, _err = run([lspci, "-nn"])
        if rc == 0:
            gpus = parse_lspci(out)
            return ("lspci" if gpus else "none"), gpus, None, smi_error
    gpus = gpus_from_sysfs(_read_sysfs(sysfs_root))
    return ("sysfs" if gpus else "none"), gpus, None, smi_error


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "backend": {"type": "str", "default": "auto", "choices": list(REQUESTED_BACKENDS)},
            "driver_branch": {"type": "str", "default": ""},
            "require_gpu": {"type": "bool", "default": False},
            "gpus": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "name": {"type": "str"},
                    "pci_device_id": {"type": "str"},
                    "memory_mib": {"type": "int"},
                    "compute_capability": {"type": "str"},
                },
            },
            "driver_version": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params: dict[str, Any] = module.params
    smi_error: str | None = None
    if params["gpus"] is not None:
        for i, item in enumerate(params["gpus"]):
            if not item.get("name") and not item.get("pci_device_id"):
                module.fail_json(
                    msg=f"gpus[{i}]: give a name (e.g. 'NVIDIA A10') or a pci_device_id "
                    "(e.g. '0x2236') for each injected GPU."
                )
        source = "injected"
        gpus = gpus_from_facts(params["gpus"])
        driver = params["driver_version"] or None
    else:

        def run(argv: list[str]) -> tuple[int, str, str]:
            rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
            return int(rc), str(out), str(err)

        def which(name: str) -> str | None:
            path = module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin", "/usr/bin"])
            return str(path) if path else None

        source, gpus, driver, smi_error = probe(run, which)

    decision = decide(
        gpus,
        driver,
        requested=params["backend"],
        require_gpu=params["require_gpu"],
        pinned_branch=params["driver_branch"] or None,
    )
    module.exit_json(
        changed=False,
        source=source,
        gpus=[g.to_dict() for g in gpus],
        gpu_count=len(gpus),
        driver_version=driver,
        driver_branch=parse_driver_branch(driver),
        nvidia_smi_error=smi_error,
        **{
            k: v
            for k, v in decision.to_dict().items()
            if k not in ("driver_version", "driver_branch")
        },
    )


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
