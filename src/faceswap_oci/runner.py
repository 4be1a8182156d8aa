"""Run a job's phases through ansible-runner and turn its events into typed events.

One ansible-runner run per phase, in the job's state directory (its ``runner/`` folder is
ansible-runner's private_data_dir). A phase that finishes writes a stamp with a fingerprint of
what it depended on; the next run resumes at the first phase whose stamp is missing or stale,
and every phase after it runs too. The validated spec reaches Ansible as extra vars; nothing a
role does is re-done here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import shlex
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import ansible_runner
import ansible_runner.interface

from faceswap_oci import events as ev
from faceswap_oci import notify
from faceswap_oci.content import content_root
from faceswap_oci.errors import BadArgument, Interrupted, PhaseFailed, ResourcesLeft, StateError
from faceswap_oci.spec import Job
from faceswap_oci.state import StateDir, default_cache_dir, default_data_dir, fingerprint

PHASES: tuple[str, ...] = (
    "provision",
    "setup",
    "upload",
    "extract",
    "train",
    "convert",
    "fetch",
    "teardown",
)
"""Every phase, in order. ``teardown`` runs as the spec's ``teardown`` policy says."""

WORK_PHASES = PHASES[:-1]
HOST_ROOT_REMOTE = "/opt/faceswap-oci"
RUN_USER_REMOTE = "faceswap"

EventCallback = Callable[[ev.Event], None]


def collections_path() -> Path:
    root = content_root()
    if root.parent.parent.name == "ansible_collections":
        return root.parent.parent.parent
    return root / ".collections"


def playbook_path(phase: str) -> Path:
    return content_root() / "playbooks" / f"{phase}.yml"


def applicable(job: Job, phase: str) -> bool:
    """Whether the phase does anything on the job's target (provision and teardown: OCI only)."""
    if phase in {"provision", "teardown"}:
        return job.spec.target.kind == "oci"
    return True


@dataclass(frozen=True)
class JobResult:
    name: str
    status: str
    state_dir: Path
    phases_run: tuple[str, ...]
    phases_skipped: tuple[str, ...]
    changed: int
    output_dir: Path
    error: str | None = None
    durations: dict[str, float] = field(default_factory=dict)
    cost: dict[str, Any] | None = None
    resources_left: tuple[str, ...] = ()
    """Set when a teardown did not finish: what may still exist in the cloud, and the command
    that removes it."""
    detached: bool = False
    """The job was handed over to its VM's agent (``target.oci.detach``): no convert, fetch
    or teardown ran here; ``faceswap-oci attach`` follows it."""

    @property
    def ok(self) -> bool:
        return self.status == "successful"


@dataclass
class _Cancel:
    """Signals received: the first asks to stop (teardown per policy follows), a second one
    skips every grace period and the teardown."""

    flag: threading.Event = field(default_factory=threading.Event)
    count: int = 0
    signal: str = ""

    @property
    def hurry(self) -> bool:
        return self.count > 1


CANCEL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

GRACE_S = {signal.SIGINT: 5.0, signal.SIGTERM: 5.0, signal.SIGKILL: 5.0}
"""How long a stopping playbook gets after each signal before the next one."""

DEFAULT_TEARDOWN_TIMEOUT_S = 120.0
"""Teardown against an API that does not answer gives up after this (FSOCI_TEARDOWN_TIMEOUT)."""

ENV_ALLOWED = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR",
        "SSH_AUTH_SOCK", "VIRTUAL_ENV",
        "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "OCI_CONFIG_FILE",
        # set by ansible-runner itself
        "AWX_ISOLATED_DATA_DIR", "ORIGINAL_STDOUT_CALLBACK",
    }
)  # fmt: skip
ENV_ALLOWED_PREFIXES = ("ANSIBLE_", "FSOCI_", "LC_")
"""What of this process's environment reaches ansible-runner (and so its artifacts' ``command``
file): the names above and these prefixes, nothing else (docs/contracts.md, Environment)."""
SSH_RETRIES = 8
# How many times a train phase that gave up on an unreachable host (its `train_unreachable`
# report, after faceswap_train_unreachable_polls polls in a row) is run again while the OCI API
# still lists the instance as live: the training on it goes on, and the phase follows it again.
UNREACHABLE_REJOINS = 2
PREEMPTION_CHECK_S = 60.0
"""How often, while a phase runs on a preemptible OCI instance, the runner asks the OCI API
whether the preemption action reclaimed it (one GetInstance): a preemption is noticed within a
minute, not only once the phase fails (a train poll gives up after minutes of SSH retries)."""
HOST_PHASES = frozenset({"setup", "upload", "extract", "train", "convert", "fetch"})
"""The phases that run on the job's host: those the preemption check watches."""

RUN_TOKEN = "FSOCI_RUN_TOKEN"
"""Set in every playbook's environment: each process of that run inherits it, so the runner
finds the whole tree (also a process that left the group or was re-parented to PID 1)."""


def ssh_config_quote(value: str) -> str:
    """A file name as one ssh_config argument: double-quoted, with backslash before ``"`` and
    ``\\`` (OpenSSH's argv_split) and ``%%`` for ``%`` (its percent_expand)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def env_allowed(name: str) -> bool:
    return name in ENV_ALLOWED or name.startswith(ENV_ALLOWED_PREFIXES)


def tree_pids(token: str) -> set[int]:
    """The live processes (of this user) whose environment carries ``token``."""
    needle = f"\0{RUN_TOKEN}={token}\0".encode()
    found: set[int] = set()
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in b"\0" + environ:
            found.add(int(entry))
    return found


def stop_tree(token: str, hurry: Callable[[], bool] = lambda: False) -> bool:
    """Stop every process of a playbook run: SIGINT, then SIGTERM, then SIGKILL, each after
    its grace period (none once ``hurry()``), and wait until they are gone. True when none is
    left."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if sig != signal.SIGKILL and hurry():
            continue
        pids = tree_pids(token)
        if not pids:
            return True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_S[sig]
        while time.monotonic() < deadline and tree_pids(token):
            if sig != signal.SIGKILL and hurry():
                break
            time.sleep(0.05)
    return not tree_pids(token)


@contextmanager
def _cancel_on_signals(cancel: _Cancel) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP all cancel the run (its teardown per policy included); the
    runner stops the playbook's process tree itself (:func:`stop_tree`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        cancel.count += 1
        cancel.signal = signal.Signals(signum).name
        cancel.flag.set()

    previous = {sig: signal.signal(sig, handler) for sig in CANCEL_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Runner:
    """Runs one job. Build it with the validated :class:`Job`; call :meth:`run`."""

    def __init__(
        self,
        job: Job,
        *,
        state_root: Path | None = None,
        on_event: EventCallback | None = None,
        verbosity: int = 0,
        read_only: bool = False,
    ) -> None:
        self.job = job
        state = StateDir.for_job(job.name, state_root)
        if job.spec.target.kind == "oci" and any(c in str(state.path) for c in '"\\'):
            # the job's ssh key lives there, and Ansible's ssh plugin passes it as
            # -o IdentityFile="<path>" without escaping (plugins/connection/ssh.py)
            raise StateError(
                f"{state.path}: an OCI job's state folder must not hold a double quote or a "
                "backslash (its ssh key lives there); choose another --state-dir"
            )
        # read_only (plan): the state is read where it exists, nothing is created or cached
        self.state = StateDir(state.path, read_only=True) if read_only else state.create()
        self.on_event = on_event
        # One event at a time: the phase's worker thread and the main thread (an interrupt's
        # notice, the watch of the tree) both emit; a consumer such as `run --json` writes each
        # event as a line that must not be torn by the other's, and the cost ledger is read and
        # written back.
        self._emit_lock = threading.RLock()
        self.verbosity = verbosity
        self._cancel = _Cancel()
        self._fingerprints: dict[str, str] = {}
        self._durations: dict[str, float] = {}
        self.notifier = notify.for_spec(job.spec.model_dump(mode="json"), job.output_dir)
        self._terminated: list[str] = []  # instances this run's teardown removed
        # What the last training poll said: the model's and the job bucket's iteration counts.
        self._held: dict[str, int] = {}
        self._instance_state: dict[str, Any] | None = None  # the last `instance_state` report
        self._unreachable = False  # the train phase gave up on an unreachable host
        self._reclaimed: str | None = None  # the instance's state when a check found it reclaimed
        self._started = time.time()
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        """Tells this run's lines of the event log from those of other runs."""

    # events ------------------------------------------------------------------
    def _emit(self, event: ev.Event) -> None:
        with self._emit_lock:
            self._note_event(event)
            self.state.append_event(event.to_json(), run=self.run_id)
            if self.on_event is not None:
                self.on_event(event)
            if self.notifier is not None:
                self.notifier(event)

    def _note_event(self, event: ev.Event) -> None:
        """What the run keeps of an event (the cost ledger's instances, the instance's state,
        the iteration counts held); under the emit lock, as the ledger is read and written."""
        if isinstance(event, ev.Report) and event.report in ("oci_attempts", "oci_teardown"):
            self._track_instances(event)
        if isinstance(event, ev.Report) and event.report == "instance_state":
            self._instance_state = event.data
        if isinstance(event, ev.Report) and event.report == "train_unreachable":
            self._unreachable = True
        if isinstance(event, ev.Progress | ev.Report):
            for key in ("model_iterations", "snapshot_iterations"):
                value = event.data.get(key)
                if isinstance(value, int):
                    self._held[key] = value

    # host facts -----------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.job.spec.target.kind

    def host_identity(self) -> str:
        target = self.job.spec.target
        if target.kind == "local":
            return "local"
        if target.kind == "ssh" and target.ssh is not None:
            return f"{target.ssh.user}@{target.ssh.host}:{target.ssh.port}"
        found = self.state.target() or {}
        return str(found.get("instance_id") or found.get("host") or "none")

    def extravars(self) -> dict[str, Any]:
        if self.kind == "local":
            host_root = str(default_data_dir())
            user = getpass.getuser()
            become = False
        else:
            host_root = HOST_ROOT_REMOTE
            user = RUN_USER_REMOTE
            ssh = self.job.spec.target.ssh
            become = ssh.become if ssh is not None else True
        return {
            "fsoci": self.job.extravars_spec(),
            "fsoci_state_dir": str(self.state.path),
            "fsoci_cache_dir": str(default_cache_dir()),
            "fsoci_host_root": host_root,
            "fsoci_user": user,
            "fsoci_become": become,
            "fsoci_job_dir": f"{host_root}/jobs/{self.job.name}",
        }

    def inventory(self) -> dict[str, Any]:
        controller = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        hosts: dict[str, Any] = {}
        target = self.job.spec.target
        if target.kind == "local":
            hosts["target"] = dict(controller)
        elif target.kind == "ssh" and target.ssh is not None:
            host: dict[str, Any] = {
                "ansible_host": target.ssh.host,
                "ansible_user": target.ssh.user,
                "ansible_port": target.ssh.port,
                "ansible_become": target.ssh.become,
                "ansible_ssh_common_args": self._ssh_common_args(),
            }
            if target.ssh.key:
                key = Path(os.path.expanduser(target.ssh.key))
                host["ansible_ssh_private_key_file"] = str(
                    key if key.is_absolute() else self.job.source.parent / key
                )
            hosts["target"] = host
        else:
            found = self.state.target()
            if found:
                hosts["target"] = {
                    "ansible_host": found["host"],
                    "ansible_user": found.get("user", "opc"),
                    "ansible_port": int(found.get("port", 22)),
                    "ansible_ssh_private_key_file": found["key"],
                    "ansible_become": True,
                    "ansible_ssh_common_args": self._ssh_common_args(),
                    "fsoci_gpu_model": found.get("gpu_model"),
                    "fsoci_shape": found.get("shape"),
                }
        return {
            "all": {
                "hosts": {"localhost": controller},
                "children": {"fsoci_target": {"hosts": hosts}},
            }
        }

    def _host_key_checking(self) -> str:
        ssh = self.job.spec.target.ssh
        if ssh is not None and ssh.host_key_checking == "off":
            return "no"
        if ssh is not None and ssh.host_key_checking == "strict":
            return "yes"
        return "accept-new"

    def known_hosts(self) -> Path:
        """The job's known-hosts file; on OCI one per instance: a new instance (after a
        preemption, a failure or `down`) may get the public IP of an earlier one (an ephemeral
        address returns to the pool; a reserved one is reused by design) with host keys of its
        own, which the earlier instance's entry would refuse ("REMOTE HOST IDENTIFICATION HAS
        CHANGED", seen when a test-bed host took a preempted one's address)."""
        instance = (self.state.target() or {}).get("instance_id") if self.kind == "oci" else None
        if not instance:
            return self.state.path / "known_hosts"
        return self.state.path / f"known_hosts.{str(instance).rsplit('.', 1)[-1][-16:]}"

    def _forget_other_instances(self) -> None:
        """After a provision: drop the known-hosts files of the job's earlier instances."""
        keep = self.known_hosts()
        for path in self.state.path.glob("known_hosts.*"):
            if path != keep:
                path.unlink(missing_ok=True)

    def _ssh_common_args(self) -> str:
        """Host-key options as a host variable, so that the roles' own ssh/rsync commands
        (upload, fetch, wheel copy) check host keys exactly as Ansible's connection does.

        One shell-quoted string (Ansible's ssh plugin and the roles split it with shlex);
        each path inside is quoted again for ssh's own option parser (ssh_config(5): "Arguments
        may optionally be enclosed in double quotes"; UserKnownHostsFile takes several
        space-separated files and expands %-tokens), so no path can add an option."""
        checking = self._host_key_checking()
        args = [
            "-o",
            f"StrictHostKeyChecking={checking}",
            "-o",
            f"UserKnownHostsFile={ssh_config_quote(str(self.known_hosts()))}",
        ]
        if checking != "yes":
            args += ["-o", "GlobalKnownHostsFile=/dev/null"]
        return shlex.join(args)

    def envvars(self) -> dict[str, str]:
        content = content_root()
        checking = self._host_key_checking()
        env = {
            "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
            "ANSIBLE_ROLES_PATH": str(content / "roles"),
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "False" if checking == "no" else "True",
            # An SSH drop must not end a job: a dead link is noticed within 30 s (ServerAlive)
            # and every SSH call is retried 8 times, pausing 0, 1, 3, 7, 15, 30, 30, 30 s
            # (ansible's ssh plugin, reconnection_retries): a link down for minutes is outlived.
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s "
            "-o ServerAliveInterval=10 -o ServerAliveCountMax=3",
            "ANSIBLE_SSH_RETRIES": str(SSH_RETRIES),
            "ANSIBLE_LOCAL_TEMP": str(self.state.path / "tmp"),
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml",
            # 1 ms by default: a few % of a core through hours of training polls
            "ANSIBLE_INTERNAL_POLL_INTERVAL": "0.05",
            # ansible-playbook of the Python running faceswap-oci, even when its venv is not
            # activated.
            "PATH": os.pathsep.join(
                [str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]
            ),
        }
        return env

    # fingerprints ------------------------------------------------------------
    def fingerprint(self, phase: str) -> str:
        spec = self.job.spec
        host = self.host_identity()
        if phase == "provision":
            parts: tuple[Any, ...] = (spec.target.model_dump(mode="json"),)
        elif phase == "setup":
            parts = (host, spec.faceswap.model_dump(mode="json"))
        elif phase == "upload":
            parts = (host, self._input_checksums())
        elif phase == "extract":
            parts = (spec.extract.model_dump(mode="json"),)
        elif phase == "train":
            parts = (spec.train.model_dump(mode="json"),)
        elif phase == "convert":
            parts = (spec.convert.model_dump(mode="json"), spec.consent)
        elif phase == "fetch":
            parts = (str(self.job.output_dir),)
        else:
            parts = ()
        index = PHASES.index(phase)
        previous = self._fingerprints.get(PHASES[index - 1], "") if index else ""
        value = fingerprint(phase, previous, *parts)
        self._fingerprints[phase] = value
        return value

    def _input_checksums(self) -> dict[str, str]:
        return {key: sha for key, (_path, sha) in self._inputs().items()}

    def _inputs(self) -> dict[str, tuple[Path, str]]:
        """Each input (and alignments sidecar) with its sha256, cached by size and mtime."""
        found: dict[str, tuple[Path, str]] = {}
        for side, path in (("a", self.job.input_a), ("b", self.job.input_b)):
            if not path.exists():  # `plan` before the inputs are there: upload is to do
                found[side] = (path, "missing")
                continue
            found[side] = (path, self.state.sha256(path))
            sidecar = path.with_name(f"{path.stem}_alignments.json")
            if sidecar.is_file():
                found[f"{side}_alignments"] = (sidecar, self.state.sha256(sidecar))
        return found

    def phase_is_current(self, phase: str) -> bool:
        stamp = self.state.stamp(phase)
        current = stamp is not None and stamp.get("fingerprint") == self.fingerprint(phase)
        if current and phase == "fetch":
            return self.outputs_intact()
        return current

    def outputs_intact(self) -> bool:
        """The fetched video is in the output folder and matches its manifest's sha256
        (a deleted or edited output makes the next run fetch it again)."""
        out = self.job.output_dir
        video, manifest = out / f"{self.job.name}.mp4", out / f"{self.job.name}.manifest.json"
        try:
            expected = json.loads(manifest.read_text())["output"]["sha256"]
            return bool(video.is_file() and self.state.sha256(video) == expected)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    # running -----------------------------------------------------------------
    def applicable(self, phase: str) -> bool:
        return applicable(self.job, phase)

    def plan_phases(self, from_phase: str | None = None, only: str | None = None) -> list[str]:
        """The phases a run would execute, in order."""
        work = [p for p in WORK_PHASES if self.applicable(p)]
        if only is not None:
            return [only]
        if from_phase is not None:
            return work[work.index(from_phase) :] if from_phase in work else [from_phase]
        todo: list[str] = []
        for phase in work:
            if todo or not self.phase_is_current(phase):
                todo.append(phase)
        return todo

    def run(
        self, *, from_phase: str | None = None, only: str | None = None, teardown: bool = True
    ) -> JobResult:
        for name in (from_phase, only):
            if name is not None and (name not in PHASES or not self.applicable(name)):
                raise BadArgument(
                    f"phase {name!r} is unknown or does not apply to target.kind {self.kind!r}; "
                    f"choose one of {', '.join(p for p in PHASES if self.applicable(p))}"
                )
        self.state.save_spec(self.job.public_spec(), self.job.source)
        todo = self.plan_phases(from_phase, only)
        skipped = (
            []
            if only or from_phase
            else [p for p in WORK_PHASES if self.applicable(p) and p not in todo]
        )
        for phase in skipped:
            self._emit(ev.PhaseSkipped(phase, reason="finished earlier; inputs unchanged"))
        ran: list[str] = []
        changed = 0
        self._started = time.time()
        status = "successful"
        error: str | None = None
        left: tuple[str, ...] = ()
        handed = False
        with _cancel_on_signals(self._cancel):
            recoveries = rejoins = 0
            while True:
                try:
                    for phase in todo:
                        if phase == "teardown" and only != "teardown":
                            continue  # runs below, as the teardown policy says
                        ran.append(phase)
                        if phase == "train" and self.hands_over(only):
                            # start the training (the supervisor in detached mode) and leave;
                            # no stamp: the job's train phase is the agent's now
                            changed += self.run_phase(
                                phase, extra={"faceswap_train_wait": False}, stamp=False
                            )
                            handed = True
                            self._emit(
                                ev.Report(
                                    phase,
                                    report="handed_over",
                                    data={
                                        "instance_id": (self.state.target() or {}).get(
                                            "instance_id"
                                        ),
                                        "attach": f"faceswap-oci attach {self.job.source}",
                                    },
                                )
                            )
                            break
                        changed += self.run_phase(phase, cancellable=phase != "teardown")
                except Interrupted as exc:
                    status, error = "canceled", str(exc)
                except PhaseFailed as exc:
                    gone = None if only else self.preempted_instance(exc.phase)
                    oci = self.job.spec.target.oci
                    if gone is not None and oci is not None and recoveries < oci.max_recoveries:
                        recoveries += 1
                        self._emit(
                            ev.Preempted(
                                exc.phase,
                                instance_id=gone,
                                recovery=recoveries,
                                max_recoveries=oci.max_recoveries,
                                snapshot_iterations=self._held.get("snapshot_iterations"),
                                usd=self._bill_preempted(gone),
                            )
                        )
                        todo = self.plan_phases(from_phase="provision")
                        continue
                    unreachable, self._unreachable = self._unreachable, False
                    if (
                        unreachable
                        and exc.phase == "train"
                        and not only
                        and rejoins < UNREACHABLE_REJOINS
                        and self.instance_live() is True
                    ):
                        rejoins += 1
                        self._emit(
                            ev.Report(
                                exc.phase,
                                report="host_unreachable",
                                data={
                                    "instance_state": "live",
                                    "rejoin": rejoins,
                                    "max_rejoins": UNREACHABLE_REJOINS,
                                },
                            )
                        )
                        todo = self.plan_phases(from_phase="train")
                        continue
                    status, error = "failed", str(exc)
                except ResourcesLeft as exc:
                    status, error, left = "failed", str(exc), self.resources_left()
                break
            if teardown and self.wants_teardown(status, only) and not left and not handed:
                if self._cancel.hurry:
                    left = self.resources_left()
                    error = f"{error}; teardown skipped (second interrupt)"
                else:
                    try:
                        if "train" in ran or only == "teardown":
                            self.save_before_teardown()
                        changed += self.run_phase("teardown", cancellable=False)
                        ran.append("teardown")
                    except (PhaseFailed, ResourcesLeft) as exc:
                        status = "failed"
                        error = f"{error}; {exc}" if error else str(exc)
                        left = self.resources_left()
            elif self._cancel.hurry and self.kind == "oci" and not left and status != "successful":
                left = self.resources_left()
        if left:
            self._emit(ev.Report("-", report="resources_left", data={"resources": list(left)}))
        self.state.set_status(
            "detached"
            if handed and status == "successful"
            else {"successful": "finished"}.get(status, status),
            ran[-1] if ran else None,
            error=error,
        )
        cost = self.billed_cost(status, ran)
        if cost is not None:
            self._emit(ev.Report("-", report="cost", data=cost))
        if error:
            self._emit(ev.JobFailed(ran[-1] if ran else "-", message=error))
        self._emit(ev.JobFinished("-", status=status, changed=changed))
        if self.notifier is not None:
            self.notifier.close()
        return JobResult(
            name=self.job.name,
            status=status,
            state_dir=self.state.path,
            phases_run=tuple(ran),
            phases_skipped=tuple(skipped),
            changed=changed,
            output_dir=self.job.output_dir,
            error=error,
            durations=dict(self._durations),
            cost=cost,
            resources_left=left,
            detached=handed and status == "successful",
        )

    def hands_over(self, only: str | None) -> bool:
        """Whether this run hands the job to its VM at the train phase: a detached OCI job's
        whole run (not ``--only``)."""
        oci = self.job.spec.target.oci
        return self.kind == "oci" and oci is not None and oci.detach and only is None

    def preempted_instance(self, phase: str) -> str | None:
        """The job's preemptible instance, when a failed phase on it is explained by its
        preemption: it is no longer among the job's live instances (asked of the OCI API by
        the ``instance_state`` playbook). Then the host is forgotten (it is gone) and its OCID
        returned; else None."""
        oci = self.job.spec.target.oci
        found = self.state.target() or {}
        instance = found.get("instance_id")
        if self.kind != "oci" or oci is None or not oci.preemptible or not instance:
            return None
        if phase in ("provision", "teardown"):
            return None
        if self.instance_live() is not False:
            return None  # live, or the API did not answer: no evidence of a preemption
        (self.state.path / "target.json").unlink(missing_ok=True)
        return str(instance)

    def instance_live(self) -> bool | None:
        """Whether the OCI API lists the job's instance among its live resources (the
        ``instance_state`` playbook); None when there is none or the API did not answer."""
        instance = (self.state.target() or {}).get("instance_id")
        if self.kind != "oci" or not instance:
            return None
        self._instance_state = None
        try:
            self.run_phase("instance_state", stamp=False, cancellable=False)
        except PhaseFailed:
            return None
        if self._instance_state is None:
            return None
        return instance in {r.get("id") for r in self._instance_state.get("resources", [])}

    def _bill_preempted(self, instance: str) -> float | None:
        """Mark the preempted instance terminated now in the cost ledger (this run bills it)
        and return its list-price cost; None when the ledger never saw it."""
        from faceswap_oci import cost

        ledger = cost.Ledger.load(self.state.path)
        record = ledger.instances.get(instance)
        if record is None or not record.get("shape") or not record.get("time_created"):
            return None
        record["time_terminated"] = dt.datetime.now(dt.UTC).isoformat()
        ledger.save()
        self._terminated.append(instance)
        try:
            return cost.bill_instance(record).total_usd
        except cost.UnknownShapePrice:
            return None

    def save_before_teardown(self) -> None:
        """OCI with a job bucket: before the host is deleted, make its training save and stop
        (the ``stop`` entry point), which pushes a final snapshot and verifies it. When the host
        cannot be reached, report how many iterations the bucket holds and how many are lost."""
        oci = self.job.spec.target.oci
        if self.kind != "oci" or oci is None or not oci.storage.enabled:
            return
        if self.state.target() is None or not (self.state.path / "storage.par").exists():
            return  # no host, or no bucket: nothing to save
        try:
            self.run_phase("stop", stamp=False, cancellable=False)
        except PhaseFailed as exc:
            held = self._held.get("snapshot_iterations", 0)
            trained = max(self._held.get("model_iterations", 0), held)
            self._emit(
                ev.Report(
                    "teardown",
                    report="snapshot_unsaved",
                    data={
                        "snapshot_iterations": held,
                        "model_iterations": trained,
                        "lost_iterations": trained - held,
                        "why": str(exc),
                    },
                )
            )

    def resources_left(self) -> tuple[str, ...]:
        """What an unfinished teardown may have left, and how to remove it."""
        oci = self.job.spec.target.oci
        if self.kind != "oci" or oci is None:
            return ()
        found = self.state.target() or {}
        named = [f"instance {found['instance_id']}"] if found.get("instance_id") else []
        return (
            *named,
            f"every resource tagged faceswap-oci-job={self.job.name} (instance, VCN, subnet, "
            f"internet gateway, route table, security list) in compartment {oci.compartment}, "
            f"region {oci.region}",
            f"remove them with: faceswap-oci down {shlex.quote(str(self.job.source))} "
            f"(or list them: faceswap-oci sweep {shlex.quote(str(self.job.source))})",
        )

    def teardown_timeout(self) -> float:
        raw = os.environ.get("FSOCI_TEARDOWN_TIMEOUT", "")
        try:
            value = float(raw) if raw else DEFAULT_TEARDOWN_TIMEOUT_S
        except ValueError:
            value = DEFAULT_TEARDOWN_TIMEOUT_S
        return value if 0 < value < float("inf") else DEFAULT_TEARDOWN_TIMEOUT_S

    def _run_playbook(
        self,
        phase: str,
        pdd: Path,
        playbook: Path,
        handler: Callable[[dict[str, Any]], bool],
        *,
        cancellable: bool,
    ) -> tuple[Any, bool, bool]:
        """Run one playbook with ansible-runner in a thread, while this (main) thread watches
        for a cancel and, in teardown, the time limit. Returns (result, stopped, timed_out).

        ansible-runner's own cancel SIGKILLs only the process group of ansible-playbook
        (``Runner.handle_termination``) and returns without waiting; here the whole tree,
        found by the run token in each process's environment, gets SIGINT, SIGTERM, SIGKILL
        in turn and this returns only once every one of them is gone."""
        token = uuid.uuid4().hex
        envvars = {**self.envvars(), RUN_TOKEN: token}
        runner = ansible_runner.interface.init_runner(
            private_data_dir=str(pdd),
            playbook=str(playbook),
            inventory=str(pdd / "inventory" / "hosts.json"),
            envvars=envvars,
            event_handler=handler,
            cancel_callback=lambda: False,  # never ansible-runner's SIGKILL: stop_tree does it
            quiet=True,
            suppress_env_files=True,
            ident=f"{time.strftime('%Y%m%dT%H%M%S')}-{phase}",
            rotate_artifacts=30,
            verbosity=self.verbosity,
        )
        # RunnerConfig seeds its env with all of os.environ (config/_base.py, "seed env with
        # existing shell env") and writes it to artifacts/<ident>/command: keep the allow-list.
        runner.config.env = {k: v for k, v in runner.config.env.items() if env_allowed(k)}
        failure: list[BaseException] = []

        def work() -> None:
            try:
                runner.run()
            except BaseException as exc:  # re-raised in the calling thread
                failure.append(exc)

        thread = threading.Thread(target=work, name=f"fsoci-{phase}", daemon=True)
        thread.start()
        limit = self.teardown_timeout() if phase == "teardown" else None
        if limit is not None:
            self._emit(
                ev.Report(phase, report="time_limit", data={"seconds": limit, "then": "give up"})
            )
        deadline = time.monotonic() + limit if limit is not None else None
        probe = self._reclaimed_now if self._preemptible_host_phase(phase) else None
        try:
            stopped, timed_out = self._watch(thread, token, phase, cancellable, deadline, probe)
        except BaseException:  # e.g. KeyboardInterrupt outside `run` (down, sweep)
            stop_tree(token, hurry=lambda: True)
            raise
        stop_tree(token)  # nothing of this run outlives it (e.g. an ssh ControlPersist master)
        if failure:
            raise failure[0]
        return runner, stopped, timed_out

    def _watch(
        self,
        thread: threading.Thread,
        token: str,
        phase: str,
        cancellable: bool,
        deadline: float | None,
        probe: Callable[[], str | None] | None = None,
    ) -> tuple[bool, bool]:
        """Wait for the playbook's thread; stop its tree on a cancel, past the deadline, or
        when ``probe`` (asked every PREEMPTION_CHECK_S) says the host was reclaimed (then
        ``_reclaimed`` holds what it said). Returns (stopped, timed_out)."""
        stopped = timed_out = False
        noted = 0
        probe_at = time.monotonic() + PREEMPTION_CHECK_S
        while thread.is_alive():
            thread.join(0.1)
            if probe is not None and not stopped and time.monotonic() >= probe_at:
                self._reclaimed = probe()
                probe_at = time.monotonic() + PREEMPTION_CHECK_S
                if self._reclaimed is not None:
                    stopped = True  # the host is gone: nothing there to wait for
                    stop_tree(token, hurry=lambda: True)
            if self._cancel.count != noted:
                noted = self._cancel.count
                self._note_cancel(phase, cancellable)
            wants_stop = self._cancel.hurry or (cancellable and self._cancel.flag.is_set())
            if deadline is not None and time.monotonic() > deadline and not stopped:
                timed_out = True
                wants_stop = True
            if wants_stop and not stopped:
                stopped = True
                stop_tree(token, hurry=lambda: self._cancel.hurry)
        return stopped, timed_out

    def _preemptible_host_phase(self, phase: str) -> bool:
        oci = self.job.spec.target.oci
        return (
            self.kind == "oci"
            and oci is not None
            and oci.preemptible
            and phase in HOST_PHASES
            and bool((self.state.target() or {}).get("instance_id"))
        )

    def _reclaimed_now(self) -> str | None:
        """The instance's state when the OCI API says the preemption action took it
        (TERMINATING, TERMINATED, or no longer found); None while it lives or when the API did
        not answer (no evidence: asked again later)."""
        from faceswap_oci import detach

        instance = str((self.state.target() or {}).get("instance_id"))
        state = detach.instance_lifecycle(self.job, instance)
        if state in ("TERMINATING", "TERMINATED") or (state or "").startswith("gone"):
            return state
        return None

    def _note_cancel(self, phase: str, cancellable: bool) -> None:
        cancel = self._cancel
        if cancel.hurry:
            what = "stopping now, without grace periods"
            if self.kind == "oci":
                what += " and without teardown"
        elif cancellable:
            what = f"stopping the {phase} phase, then teardown as `teardown` says"
        else:
            what = f"{phase} goes on; interrupt again to stop it now"
        self._emit(
            ev.Report(phase, report="interrupt", data={"signal": cancel.signal, "then": what})
        )

    def _track_instances(self, event: ev.Report) -> None:
        """Keep every instance the provision reports and the teardown removes in the job's cost
        ledger (shape and capacity type as launched, created and terminated times)."""
        from faceswap_oci import cost

        ledger = cost.Ledger.load(self.state.path)
        if event.report == "oci_attempts":
            ledger.seen(event.data)
        else:
            for item in event.data.get("removed") or []:
                if item.get("kind") == "instance":
                    ledger.seen(item)
                    self._terminated.append(str(item["id"]))
        ledger.save()

    def billed_cost(self, status: str, phases: list[str]) -> dict[str, Any] | None:
        """This run's billed cost on OCI (None on other targets), stored in the job's cost
        history: the instances this run terminated, each for its whole lifetime at the price of
        the shape and capacity type it was launched with, plus its boot volume. A run that
        created no instance costs $0 of compute."""
        if self.kind != "oci":
            return None
        from faceswap_oci import cost

        ledger = cost.Ledger.load(self.state.path)
        try:
            run = ledger.record_run(
                dt.datetime.fromtimestamp(self._started, dt.UTC).isoformat(),
                status,
                phases,
                self._terminated,
            )
        except cost.UnknownShapePrice as exc:
            return {"error": str(exc)}
        ledger.save()
        return run

    def wants_teardown(self, status: str, only: str | None = None) -> bool:
        """Whether the run ends with a teardown. ``--only <phase>`` asks for that phase alone:
        a successful ``--only provision`` keeps what it made (``down`` removes it); after a
        failure ``teardown: always`` still cleans up."""
        if self.kind != "oci":
            return False
        policy = self.job.spec.teardown
        if only is not None and only != "teardown":
            return policy == "always" and status != "successful"
        return policy == "always" or (policy == "on_success" and status == "successful")

    def run_phase(
        self,
        phase: str,
        *,
        cancellable: bool = True,
        extra: dict[str, Any] | None = None,
        stamp: bool = True,
    ) -> int:
        """Run one phase's playbook (``playbooks/<phase>.yml``); return its changed count or
        raise PhaseFailed. ``extra`` adds extra vars; ``stamp=False`` leaves no stamp (for
        playbooks outside the job's phases, e.g. ``sweep``)."""
        fp = self.fingerprint(phase) if stamp else ""
        playbook = playbook_path(phase)
        if not playbook.is_file():
            raise PhaseFailed(phase, f"playbook {playbook} is missing from the installation")
        pdd = self.state.runner_dir
        (pdd / "env").mkdir(parents=True, exist_ok=True, mode=0o700)
        (pdd / "inventory").mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.state.path / "tmp").mkdir(exist_ok=True, mode=0o700)
        (pdd / "inventory" / "hosts.json").write_text(json.dumps(self.inventory(), indent=2))
        phase_vars: dict[str, Any] = {}
        if phase in ("upload", "fetch"):
            # upload compares the host's sha256 with these instead of hashing again; fetch checks
            # that the video's manifest names them
            phase_vars["fsoci_input_sha256"] = {str(p): sha for p, sha in self._inputs().values()}
        if phase == "teardown":
            # The job bucket goes only once the results are here and verified (and the spec
            # does not keep it): until then it holds the only copy of the model.
            oci = self.job.spec.target.oci
            keep = oci is None or oci.storage.keep
            phase_vars["fsoci_remove_storage"] = not keep and self.outputs_intact()
        (pdd / "env" / "extravars").write_text(
            json.dumps({**self.extravars(), **phase_vars, **(extra or {})}, indent=2)
        )
        self.state.set_status("running", phase)
        self._emit(ev.PhaseStarted(phase, playbook=str(playbook)))
        counts = {"changed": 0, "failed": 0}
        failure: list[str] = []

        def handler(raw: dict[str, Any]) -> bool:
            for event in ev.from_runner(phase, raw):
                if isinstance(event, ev.TaskDone):
                    if event.status is ev.TaskStatus.CHANGED:
                        counts["changed"] += 1
                    elif event.status in {ev.TaskStatus.FAILED, ev.TaskStatus.UNREACHABLE}:
                        counts["failed"] += 1
                        failure.append(f"{event.task} on {event.host}: {event.message}")
                if isinstance(event, ev.RunnerEvent):
                    continue
                self._emit(event)
            return True

        started = time.monotonic()
        result, stopped, timed_out = self._run_playbook(
            phase, pdd, playbook, handler, cancellable=cancellable
        )
        duration = time.monotonic() - started
        self._durations[phase] = self._durations.get(phase, 0.0) + duration
        reclaimed, self._reclaimed = self._reclaimed, None
        status = "failed" if reclaimed else "canceled" if stopped else str(result.status)
        phase_status = {
            "successful": ev.PhaseStatus.SUCCESSFUL,
            "canceled": ev.PhaseStatus.CANCELED,
        }.get(status, ev.PhaseStatus.FAILED)
        self._emit(
            ev.PhaseFinished(
                phase,
                status=phase_status,
                changed=counts["changed"],
                failed=counts["failed"],
                duration_s=round(duration, 3),
            )
        )
        if reclaimed is not None:
            # run() takes the preemption path: the API is asked again and a new host made
            raise PhaseFailed(
                phase,
                f"the job's preemptible instance was reclaimed during {phase} (the OCI API "
                f"says {reclaimed})",
            )
        if timed_out or (stopped and not cancellable):
            self.state.set_status("interrupted", phase)
            why = (
                f"gave up after {self.teardown_timeout():.0f} s (the OCI API did not answer)"
                if timed_out
                else "stopped by a second interrupt"
            )
            raise ResourcesLeft(f"phase {phase!r} {why}; resources of the job may be left")
        if phase_status is ev.PhaseStatus.CANCELED:
            self.state.set_status("interrupted", phase)
            raise Interrupted(
                f"interrupted during phase {phase!r}; the job's state is kept in "
                f"{self.state.path}. Resume with: faceswap-oci run {self.job.source}"
            )
        if phase_status is not ev.PhaseStatus.SUCCESSFUL:
            detail = failure[-1] if failure else f"ansible-runner status {status} (rc {result.rc})"
            log = Path(pdd) / "artifacts" / str(result.config.ident) / "stdout"
            raise PhaseFailed(phase, f"{detail}\n  full log: {log}")
        if phase == "teardown":
            self.state.clear_stamp("provision")
        elif phase == "provision":
            self._forget_other_instances()
        if phase != "teardown" and stamp:
            self.state.write_stamp(phase, fp, changed=counts["changed"])
        return counts["changed"]
