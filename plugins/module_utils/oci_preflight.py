# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only checks of an OCI account before a job launches anything (`faceswap-oci check`).

One real API call per service the job uses (identity, compute, network, object storage), the
compartment, and the GPU service limits per availability domain for the ladder's shapes
(``LimitsClient.get_resource_availability``). Every call only reads. Each result is a plain
``Item`` naming what was checked, ok/warn/fail, and the fix; no message holds a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (
    HAS_OCI,
    ConfigProblems,
    clients_from_params,
    error_text,
)

if HAS_OCI:
    import oci


@dataclass(frozen=True)
class Item:
    name: str
    level: str  # ok | warn | fail
    detail: str
    fix: str = ""


# Shape -> the compute service limit that counts its GPUs, as the Limits API names them
# (`oci limits resource-availability get --service-name compute --limit-name gpu-a10-count`;
# the console's "Limits, Quotas and Usage" page lists the same names, e.g. gpu-a10-count,
# gpu3-count, gpu4-count, gpu-a100-v2-count). GPU limits are scoped to an availability domain
# and counted in GPUs, so VM.GPU.A10.2 needs 2 available. Shapes not in this pattern get
# their name derived the same way and, when the service does not know it, a warning.
_GPU_SHAPE_RE: Final = re.compile(r"^(?:VM|BM)\.GPU(?:\.(?P<model>[A-Za-z0-9-]+)|(?P<gen>\d))\.")


def gpu_limit(shape: str) -> tuple[str, int] | None:
    """(limit name, GPUs the shape needs) for a GPU shape, else None."""
    m = _GPU_SHAPE_RE.match(shape)
    if m is None:
        return None
    count = int(shape.rsplit(".", 1)[-1]) if shape.rsplit(".", 1)[-1].isdigit() else 1
    if m.group("gen"):
        return f"gpu{m.group('gen')}-count", count
    return f"gpu-{m.group('model').lower()}-count", count


def _fix_for(exc: BaseException, policy: str) -> str:
    if HAS_OCI and isinstance(exc, oci.exceptions.ServiceError):
        if exc.status == 401:
            return (
                "the API does not accept the key: check user, fingerprint and key_file of the "
                "profile, and that the public key is uploaded to the user (Identity > Users > "
                "API keys)"
            )
        if exc.status == 404:
            return f"the user's group needs a policy such as: {policy}"
    return "check the network path to the OCI API and run the check again"


def check_account(params: Mapping[str, Any], shapes: list[str]) -> list[Item]:
    """Every read-only check of the account, in order; stops after the signer when the
    config cannot authenticate (each later call would fail the same way)."""
    items: list[Item] = []
    compartment = str(params["compartment_id"])
    try:
        config, identity, compute, network, storage, limits = clients_from_params(
            params,
            oci.identity.IdentityClient,
            oci.core.ComputeClient,
            oci.core.VirtualNetworkClient,
            oci.object_storage.ObjectStorageClient,
            oci.limits.LimitsClient,
        )
    except ConfigProblems as exc:
        return [Item("oci config", "fail", p.problem, p.fix) for p in exc.problems]
    except Exception as exc:  # the signer: a token file or principal that is not there
        return [
            Item(
                "oci signer",
                "fail",
                f"auth {params.get('auth_type')}: {type(exc).__name__}: {exc}",
                "check target.oci.auth and the files or environment it needs",
            )
        ]
    items.append(Item("oci config", "ok", f"auth {params.get('auth_type')}, signer built"))
    where = f"in compartment {compartment}"
    try:
        found = identity.get_compartment(compartment).data
        items.append(Item("compartment", "ok", f"{found.name} ({found.lifecycle_state})"))
    except Exception as exc:
        items.append(
            Item(
                "compartment",
                "fail",
                f"GetCompartment {compartment}: {error_text(exc)}",
                _fix_for(exc, f"Allow group <yours> to inspect compartments {where}"),
            )
        )
        if HAS_OCI and isinstance(exc, oci.exceptions.ServiceError) and exc.status == 401:
            return items
    ads: list[str] = []
    for name, call, policy in (
        (
            "identity",
            lambda: [a.name for a in identity.list_availability_domains(compartment).data],
            f"Allow group <yours> to inspect availability-domains {where}",
        ),
        (
            "compute",
            lambda: compute.list_shapes(compartment, limit=1).data,
            f"Allow group <yours> to manage instance-family {where}",
        ),
        (
            "network",
            lambda: network.list_vcns(compartment, limit=1).data,
            f"Allow group <yours> to manage virtual-network-family {where}",
        ),
        (
            "object storage",
            lambda: storage.get_namespace().data,
            f"Allow group <yours> to manage object-family {where}",
        ),
    ):
        try:
            result = call()
        except Exception as exc:
            items.append(Item(f"api {name}", "fail", error_text(exc), _fix_for(exc, policy)))
            continue
        if name == "identity":
            ads = list(result)
        detail = f"{len(ads)} availability domain(s)" if name == "identity" else "read-only call ok"
        if name == "object storage":
            detail = f"namespace {result}"
        items.append(Item(f"api {name}", "ok", detail))
    items.extend(_gpu_limits(limits, config, compartment, shapes, ads))
    return items


def _gpu_limits(
    limits: Any, config: Mapping[str, Any], compartment: str, shapes: list[str], ads: list[str]
) -> list[Item]:
    """Available GPUs per AD for each shape of the ladder; a shape with none anywhere fails,
    one with some somewhere is ok (the ladder tries every AD)."""
    items: list[Item] = []
    tenancy = str(config.get("tenancy") or compartment)
    for shape in shapes:
        limit = gpu_limit(shape)
        if limit is None:
            items.append(Item(f"limit {shape}", "warn", "not a GPU shape; no GPU limit checked"))
            continue
        name, needed = limit
        per_ad: list[str] = []
        usable = 0
        error: BaseException | None = None
        for ad in ads:
            try:
                found = limits.get_resource_availability(
                    "compute", name, compartment_id=tenancy, availability_domain=ad
                ).data
            except Exception as exc:
                error = exc
                break
            available = int(found.available or 0)
            usable += available >= needed
            per_ad.append(f"{ad.rsplit('-', 2)[-2]}-{ad.rsplit('-', 1)[-1]}: {available}")
        if error is not None:
            items.append(
                Item(
                    f"limit {shape}",
                    "warn",
                    f"{name}: {error_text(error)}",
                    "see Governance > Limits, Quotas and Usage in the console for this shape",
                )
            )
        elif usable:
            items.append(
                Item(f"limit {shape}", "ok", f"{name} available per AD ({', '.join(per_ad)})")
            )
        else:
            items.append(
                Item(
                    f"limit {shape}",
                    "fail",
                    f"{name}: fewer than {needed} GPU(s) available in every AD "
                    f"({', '.join(per_ad) or 'no AD'})",
                    f"request a service limit increase for {name} (Governance > Limits, Quotas "
                    "and Usage > Request a service limit increase) or list another shape in "
                    "target.oci.shapes",
                )
            )
    return items


def instance_state(params: Mapping[str, Any], instance_id: str) -> str:
    """The instance's lifecycle state now (``GetInstance``), or why it cannot be read."""
    try:
        _config, compute = clients_from_params(params, oci.core.ComputeClient)
        return str(compute.get_instance(instance_id).data.lifecycle_state)
    except ConfigProblems as exc:
        return f"unknown ({'; '.join(p.problem for p in exc.problems)})"
    except Exception as exc:
        if HAS_OCI and isinstance(exc, oci.exceptions.ServiceError) and exc.status == 404:
            return "gone (not found)"
        return f"unknown ({error_text(exc)})"
