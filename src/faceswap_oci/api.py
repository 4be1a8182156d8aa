"""The Python API: load a job, plan it, run it, tear it down.

>>> import faceswap_oci
>>> job = faceswap_oci.load_job("job.yml")
>>> print(faceswap_oci.plan(job).summary())
>>> result = faceswap_oci.run(job, on_event=print)
>>> result.ok
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceswap_oci import detach as detach_mod
from faceswap_oci.check import CheckItem
from faceswap_oci.errors import BadArgument, OciConfigError, PhaseFailed, StateError
from faceswap_oci.events import Event, Report
from faceswap_oci.runner import (
    HOST_ROOT_REMOTE,
    PHASES,
    EventCallback,
    JobResult,
    Runner,
    applicable,
)
from faceswap_oci.spec import Job, load_job, oci_settings, preflight, with_detach
from faceswap_oci.state import StateDir, default_state_root

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
    detach: tuple[str, ...] = ()
    """A detached job: how its instance stops billing (``detach.Decision.lines``)."""
    detach_refused: str | None = None
    """Why ``run`` would refuse ``--detach`` (with the policy text), else None."""

    def summary(self) -> str:
        lines = [f"job {self.job}: target {self.target}", f"state: {self.state_dir}"]
        if self.host:
            lines += [f"  {line}" for line in self.host.summary().splitlines()]
        for p in self.phases:
            mark = "run " if p.will_run else "skip"
            lines.append(f"  [{mark}] {p.name:<9} {p.description} ({p.reason})")
        if self.cost:
            lines.append(f"  estimated cost: {self.cost}")
        lines.extend(f"  {line}" for line in self.detach)
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
    job: Job | str | Path,
    *,
    state_root: Path | None = None,
    from_phase: str | None = None,
    only: str | None = None,
    detach: bool = False,
) -> Plan:
    """What a run would do, without running anything. Checks the output folder and the
    inputs first (:func:`~faceswap_oci.spec.preflight`; an input that does not exist yet is a
    warning here, not a failure), and on OCI the config file (``check_oci_config``): a plan that
    cannot authenticate is an error, not a plan. It writes nothing: no state folder, no
    checksum cache entry, no demo clips (``run`` makes those)."""
    if not isinstance(job, Job):
        job = load_job(job, write=False)
    if detach:
        job = with_detach(job)
    check_phases(job, from_phase=from_phase, only=only)
    warnings = preflight(job, inputs_must_exist=False)
    if job.spec.inputs.demo and not (job.input_a.exists() and job.input_b.exists()):
        warnings.append(
            f"inputs.demo: run writes the synthetic demo clips {job.input_a} and {job.input_b} "
            "first"
        )
    runner = Runner(job, state_root=state_root, read_only=True)
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
    decision = detach_mod.decide(job)
    warnings += detach_mod.watchdog_warnings(job, decision)
    return Plan(
        job=job.name,
        target=_target_text(job),
        state_dir=runner.state.path,
        output_dir=job.output_dir,
        phases=tuple(phases),
        cost=_cost(job),
        host=_planned_host(job),
        warnings=tuple(warnings),
        detach=tuple(decision.lines()) if decision else (),
        detach_refused=decision.message() if decision and decision.mode == "refused" else None,
    )


def run(
    job: Job | str | Path,
    *,
    on_event: EventCallback | None = None,
    state_root: Path | None = None,
    from_phase: str | None = None,
    only: str | None = None,
    verbosity: int = 0,
    detach: bool = False,
) -> JobResult:
    """Run (or resume) a job; ``on_event`` receives every typed :class:`Event`. A detached
    OCI job (``detach`` or ``target.oci.detach``) is refused (``DetachRefused``, exit 2)
    before anything is created when its instance could not stop billing on its own."""
    if not isinstance(job, Job):
        job = load_job(job)
    if detach:
        job = with_detach(job)
    check_phases(job, from_phase=from_phase, only=only)
    preflight(job, check_inputs=_uses_inputs(from_phase, only))
    if not _handed_over(job, state_root):
        detach_mod.require(job)
    if job.spec.target.kind == "local" and "setup" in (only, from_phase, None):
        from faceswap_oci.check import ensure_local_packages

        def installing(text: str) -> None:
            if on_event is not None:
                on_event(Report("-", report="os_packages", data={"note": text}))

        ensure_local_packages(installing)  # one message naming every missing package, in seconds
    elif job.spec.target.kind == "ssh" and "setup" in (only, from_phase, None):
        said = ensure_host_packages(job, state_root)
        if said.startswith("installing") and on_event is not None:
            on_event(Report("-", report="os_packages", data={"note": said.splitlines()[0]}))
    if _handed_over(job, state_root) and from_phase is None and only is None:
        # the job is the VM agent's: follow it as `attach` does (collect when it is done)
        found = attach(job, on_event=on_event, state_root=state_root)
        if found.result is not None:
            return found.result
        state = StateDir.for_job(job.name, state_root or default_state_root())
        return JobResult(
            job.name, "successful", state.path, (), (), 0, job.output_dir, detached=True
        )
    runner = Runner(job, state_root=state_root, on_event=on_event, verbosity=verbosity)
    with runner.state.lock("run") as note:
        _lock_note(note, on_event)
        return runner.run(from_phase=from_phase, only=only)


def _handed_over(job: Job, state_root: Path | None) -> bool:
    """A detached OCI job whose last run handed it to its VM (state ``detached``)."""
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None or not oci.detach:
        return False
    state = StateDir.for_job(job.name, state_root or default_state_root())
    return state.exists and state.status().get("state") == "detached"


def _lock_note(note: str | None, on_event: EventCallback | None) -> None:
    if note and on_event is not None:
        on_event(Report("-", report="lock_taken_over", data={"note": note}))


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


def _as_job(job: Job | str | Path, state_root: Path | None = None) -> Job:
    """A :class:`Job`, a job file, or the name of a job with state here (its job file, or
    the spec its state kept when the file is gone)."""
    if isinstance(job, Job):
        return job
    path = Path(job)
    if path.is_file() or path.suffix in (".yml", ".yaml") or "/" in str(job):
        return load_job(path, write=False)
    state = StateDir.for_job(str(job), state_root)
    saved = state.load_spec()
    source = Path(str(saved.get("source") or ""))
    if source.is_file():
        return load_job(source, write=False)
    from faceswap_oci.spec import validate

    return validate(
        dict(saved.get("spec") or {}), base_dir=source.parent, source=source, write=False
    )


def down(
    job: Job | str | Path,
    *,
    on_event: EventCallback | None = None,
    state_root: Path | None = None,
) -> JobResult:
    """Stop what the job runs: on OCI remove every cloud resource it created (found by tag;
    no state needed); on ssh and local targets make its training save the model and stop
    (:func:`stop`; a later :func:`run` resumes it). ``job``: a :class:`Job`, a job file or a
    job name."""
    job = _as_job(job, state_root)
    runner = Runner(job, state_root=state_root, on_event=on_event)
    if runner.kind != "oci":
        return _stop(runner, on_event, "down")
    with runner.state.lock("down") as note:
        _lock_note(note, on_event)
        return runner.run(only="teardown", teardown=False)


def stop(
    job: Job | str | Path,
    *,
    on_event: EventCallback | None = None,
    state_root: Path | None = None,
) -> JobResult:
    """ssh and local targets: make the job's training save its model and stop (a later
    :func:`run` resumes it). On OCI the instance would go on billing: use :func:`down`."""
    job = _as_job(job, state_root)
    if job.spec.target.kind == "oci":
        raise BadArgument(
            f"stop: job {job.name!r} runs on OCI, where a paused instance still bills; use "
            f"`faceswap-oci down {job.name}` (the trained model is kept in the job bucket)"
        )
    return _stop(Runner(job, state_root=state_root, on_event=on_event), on_event, "stop")


def _stop(runner: Runner, on_event: EventCallback | None, command: str) -> JobResult:
    job = runner.job
    with runner.state.lock(command) as note:
        _lock_note(note, on_event)
        previous = runner.state.status()
        before = previous.get("state")
        status, error, changed = "successful", None, 0
        try:
            changed = runner.run_phase("stop", stamp=False, cancellable=False)
        except PhaseFailed as exc:
            status, error = "failed", str(exc)
        if status != "successful":
            runner.state.set_status("failed", "stop", error=error)
        elif before == "finished":  # a finished job stays finished: nothing was stopped
            runner.state.set_status("finished", previous.get("phase"), error=None)
        else:
            runner.state.set_status("stopped", "stop", error=None)
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


def jobs(state_root: Path | None = None) -> list[dict[str, Any]]:
    """One summary per job with state here: name, target, state ("interrupted" when its
    process is gone), phase, iteration and target, last losses, cost, updated, output."""
    from faceswap_oci.state import list_jobs

    return [_summary(s) for s in list_jobs(state_root or default_state_root())]


def status(name: str, state_root: Path | None = None) -> dict[str, Any]:
    """One job's summary (as :func:`jobs`), with its phase stamps."""
    state = StateDir.for_job(name, state_root or default_state_root())
    state.load_spec()  # StateError naming the folder when there is no such job
    summary = _summary(state)
    summary["stamps"] = {p: state.stamp(p) for p in PHASES}
    return summary


def _summary(state: StateDir) -> dict[str, Any]:
    from faceswap_oci.dashboard.data import JobView

    view = JobView(state.path)
    summary = view.summary()
    st = state.status()  # "interrupted" when a running job's process is gone
    summary["state"] = st.get("state")
    summary["note"] = st.get("note")
    out = view.output_dir()
    video = out / f"{state.path.name}.mp4" if out else None
    summary["output"] = str(video) if video is not None and video.is_file() else None
    summary["output_dir"] = str(out) if out else None
    return summary


def events(
    name: str,
    state_root: Path | None = None,
    *,
    tail: int | None = None,
    phase: str | None = None,
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """The job's event log as dicts (each with its ``run`` id), oldest first; ``tail``: the
    last N of those that match ``phase`` and ``run_id``."""
    import json

    state = StateDir.for_job(name, state_root or default_state_root())
    if not state.events_file.is_file():
        raise StateError(f"no events for job {name!r} in {state.path}; run the job first")
    lines, _ = state.event_lines()
    found = [json.loads(line) for line in lines]
    if phase is not None:
        found = [e for e in found if e.get("phase") == phase]
    if run_id is not None:
        found = [e for e in found if e.get("run") == run_id]
    return found[-tail:] if tail else found


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
    job: Job | str | Path,
    *,
    remove: bool = False,
    on_event: EventCallback | None = None,
    state_root: Path | None = None,
) -> SweepResult:
    """List (and with ``remove`` delete) the tagged resources of every job in the OCI
    compartment and region of ``job``'s target, except jobs running from this machine."""
    job = _as_job(job, state_root)
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


def check(
    job: Job | str | Path | None = None,
    *,
    state_root: Path | None = None,
    detach: bool = False,
) -> list[CheckItem]:
    """Everything ``job`` needs, checked read-only, one :class:`~faceswap_oci.check.CheckItem`
    (ok/warn/fail, and the fix) per item; without a job, this machine's tools and caches.
    ``detach`` checks it as ``run --detach`` would run it (the instance-principal policy)."""
    from faceswap_oci.check import check as run_checks

    found = None if job is None else _as_job(job, state_root)
    if found is not None and detach:
        found = with_detach(found)
    return run_checks(found, state_root=state_root)


def _host_command(job: Job, state: StateDir) -> tuple[list[str], str, bool] | None:
    """(ssh argv up to the remote command, the host root, become) of the job's host; None
    for the local target. Host keys are checked as the runner's inventory checks them (its
    own ``ansible_ssh_common_args``: the job's known_hosts, accept-new unless strict/off)."""
    import shlex

    target = job.spec.target
    base = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    base += shlex.split(
        Runner(job, state_root=state.path.parent, read_only=True)._ssh_common_args()
    )
    if target.kind == "ssh" and target.ssh is not None:
        ssh = target.ssh
        argv = [*base, "-p", str(ssh.port)]
        if ssh.key:
            key = Path(ssh.key).expanduser()
            argv += ["-i", str(key if key.is_absolute() else job.source.parent / key)]
        return [*argv, "--", f"{ssh.user}@{ssh.host}"], HOST_ROOT_REMOTE, ssh.become
    if target.kind == "oci":
        found = state.target()
        if not found:
            raise StateError(
                f"job {job.name!r} has no instance (no target.json in {state.path}); run it first"
            )
        argv = [*base, "-p", str(found.get("port", 22)), "-i", str(found["key"])]
        return [*argv, "--", f"{found.get('user', 'opc')}@{found['host']}"], HOST_ROOT_REMOTE, True
    return None


def ensure_host_packages(job: Job, state_root: Path | None = None) -> str:
    """ssh target, before setup: the host installs the OS packages host_prepare needs there
    when its user is root or ``sudo -n`` works (ospackages.py, run by the host's python3),
    else :class:`StateError` (exit 3) with one message naming every missing package and the
    one command. Returns what the host said. A host that is no Debian/Ubuntu is left to the
    role. Seconds, before anything slow."""
    import json
    import subprocess

    from faceswap_oci import ospackages
    from faceswap_oci.check import package_lists

    state = StateDir.for_job(job.name, state_root or default_state_root())
    remote = _host_command(job, state)
    if remote is None or job.spec.target.ssh is None or not job.spec.target.ssh.become:
        return ""
    ssh, _root, _become = remote
    script = Path(ospackages.__file__).read_text()
    lists = json.dumps(package_lists())
    done = subprocess.run(
        [*ssh, "python3", "-", "--for-os", shlex_quote(lists)],
        input=script,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode == 3:
        said = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        text = (said or [done.stderr.strip()])[-1].removeprefix("error: ")
        host = job.spec.target.ssh.host
        raise StateError(f"target.ssh.host {host}: {text}")
    if done.returncode != 0:
        # the host is not reachable or has no python3: the setup's own errors say it better
        return done.stderr.strip()
    return done.stdout.strip()


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def train_log(
    name: str, state_root: Path | None = None, *, follow: bool = False, tail: int | None = None
) -> int:
    """Print Faceswap's own training log (``logs/train.log`` of the job's folder on the host:
    the ``-F`` file of faceswap_train's supervisor) to stdout; ``follow`` keeps printing until
    the job's run ends. Returns the exit code (3: no log yet)."""
    import shlex
    import subprocess

    from faceswap_oci.state import default_data_dir

    job = _as_job(name, state_root)
    state = StateDir.for_job(job.name, state_root or default_state_root())
    lines = str(tail or 200)
    remote = _host_command(job, state)
    if remote is None:
        path = default_data_dir() / "jobs" / job.name / "logs" / "train.log"
        if not path.is_file():
            raise StateError(f"job {job.name!r} has no training log yet ({path})")
        argv = ["tail", "-n", lines, *(["-F"] if follow else []), str(path)]
    else:
        ssh, root, become = remote
        path_text = f"{root}/jobs/{job.name}/logs/train.log"
        command = ["tail", "-n", lines, *(["-F"] if follow else []), path_text]
        if become:
            command = ["sudo", "-n", *command]
        argv = [*ssh, shlex.join(command)]
    import select

    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ending: float | None = None
    try:
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = proc.stdout.read1(65536)  # type: ignore[attr-defined]
                if not chunk:  # end of its output: it is ending
                    proc.wait(timeout=30)
                    break
                sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                sys.stdout.flush()
                continue
            if proc.poll() is not None:  # ended: what it wrote after the last select
                sys.stdout.write(proc.stdout.read().decode("utf-8", errors="replace"))
                sys.stdout.flush()
                break
            if follow and ending is None and state.status().get("state") != "running":
                ending = time.monotonic() + 1.0  # the last lines the host wrote
            if ending is not None and time.monotonic() > ending:
                proc.terminate()
                proc.wait(timeout=10)
                return 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return 3 if proc.returncode else 0


@dataclass(frozen=True)
class Attached:
    """What ``attach`` found and did: ``state`` is ``done`` or ``failed`` (the agent's
    marker; the results were then collected and the job torn down), ``trained`` (converted
    here on a new host), ``resumed`` (the instance was gone without a marker: provisioned
    again, restored, handed over again), ``running`` (the instance is live, no marker yet) or
    ``unknown``; ``seen`` is the cloud's view (``detach.reconcile``)."""

    job: str
    state: str
    seen: dict[str, Any]
    fetched: tuple[Path, ...] = ()
    result: JobResult | None = None


def attach(
    job: Job | str | Path,
    *,
    on_event: EventCallback | None = None,
    state_root: Path | None = None,
) -> Attached:
    """Follow a detached OCI job from any controller with its job file and the OCI config:
    reconcile with the cloud (instance, latest snapshot, done marker); once the agent is done,
    fetch the video and its manifest from the bucket (checked against results.json), then tear
    down: the bucket goes (unless ``storage.keep``) only when the fetched video matches its
    manifest, the network always."""
    job = _as_job(job, state_root)
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None or not oci.detach:
        raise BadArgument(
            f"attach: job {job.name} is not a detached OCI job (target.oci.detach, or "
            f"`run --detach`); follow it with `faceswap-oci logs {job.name} -f`"
        )
    state = StateDir.for_job(job.name, state_root or default_state_root())
    instance = (state.target() or {}).get("instance_id") if state.exists else None
    seen = detach_mod.reconcile(job, str(instance) if instance else None)
    if on_event is not None:
        on_event(Report("-", report="detached", data=dict(seen)))
    end = detach_mod.finished(seen)
    instance_now = str(seen.get("instance") or "")
    if end is None and instance_now in ("TERMINATED", "gone (not found)"):
        # Gone without a marker: preempted (or terminated by someone). The agent cannot
        # provision; this controller does: a new host restores the latest snapshot and the
        # job is handed over again.
        if on_event is not None:
            on_event(Report("-", report="detached_lost", data={"instance": instance_now, **seen}))
        runner = Runner(job, state_root=state_root, on_event=on_event)
        with runner.state.lock("attach") as note:
            _lock_note(note, on_event)
            (runner.state.path / "target.json").unlink(missing_ok=True)
            result = runner.run(from_phase="provision")
        return Attached(job.name, "resumed", seen, (), result)
    if end is None:
        live = instance_now in ("PROVISIONING", "STARTING", "RUNNING")
        return Attached(job.name, "running" if live else "unknown", seen)
    if end == "trained":
        # The VM trained to the stop criterion and ended its billing, but converting on the
        # VM is not there yet: this controller provisions again, restores the final snapshot
        # (the train phase then has nothing left to do), converts, fetches and tears down.
        attached = with_detach(job, False)
        runner = Runner(attached, state_root=state_root, on_event=on_event)
        with runner.state.lock("attach") as note:
            _lock_note(note, on_event)
            if str(seen.get("instance") or "") not in ("TERMINATED", "gone (not found)"):
                runner.run(only="teardown")  # the old instance (and network) first
            (runner.state.path / "target.json").unlink(missing_ok=True)
            result = runner.run(from_phase="provision")
        return Attached(job.name, end, seen, (), result)
    fetched = detach_mod.collect(job, seen) if end == "done" else {}
    runner = Runner(job, state_root=state_root, on_event=on_event)
    with runner.state.lock("attach") as note:
        _lock_note(note, on_event)
        result = runner.run(only="teardown")
    return Attached(job.name, end, seen, tuple(fetched.values()), result)


def detached_state(name: str, state_root: Path | None = None) -> dict[str, Any] | None:
    """``status --refresh`` of a detached OCI job: the instance's state, the latest snapshot
    and the agent's marker (``detach.reconcile``); None for any other job."""
    job = _as_job(name, state_root)
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None or not oci.detach:
        return None
    state = StateDir.for_job(job.name, state_root or default_state_root())
    instance = (state.target() or {}).get("instance_id") if state.exists else None
    return detach_mod.reconcile(job, str(instance) if instance else None)


def instance_state(name: str, state_root: Path | None = None) -> str | None:
    """What the OCI API says now of the job's instance (its lifecycle state), for
    ``status --refresh``; None for ssh and local jobs or when none was launched."""
    job = _as_job(name, state_root)
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None:
        return None
    state = StateDir.for_job(job.name, state_root or default_state_root())
    instance = (state.target() or {}).get("instance_id")
    if not instance:
        return None
    from faceswap_oci.check import preflight_module

    oci_preflight, params = preflight_module(oci)
    return str(oci_preflight.instance_state(params, str(instance)))
