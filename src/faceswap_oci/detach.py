"""Detached OCI jobs: may this job detach, and how will its instance stop billing?

A detached job's agent ends its instance's billing without the controller. With a working
instance-principal policy it terminates the instance (boot volume included); without one it
can only power off, which stops the shape's billing on VM.GPU.A10.x alone
(``cost.billed_when_stopped``). So ``--detach`` is refused, before anything is created, when
the policy is not there and some shape of the ladder would keep billing when stopped.

The policy check itself is read-only Identity API calls in the collection's module_utils
(``oci_detach.check_policy``: dynamic groups and policies, what the real service lets a user
read; docs/detach.md says what it cannot see).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceswap_oci import cost
from faceswap_oci.errors import DetachRefused, PhaseFailed
from faceswap_oci.spec import Job


@dataclass(frozen=True)
class Decision:
    """``terminate`` (the policy works), ``poweroff`` (no policy; every shape of the ladder
    stops billing when stopped) or ``refused``; ``policy`` is the text to create."""

    mode: str
    detail: str
    policy: str
    billed_when_stopped: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        if self.mode == "terminate":
            out = [
                "detach: the agent terminates its instance (boot volume included) through its "
                f"instance principal ({self.detail})"
            ]
        elif self.mode == "poweroff":
            out = [
                f"detach: no working instance-principal policy ({self.detail}); every shape "
                "of the ladder stops billing for the shape when stopped, so the agent powers "
                "the instance off (its boot volume is still billed until `faceswap-oci run`, "
                "`attach` or `down` removes it)"
            ]
        else:
            out = [self.message()]
        return out + [f"note: {n}" for n in self.notes]

    def message(self) -> str:
        shapes = ", ".join(self.billed_when_stopped)
        return (
            f"target.oci.detach: refused: {self.detail}. Without that policy the agent could "
            f"only power the instance off, and a stopped {shapes} is still billed for its "
            'shape (Oracle\'s "Resource Billing for Stopped Instances"). Create the dynamic '
            f"group and policy (docs/detach.md), then run `faceswap-oci check JOB --detach`:\n"
            f"{self.policy}\n"
            "or list only VM.GPU.A10.x shapes in target.oci.shapes, or run without --detach."
        )


def _oci_module_util(job: Job, name: str) -> tuple[Any, dict[str, Any]]:
    """The collection's ``module_utils.<name>`` and the job's OCI module options."""
    from faceswap_oci.check import preflight_module

    oci = job.spec.target.oci
    assert oci is not None
    _preflight, params = preflight_module(oci)  # puts the collection on sys.path
    module = importlib.import_module(
        f"ansible_collections.faceswap_oci.core.plugins.module_utils.{name}"
    )
    return module, params


def decide(job: Job) -> Decision | None:
    """The decision for a detached OCI job (None for any other job). Calls the Identity API
    (read-only)."""
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None or not oci.detach:
        return None
    oci_detach, params = _oci_module_util(job, "oci_detach")
    verdict = oci_detach.check_policy(params, oci.defined_tags)
    text = oci_detach.policy_text(oci.compartment).render()
    billed = tuple(s for s in oci.shapes if cost.billed_when_stopped(s))
    if verdict.ok:
        mode = "terminate"
    elif not billed:
        mode = "poweroff"
    else:
        mode = "refused"
    return Decision(mode, verdict.detail, text, billed, tuple(verdict.notes))


def require(job: Job) -> Decision | None:
    """``decide``, raising ``DetachRefused`` (exit 2) for a job that may not detach."""
    decision = decide(job)
    if decision is not None and decision.mode == "refused":
        raise DetachRefused(decision.message())
    return decision


def watchdog_warnings(job: Job, decision: Decision | None) -> list[str]:
    """`plan`'s warning for each shape whose stopped state is still billed, where the
    watchdog can only power off at ``max_hours`` (any OCI job but a detached one whose
    policy lets it terminate)."""
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None:
        return []
    if decision is not None and decision.mode == "terminate":
        return []
    return [
        f"watchdog: at max_hours ({oci.max_hours:g} h) the VM powers itself off, and a stopped "
        f"{shape} is still billed for its shape (Oracle's \"Resource Billing for Stopped "
        'Instances"): only terminating ends it (`faceswap-oci down`, or a detached job with '
        "the instance-principal policy of docs/detach.md)"
        for shape in oci.shapes
        if cost.billed_when_stopped(shape)
    ]


# --- following a detached job from any controller -------------------------------------------
def bucket_of(job: Job) -> tuple[str, str, str | None]:
    """(bucket, prefix, namespace or None) of the job's bucket, as oci_storage names them:
    the job's own ``fsoci-<name>`` or ``target.oci.storage.bucket``, prefix ``jobs/<name>/``."""
    oci = job.spec.target.oci
    assert oci is not None
    return oci.storage.bucket or f"fsoci-{job.name}", f"jobs/{job.name}/", oci.storage.namespace


def reconcile(job: Job, instance_id: str | None) -> dict[str, Any]:
    """What the cloud says of a detached job now: the instance's state, the latest complete
    snapshot (``latest``) and the agent's marker (``done``), read with the user's key."""
    oci_detached, params = _oci_module_util(job, "oci_detached")
    bucket, prefix, namespace = bucket_of(job)
    seen: dict[str, Any] = oci_detached.reconcile(
        params, bucket, prefix, namespace, instance_id, job.name
    )
    return seen


def instance_lifecycle(job: Job, instance_id: str) -> str | None:
    """The instance's lifecycle state as the OCI API says it now (one GetInstance, no
    retry; ``gone (not found)`` after a 404), or None when the API did not answer."""
    oci_detached, params = _oci_module_util(job, "oci_detached")
    state: str | None = oci_detached.instance_lifecycle(params, instance_id)
    return state


def finished(seen: dict[str, Any]) -> str | None:
    """``done``, ``trained`` or ``failed`` when the agent wrote its marker, else None."""
    done = seen.get("done")
    if isinstance(done, dict) and done.get("state") in ("done", "trained", "failed"):
        return str(done["state"])
    return None


def collect(job: Job, seen: dict[str, Any]) -> dict[str, Path]:
    """Fetch the video and its manifest from the bucket into the output folder, each checked
    against results.json; raises ``PhaseFailed`` (exit 4) when they do not match."""
    oci_detached, params = _oci_module_util(job, "oci_detached")
    bucket, prefix, _ns = bucket_of(job)
    names = {
        f"{job.name}.mp4": f"{job.name}.mp4",
        f"{job.name}.manifest.json": f"{job.name}.manifest.json",
    }
    try:
        found: dict[str, Path] = oci_detached.fetch_results(
            params, str(seen.get("namespace")), bucket, prefix, job.output_dir, names
        )
    except oci_detached.ResultsError as exc:
        raise PhaseFailed("fetch", str(exc)) from exc
    return found
