"""The Python API: load a job, plan it, run it, tear it down.

>>> import faceswap_oci
>>> job = faceswap_oci.load_job("job.yml")
>>> print(faceswap_oci.plan(job).summary())
>>> result = faceswap_oci.run(job, on_event=print)
>>> result.ok
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceswap_oci.errors import BadArgument, OciConfigError, PhaseFailed, StateError
from faceswap_oci.events import Event, Report
from faceswap_oci.runner import PHASES, EventCallback, JobResult, Runner, applicable
from faceswap_oci.spec import Job, load_job, oci_settings, preflight
from faceswap_oci.state import StateDir, default_state_root

__all__ = [
    "HOST_OS",
    "HostOs",
    "Plan",
    "PlannedHost",
    "PlannedPhase",
    "SweepResult",
    "down",
    "load_job",
    "plan",
    "run",
    "sweep",
]

PHASE_DESCRIPTIONS = {
    "provision": "create network and GPU instance in OCI (failover across ADs and shapes)",
    "setup": "prepare the host, NVIDIA driver, Faceswap at the pinned commit",
    "upload": "send the A and B media to the host (rsync, checksummed)",
    "extract": "extract faces from A and B",
    "train": "train the model as a service until a stop criterion",
    "convert": "swap the faces in A, keep its audio, tag as synthetic media",
    "fetch": "bring the video, manifest and preview back (sha256 verified)",
    "teardown": "remove every cloud resource the job created",
}


@dataclass(frozen=True)
class PlannedPhase:
    name: str
    description: str
    will_run: bool
    reason: str


@dataclass(frozen=True)
class HostOs:
    """What an OCI image family gives the job's host, as the roles will find it."""

    python: str  # the interpreter host_prepare provides and the venv is made with
    system_python: str  # the image's own /usr/bin/python3
    driver: str  # how the NVIDIA driver gets there
    host_prepare_vars: str  # roles/host_prepare/vars file that says `python` (unit-tested)


# target.oci.os -> the host. The Python is host_prepare's `_host_prepare_python` for that OS
# (tests/unit/test_host_os.py keeps the two equal); the GPU image is what oci_instance prefers
# for Oracle Linux (plugins/module_utils/oci_launch.py, choose_image).
HOST_OS: dict[str, HostOs] = {
    "Oracle Linux 9": HostOs(
        "python3.12", "3.9", "preinstalled on the Oracle-Linux-9.x-Gen2-GPU image", "RedHat.yml"
    ),
    "Oracle Linux 8": HostOs(
        "python3.12", "3.6", "preinstalled on the Oracle-Linux-8.x-Gen2-GPU image", "RedHat.yml"
    ),
    "Canonical Ubuntu 24.04": HostOs(
        "python3.12", "3.12", "installed at setup (DKMS build, then a reboot)", "Ubuntu-24.yml"
    ),
    "Canonical Ubuntu 22.04": HostOs(
        "python3.11", "3.10", "installed at setup (DKMS build, then a reboot)", "Ubuntu-22.yml"
    ),
}


@dataclass(frozen=True)
class PlannedHost:
    """The image an OCI job launches and the Python its host will run Faceswap with."""

    image: str
    python: str

    def summary(self) -> str:
        return f"image: {self.image}\npython: {self.python}"


@dataclass(frozen=True)
class Plan:
    job: str
    target: str
    state_dir: Path
    output_dir: Path
    phases: tuple[PlannedPhase, ...]
    cost: dict[str, Any] | None
    host: PlannedHost | None = None
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        lines = [f"job {self.job}: target {self.target}", f"state: {self.state_dir}"]
        if self.host:
            lines += [f"  {line}" for line in self.host.summary().splitlines()]
        for p in self.phases:
            mark = "run " if p.will_run else "skip"
            lines.append(f"  [{mark}] {p.name:<9} {p.description} ({p.reason})")
        if self.cost:
            lines.append(f"  estimated cost: {self.cost}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        lines.append(f"output: {self.output_dir}")
        return "\n".join(lines)


def _target_text(job: Job) -> str:
    target = job.spec.target
    if target.kind == "ssh" and target.ssh is not None:
        return f"ssh {target.ssh.user}@{target.ssh.host}:{target.ssh.port}"
    if target.kind == "oci" and target.oci is not None:
        shapes = ", ".join(target.oci.shapes)
        pre = " preemptible" if target.oci.preemptible else ""
        return f"oci {target.oci.region}{pre} [{shapes}]"
    return "local (this machine)"


def _planned_host(job: Job) -> PlannedHost | None:
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None:
        return None
    known = HOST_OS.get(oci.os)
    if oci.image:
        image = f"{oci.image} (given; target.oci.os says {oci.os})"
    elif oci.os.startswith("Oracle Linux"):
        image = (
            f"{oci.os}, the newest {oci.os.replace(' ', '-')}.x-Gen2-GPU-* image for the shape "
            "(NVIDIA driver preinstalled)"
        )
    else:
        image = f"{oci.os}, the newest image for the shape"
    if known is None:
        python = "the newest python3.13/3.12/3.11 on the host (no table entry for this OS)"
    else:
        python = (
            f"/usr/bin/{known.python} (the image's /usr/bin/python3 is {known.system_python}); "
            f"NVIDIA driver {known.driver}"
        )
    return PlannedHost(image=image, python=python)


# Rough phase durations for the estimate in `plan` (seconds; train comes from the spec).
_ESTIMATED_SECONDS = {
    "provision": 300.0,
    "setup": 900.0,
    "upload": 120.0,
    "extract": 600.0,
    "convert": 600.0,
    "fetch": 60.0,
    "teardown": 180.0,
}


def _cost(job: Job) -> dict[str, Any] | None:
    """The estimate for the first rung of the ladder, and one line per rung (each shape, with
    the capacity type it would be launched with): a fallback can cost twice as much."""
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None:
        return None
    from faceswap_oci import cost

    hours = job.spec.train.stop.hours or oci.max_hours
    seconds = dict(_ESTIMATED_SECONDS)
    seconds["train"] = hours * 3600.0
    ordered = {p: seconds[p] for p in PHASES}
    modes = [oci.preemptible] + ([False] if oci.preemptible and oci.preemptible_fallback else [])
    rungs: list[dict[str, Any]] = []
    for mode in modes:
        for shape in oci.shapes:
            # preemptible capacity exists on VM shapes only: a BM rung is tried on demand only
            if mode and shape.startswith("BM."):
                continue
            try:
                est = cost.phase_costs(shape, mode, oci.boot_volume_gb, ordered)
                price = cost.load_prices().shapes[shape]
            except cost.UnknownShapePrice as exc:
                rungs.append({"shape": shape, "preemptible": mode, "error": str(exc)})
                continue
            rungs.append(
                {
                    "shape": shape,
                    "preemptible": mode,
                    "usd_per_hour": round(cost.estimate(shape, 1, mode, 0).usd_per_hour, 4),
                    "usd": round(est.total_usd, 2),
                    "hours": round(est.gpu_hours, 2),
                    "share_outside_training": round(est.share_outside_training, 3),
                    "phases": {p.phase: round(p.usd, 2) for p in est.phases},
                    "source": price.source,
                    "as_of": price.as_of,
                    "verified": price.verified,
                }
            )
    first = next((r for r in rungs if "error" not in r), None)
    if first is None:
        return {"shape": oci.shapes[0], "error": rungs[0]["error"], "rungs": rungs}
    return {**first, "rungs": rungs}


def check_oci_config(job: Job) -> None:
    """The OCI config file and profile the job will use, checked as the modules check them
    (and with the same auth); raises ``OciConfigError`` (exit 2) naming the file and field."""
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None:
        return
    settings = oci_settings(oci)
    if settings["auth"] not in ("api_key", "security_token"):
        return  # principals read no config file
    from faceswap_oci.content import module_util

    problems = module_util("oci_config_check").check_oci_config(
        settings["config_file"],
        settings["profile"],
        region=oci.region,
        compartment=oci.compartment,
        auth_type=settings["auth"],
    )
    if problems:
        raise OciConfigError(
            str(Path(settings["config_file"]).expanduser()), [str(p) for p in problems]
        )


def plan(
    job: Job,
    *,
    state_root: Path | None = None,
    from_phase: str | None = None,
    only: str | None = None,
) -> Plan:
    """What a run would do, without running anything. Checks the output folder and the
    inputs first (:func:`~faceswap_oci.spec.preflight`; an input that does not exist yet is a
    warning here, not a failure), and on OCI the config file (``check_oci_config``): a plan that
    cannot authenticate is an error, not a plan."""
    check_phases(job, from_phase=from_phase, only=only)
    warnings = preflight(job, inputs_must_exist=False)
    runner = Runner(job, state_root=state_root)
    check_oci_config(job)
    todo = set(runner.plan_phases(from_phase, only))
    phases = []
    for name in PHASES:
        if not runner.applicable(name):
            phases.append(
                PlannedPhase(name, PHASE_DESCRIPTIONS[name], False, "not used by this target")
            )
        elif name == "teardown":
            phases.append(
                PlannedPhase(name, PHASE_DESCRIPTIONS[name], True, f"teardown: {job.spec.teardown}")
            )
        else:
            reason = "to do" if name in todo else "finished, inputs unchanged"
            phases.append(PlannedPhase(name, PHASE_DESCRIPTIONS[name], name in todo, reason))
    return Plan(
        job=job.name,
        target=_target_text(job),
        state_dir=runner.state.path,
        output_dir=job.output_dir,
        phases=tuple(phases),
        cost=_cost(job),
        host=_planned_host(job),
        warnings=tuple(warnings),
    )


def run(
    job: Job | str | Path,
    *,
    on_event: EventCallback | None = None,
    state_root: Path | None = None,
    from_phase: str | None = None,
    only: str | None = None,
    verbosity: int = 0,
) -> JobResult:
    """Run (or resume) a job; ``on_event`` receives every typed :class:`Event`."""
    if not isinstance(job, Job):
        job = load_job(job)
    check_phases(job, from_phase=from_phase, only=only)
    preflight(job, check_inputs=_uses_inputs(from_phase, only))
    runner = Runner(job, state_root=state_root, on_event=on_event, verbosity=verbosity)
    return runner.run(from_phase=from_phase, only=only)


def _uses_inputs(from_phase: str | None, only: str | None) -> bool:
    """Whether a run reads the input files (upload sends them; a resume hashes them to see
    whether upload is current)."""
    if only is not None:
        return only == "upload"
    return from_phase is None or PHASES.index(from_phase) <= PHASES.index("upload")


def check_phases(job: Job, *, from_phase: str | None = None, only: str | None = None) -> None:
    """Refuse ``--from``/``--only`` with an unknown phase, or one this target does not have."""
    work = [p for p in PHASES if applicable(job, p)]
    for option, name in (("--from", from_phase), ("--only", only)):
        if name is None:
            continue
        if name not in PHASES:
            raise BadArgument(
                f"{option} {name!r}: unknown phase; choose one of {', '.join(PHASES)}"
            )
        if name not in work:
            raise BadArgument(
                f"{option} {name}: the {name} phase does not apply to target.kind "
                f"{job.spec.target.kind!r} (only oci targets are provisioned and torn down); "
                f"choose one of {', '.join(work)}"
            )


def down(
    job: Job, *, on_event: EventCallback | None = None, state_root: Path | None = None
) -> JobResult:
    """Stop what the job runs: on OCI remove every cloud resource it created (found by tag;
    no state needed); on ssh and local targets make its training save the model and stop
    (a later :func:`run` resumes it)."""
    runner = Runner(job, state_root=state_root, on_event=on_event)
    if runner.kind == "oci":
        return runner.run(only="teardown", teardown=False)
    status, error, changed = "successful", None, 0
    try:
        changed = runner.run_phase("stop", stamp=False, cancellable=False)
    except PhaseFailed as exc:
        status, error = "failed", str(exc)
    runner.state.set_status("stopped" if status == "successful" else "failed", "stop", error=error)
    return JobResult(
        name=job.name,
        status=status,
        state_dir=runner.state.path,
        phases_run=("stop",),
        phases_skipped=(),
        changed=changed,
        output_dir=job.output_dir,
        error=error,
    )


def job_states(state_root: Path | None = None) -> list[tuple[StateDir, dict[str, Any]]]:
    from faceswap_oci.state import list_jobs

    return [(s, s.status()) for s in list_jobs(state_root)]


@dataclass(frozen=True)
class SweepResult:
    """Every job-tagged resource found in the job's compartment and region, by job name."""

    resources: dict[str, tuple[dict[str, Any], ...]]
    running: tuple[str, ...]
    removed: tuple[str, ...]

    def summary(self) -> str:
        if not self.resources:
            return "no faceswap-oci resources found"
        lines = []
        for name, items in sorted(self.resources.items()):
            mark = (
                "running here, kept"
                if name in self.running
                else ("removed" if name in self.removed else "left")
            )
            kinds = ", ".join(sorted({str(i.get("kind")) for i in items}))
            lines.append(f"{name}: {len(items)} resource(s) ({kinds}) - {mark}")
        return "\n".join(lines)


def sweep(
    job: Job,
    *,
    remove: bool = False,
    on_event: EventCallback | None = None,
    state_root: Path | None = None,
) -> SweepResult:
    """List (and with ``remove`` delete) the tagged resources of every job in the OCI
    compartment and region of ``job``'s target, except jobs running from this machine."""
    if job.spec.target.kind != "oci":
        raise StateError(
            f"sweep needs an oci target to know the compartment and region; {job.source} has "
            f"target.kind {job.spec.target.kind!r}"
        )
    root = state_root or default_state_root()
    running = {s.path.name for s, st in job_states(root) if st.get("state") == "running"}
    found: dict[str, list[dict[str, Any]]] = {}

    def collect(event: Event) -> None:
        if isinstance(event, Report) and event.report == "sweep":
            for item in event.data.get("resources", []):
                found.setdefault(str(item.get("job") or "?"), []).append(dict(item))
        if on_event is not None:
            on_event(event)

    # the sweep's own runner state lives inside the state root (a hidden folder, not a job)
    runner = Runner(job, state_root=root / ".sweep", on_event=collect)
    runner.run_phase("sweep", extra={"fsoci_sweep_remove": []}, stamp=False)
    doomed = sorted(name for name in found if name not in running) if remove else []
    if doomed:
        runner.run_phase("sweep", extra={"fsoci_sweep_remove": doomed}, stamp=False)
        for name in doomed:
            # what was removed is no longer provisioned: the next run provisions again
            removed = StateDir.for_job(name, root)
            if removed.path.is_dir():
                removed.clear_stamp("provision")
                (removed.path / "target.json").unlink(missing_ok=True)
    return SweepResult(
        resources={k: tuple(v) for k, v in found.items()},
        running=tuple(sorted(running & set(found))),
        removed=tuple(doomed),
    )
