"""The events roles send: one frozen dataclass per ``fsoci_event`` kind.

A role reports a fact with ``ansible.builtin.debug: msg: {fsoci_event: {kind: <kind>, ...}}``
(docs/contracts.md); the wrapper turns it into a :class:`faceswap_oci.events.Report` whose
``typed`` is the dataclass registered here for that kind. ``tests/unit/test_role_events.py``
walks every ``fsoci_event`` in ``roles/`` and ``playbooks/``: each kind is registered, each
message's keys are its dataclass's fields (the required ones all there), and each registered
kind is sent somewhere, so renaming a key on one side fails a test instead of the Python
silently reading ``None``. Values arrive as the role rendered them (JSON types).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RoleEvent:
    """Base of the typed role events; ``KIND`` is the ``fsoci_event.kind`` it stands for."""

    KIND = ""


@dataclass(frozen=True)
class FaceswapPython(RoleEvent):
    KIND = "faceswap_python"
    host: Any
    python: Any
    chosen: Any
    candidates: Any


@dataclass(frozen=True)
class FaceswapReady(RoleEvent):
    KIND = "faceswap_ready"
    host: Any
    commit: Any
    backend: Any
    python: Any
    faceswap_dir: Any
    torch: Any
    keras: Any
    cuda_available: Any
    gpu: Any
    smoke_checked: Any


@dataclass(frozen=True)
class FaceswapWeights(RoleEvent):
    KIND = "faceswap_weights"
    host: Any
    cache_dir: Any
    plugins: Any
    missing: Any


@dataclass(frozen=True)
class Faces(RoleEvent):
    KIND = "faces"
    side: Any
    count: Any
    min: Any
    extracted: Any


@dataclass(frozen=True)
class ModelReset(RoleEvent):
    KIND = "model_reset"
    why: Any
    kept: Any
    old_iterations: Any


@dataclass(frozen=True)
class TrainStarted(RoleEvent):
    KIND = "train_started"
    supervisor: Any
    unit: Any
    resumed_from: Any
    gpus: Any
    distributed: Any
    exclude_gpus: Any


@dataclass(frozen=True)
class Trained(RoleEvent):
    KIND = "trained"
    iterations: Any
    state: Any
    stop_reason: Any


@dataclass(frozen=True)
class TrainStopped(RoleEvent):
    KIND = "train_stopped"
    iterations: Any
    was_running: Any


@dataclass(frozen=True)
class PreviewUpdatedReport(RoleEvent):
    """Becomes :class:`faceswap_oci.events.PreviewUpdated`, not a Report."""

    KIND = "preview_updated"
    path: Any
    iteration: Any


@dataclass(frozen=True)
class Converted(RoleEvent):
    KIND = "converted"
    output: Any
    manifest: Any
    model_iterations: Any


@dataclass(frozen=True)
class Gpu(RoleEvent):
    KIND = "gpu"
    action: Any
    backend: Any
    branch: Any
    distribution: Any
    driver_adequate: Any
    driver_version: Any
    gpu_count: Any
    gpus: Any
    requirements_file: Any
    source: Any


@dataclass(frozen=True)
class OciAttempts(RoleEvent):
    """The launch ladder's attempts: with the instance when one runs, with ``failed`` and
    ``message`` when none could be launched."""

    KIND = "oci_attempts"
    job: Any
    attempts: Any
    instance_id: Any = None
    failed: Any = None
    message: Any = None
    availability_domain: Any = None
    shape: Any = None
    gpu_model: Any = None
    gpus: Any = None
    preemptible: Any = None
    boot_volume_gb: Any = None
    time_created: Any = None


@dataclass(frozen=True)
class OciNetwork(RoleEvent):
    KIND = "oci_network"
    job: Any
    created: Any
    reused_subnet: Any
    subnet_id: Any


@dataclass(frozen=True)
class OciTeardown(RoleEvent):
    KIND = "oci_teardown"
    job: Any
    removed: Any
    already_gone: Any


@dataclass(frozen=True)
class OciWatchdog(RoleEvent):
    KIND = "oci_watchdog"
    deadline: Any


@dataclass(frozen=True)
class Results(RoleEvent):
    KIND = "results"
    dest: Any
    files: Any
    bytes_moved: Any
    transferred: Any


@dataclass(frozen=True)
class Upload(RoleEvent):
    """faceswap_upload: media_push's ``upload`` result (plugins/action/media_push.py)."""

    KIND = "upload"
    sides: Any
    bytes_sent: Any
    files_transferred: Any
    verified: Any
    rsync_seconds: Any


@dataclass(frozen=True)
class Sweep(RoleEvent):
    """playbooks/sweep.yml: what the sweep found tagged with a job."""

    KIND = "sweep"
    resources: Any


REGISTRY: dict[str, type[RoleEvent]] = {
    cls.KIND: cls
    for cls in (
        FaceswapPython, FaceswapReady, FaceswapWeights, Faces, ModelReset, TrainStarted, Trained,
        TrainStopped, PreviewUpdatedReport, Converted, Gpu, OciAttempts, OciNetwork, OciTeardown,
        OciWatchdog, Results, Upload, Sweep,
    )
}  # fmt: skip


def fields_of(kind: str) -> tuple[set[str], set[str]]:
    """(every field, the required fields) of a registered kind."""
    found = dataclasses.fields(REGISTRY[kind])
    required = {
        f.name
        for f in found
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    return {f.name for f in found}, required


def parse(kind: str, data: dict[str, Any]) -> RoleEvent | None:
    """The typed event of a report; None for a kind not registered or a message without its
    required fields (the wrapper then keeps the plain Report, never raises)."""
    cls = REGISTRY.get(kind)
    if cls is None:
        return None
    names, required = fields_of(kind)
    if not required <= set(data):
        return None
    return cls(**{k: v for k, v in data.items() if k in names})
