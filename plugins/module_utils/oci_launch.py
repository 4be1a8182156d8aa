# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launching a job's GPU instance: image choice, the failover ladder over shapes and
availability domains, waiting for RUNNING and reading the public address.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (
    HAS_OCI,
    JobResourceSpec,
    ladder_reason,
    launch_retry_strategy,
    list_all,
    settled,
    supports_preemptible,
    tagged_live,
)

if HAS_OCI:
    import oci
    from oci.core import models as M

OS_ALIASES: Final = {
    "ubuntu": "Canonical Ubuntu",
    "oracle linux": "Oracle Linux",
    "ol": "Oracle Linux",
}


def parse_os(text: str) -> tuple[str, str]:
    """``"Oracle Linux 9"`` -> ``("Oracle Linux", "9")``; ``"Ubuntu 24.04"`` -> Canonical Ubuntu."""
    name, _, version = text.strip().rpartition(" ")
    if not name or not version[:1].isdigit():
        raise ValueError(
            f"os {text!r}: expected '<name> <version>', "
            "e.g. 'Oracle Linux 9' or 'Canonical Ubuntu 24.04'"
        )
    name = OS_ALIASES.get(name.lower(), name)
    return name, version


def choose_image(images: Sequence[Any], prefer_gpu: bool) -> Any | None:
    """Newest AVAILABLE image, preferring the Oracle Linux ``-GPU-`` builds (NVIDIA driver
    included) when ``prefer_gpu``, and never choosing one when not."""
    usable = [i for i in images if i.lifecycle_state in (None, "AVAILABLE")]
    usable.sort(key=lambda i: str(i.time_created or ""), reverse=True)
    gpu = [i for i in usable if "-GPU-" in (i.display_name or "")]
    plain = [i for i in usable if "-GPU-" not in (i.display_name or "")]
    if prefer_gpu and gpu:
        return gpu[0]
    return plain[0] if plain else None


@dataclass(frozen=True)
class Rung:
    shape: str
    availability_domain: str
    preemptible: bool


@dataclass
class Attempt:
    shape: str
    availability_domain: str
    preemptible: bool
    # launched | out_of_host_capacity | limit_exceeded | quota_exceeded | throttled |
    # service_error | preemptible_unsupported | error | skipped
    result: str
    message: str = ""
    opc_request_id: str | None = None
    capacity_hint: str | None = None


def ladder(
    shapes: Sequence[str],
    availability_domains: Sequence[str],
    preemptible: bool,
    preemptible_fallback: bool,
    hints: dict[tuple[str, str], str] | None = None,
) -> list[Rung]:
    """Every (shape, AD, preemptible) to try, in order: shapes in the given order, within a shape
    the ADs that the capacity report calls AVAILABLE first (a hint only), and on-demand after all
    preemptible rungs when falling back."""
    modes = [preemptible] + ([False] if preemptible and preemptible_fallback else [])
    hints = hints or {}
    rank = {"AVAILABLE": 0, None: 1, "OUT_OF_HOST_CAPACITY": 2}
    out = []
    for mode in modes:
        for shape in shapes:
            ads = sorted(
                availability_domains,
                key=lambda ad, s=shape: rank.get(hints.get((s, ad)), 1),  # type: ignore[misc]
            )
            out += [Rung(shape, ad, mode) for ad in ads]
    return out


def match_availability_domains(wanted: Sequence[str] | None, names: Sequence[str]) -> list[str]:
    """The region's AD names for ``wanted`` (full names or suffixes such as ``AD-2``)."""
    if not wanted:
        return list(names)
    out = []
    for w in wanted:
        found = [n for n in names if n == w or n.endswith(":" + w) or n.upper().endswith(w.upper())]
        if not found:
            raise ValueError(f"availability domain {w!r} is not one of {list(names)}")
        out.append(found[0])
    return out


def capacity_hints(
    compute: Any, tenancy_id: str, ads: Sequence[str], shapes: Sequence[str]
) -> dict[tuple[str, str], str]:
    """Capacity report per AD (a hint: capacity can change before the launch). Errors -> no hint.

    ``tenancy_id`` is the root compartment: CreateComputeCapacityReportDetails.compartment_id
    "should always be the root compartment" (the SDK's docstring); a job's compartment is
    refused.
    """
    hints: dict[tuple[str, str], str] = {}
    for ad in ads:
        try:
            report = compute.create_compute_capacity_report(
                M.CreateComputeCapacityReportDetails(
                    compartment_id=tenancy_id,
                    availability_domain=ad,
                    shape_availabilities=[
                        M.CreateCapacityReportShapeAvailabilityDetails(instance_shape=s)
                        for s in shapes
                    ],
                ),
                retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY,
            ).data
        except oci.exceptions.ServiceError:
            continue
        for sa in report.shape_availabilities or []:
            hints[(sa.instance_shape, ad)] = sa.availability_status
    return hints


@dataclass(frozen=True)
class LaunchSpec(JobResourceSpec):
    subnet_id: str
    ssh_public_key: str
    boot_volume_gb: int
    display_name: str
    assign_public_ip: bool = True
    defined_tags: dict[str, dict[str, Any]] | None = None


def launch_details(spec: LaunchSpec, rung: Rung, image_id: str) -> Any:
    return M.LaunchInstanceDetails(
        compartment_id=spec.compartment_id,
        availability_domain=rung.availability_domain,
        shape=rung.shape,
        display_name=spec.display_name,
        source_details=M.InstanceSourceViaImageDetails(
            image_id=image_id, boot_volume_size_in_gbs=spec.boot_volume_gb
        ),
        create_vnic_details=M.CreateVnicDetails(
            subnet_id=spec.subnet_id,
            assign_public_ip=spec.assign_public_ip,
            display_name=spec.display_name,
            freeform_tags=spec.tags,
            defined_tags=spec.defined_tags or None,
        ),
        metadata={"ssh_authorized_keys": spec.ssh_public_key},
        freeform_tags=spec.tags,
        defined_tags=spec.defined_tags or None,
        preemptible_instance_config=(
            M.PreemptibleInstanceConfigDetails(
                preemption_action=M.TerminatePreemptionAction(preserve_boot_volume=False)
            )
            if rung.preemptible
            else None
        ),
    )


class LadderExhausted(Exception):
    def __init__(self, attempts: list[Attempt]) -> None:
        self.attempts = attempts
        lines = [
            f"{a.shape} in {a.availability_domain}"
            f"{' (preemptible)' if a.preemptible else ''}: {a.result}"
            for a in attempts
        ]
        super().__init__(
            "no capacity for any shape in any availability domain: " + "; ".join(lines)
        )


class MultipleInstances(Exception):
    """More than one live instance carries the job's tag: likely a leak (SkyPilot refuses too)."""

    def __init__(self, job: str, instances: Sequence[Any]) -> None:
        self.instances = list(instances)
        ids = ", ".join(f"{i.id} ({i.lifecycle_state})" for i in instances)
        super().__init__(
            f"{len(instances)} live instances carry faceswap-oci-job={job}: {ids}; this is "
            "likely a leak. Next: run `faceswap-oci down` (removes them all by tag) or terminate "
            "the extra ones, then run again"
        )


class LaunchFailed(Exception):
    def __init__(self, attempts: list[Attempt], error: BaseException) -> None:
        super().__init__(str(error))
        self.attempts = attempts
        self.error = error


def run_ladder(
    compute: Any,
    spec: LaunchSpec,
    rungs: Sequence[Rung],
    image_for: Callable[[str], str],
    hints: dict[tuple[str, str], str] | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    retry_strategy: Any = None,
) -> tuple[Any, list[Attempt]]:
    """Try each rung until one launches.

    Capacity answers, throttling or 5xx that outlived the retries, and a shape refusing
    preemptible capacity move on to the next rung; any other error stops. A preemptible rung of
    a bare metal shape is skipped without a call (VM shapes only).
    """
    attempts: list[Attempt] = []
    strategy = retry_strategy or launch_retry_strategy()
    for rung in rungs:
        hint = (hints or {}).get((rung.shape, rung.availability_domain))
        if rung.preemptible and not supports_preemptible(rung.shape):
            attempt = Attempt(
                rung.shape,
                rung.availability_domain,
                True,
                "preemptible_unsupported",
                "preemptible capacity exists on VM shapes only; not tried",
                None,
                hint,
            )
            attempts.append(attempt)
            if on_attempt:
                on_attempt(attempt)
            continue
        try:
            image_id = image_for(rung.shape)
            resp = compute.launch_instance(
                launch_details(spec, rung, image_id), retry_strategy=strategy
            )
        except oci.exceptions.ServiceError as exc:
            reason = ladder_reason(exc)
            attempt = Attempt(
                rung.shape,
                rung.availability_domain,
                rung.preemptible,
                reason or "error",
                f"{exc.status} {exc.code}: {exc.message}",
                exc.request_id,
                hint,
            )
            attempts.append(attempt)
            if on_attempt:
                on_attempt(attempt)
            if reason is None:
                raise LaunchFailed(attempts, exc) from exc
            continue
        attempt = Attempt(
            rung.shape,
            rung.availability_domain,
            rung.preemptible,
            "launched",
            resp.data.id,
            resp.request_id,
            hint,
        )
        attempts.append(attempt)
        if on_attempt:
            on_attempt(attempt)
        return resp.data, attempts
    raise LadderExhausted(attempts)


def find_instance(compute: Any, compartment_id: str, job: str) -> Any | None:
    """The job's live instance (PROVISIONING/STARTING/RUNNING/STOPPED/...), or None.

    Raises ``MultipleInstances`` when there are several: which one the job's data is on cannot
    be known, and the others are paid for.
    """
    live = tagged_live(list_all(compute.list_instances, compartment_id), job)
    if len(live) > 1:
        raise MultipleInstances(job, live)
    return live[0] if live else None


@dataclass
class Address:
    public_ip: str | None = None
    private_ip: str | None = None
    vnic_id: str | None = None


def primary_address(
    compute: Any, vn: Any, compartment_id: str, instance_id: str, timeout: int
) -> Address:
    """Public and private IP of the instance's primary VNIC (waits for the attachment)."""
    deadline = time.monotonic() + timeout
    attachments = [
        a
        for a in list_all(compute.list_vnic_attachments, compartment_id, instance_id=instance_id)
        if a.lifecycle_state in ("ATTACHING", "ATTACHED")
    ]
    if not attachments:
        return Address()
    att = settled(
        compute,
        compute.get_vnic_attachment,
        attachments[0],
        "ATTACHED",
        max(1, int(deadline - time.monotonic())),
        fail_states=["DETACHED"],
    )
    vnic = vn.get_vnic(att.vnic_id, retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY).data
    return Address(vnic.public_ip, vnic.private_ip, vnic.id)


def instance_facts(inst: Any, address: Address, attempts: Sequence[Attempt]) -> dict[str, Any]:
    cfg = inst.shape_config
    return {
        "instance_id": inst.id,
        "display_name": inst.display_name,
        "lifecycle_state": inst.lifecycle_state,
        "shape": inst.shape,
        "availability_domain": inst.availability_domain,
        "preemptible": inst.preemptible_instance_config is not None,
        "image_id": inst.image_id,
        "gpu_model": getattr(cfg, "gpu_description", None) if cfg else None,
        "gpus": getattr(cfg, "gpus", None) if cfg else None,
        "time_created": inst.time_created.isoformat() if inst.time_created else None,
        "boot_volume_gb": getattr(inst.source_details, "boot_volume_size_in_gbs", None),
        "public_ip": address.public_ip,
        "private_ip": address.private_ip,
        "attempts": [asdict(a) for a in attempts],
    }


@dataclass
class ImageCache:
    """Resolves (and remembers) the image for each shape: an explicit OCID, or by OS."""

    compute: Any
    compartment_id: str
    os: str
    image_id: str | None = None
    prefer_gpu: bool = True
    chosen: dict[str, str] = field(default_factory=dict)

    def __call__(self, shape: str) -> str:
        if self.image_id:
            return self.image_id
        if shape not in self.chosen:
            name, version = parse_os(self.os)
            images = list_all(
                self.compute.list_images,
                self.compartment_id,
                operating_system=name,
                operating_system_version=version,
                shape=shape,
                sort_by="TIMECREATED",
                sort_order="DESC",
            )
            image = choose_image(images, self.prefer_gpu and name == "Oracle Linux")
            if image is None:
                raise ValueError(f"no {self.os} image offered for shape {shape}")
            self.chosen[shape] = image.id
        return self.chosen[shape]
