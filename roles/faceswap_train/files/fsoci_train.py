#!/usr/bin/env python3
"""Host-side supervisor and poller for one faceswap-oci training job (stdlib only).

Installed by the ``faceswap_train`` role into ``<job>/config/`` and driven by one JSON config
(``<job>/config/train.json``). Subcommands:

``run CONFIG``
    Foreground supervisor, the ExecStart of the systemd unit (or the detached process). Copies
    the spec's train.ini to the working copy Faceswap rewrites, computes the remaining
    iterations from ``<model>_state.json`` (``-i`` counts per session, the state file holds the
    cumulative count), runs ``faceswap.py train`` with stdin from /dev/null and stdout/stderr
    appended to ``logs/train.out``, and records the exit status in ``logs/train.exit.json``.
    SIGINT or SIGTERM to the supervisor (``systemctl stop`` with ``KillSignal=SIGINT`` and
    ``KillMode=mixed``, or ``poll``) is forwarded once as SIGINT to Faceswap's main process
    only, as Faceswap's GUI does; Faceswap then saves and exits 0.
``start CONFIG``
    Detach ``run`` into its own session (used where no systemd is available) and return.
``status CONFIG``
    One JSON line: whether the supervisor of this job is alive, and its pid.
``prepare CONFIG SECONDS``
    Keep the model only if it was trained on what the config's ``made_from`` names (the faces'
    checksums, the trainer, the model settings; ``<model>/.fsoci_made_from.json`` records it).
    Otherwise a model trained on other faces is no resume: stop a running training (as
    ``stop``), move the model and its training logs aside to ``<job>/model.replaced/<when>-<key>/``
    and start from an empty model folder. One JSON line ``{"fsoci_prepare": {...}}`` says what
    it did and why.
``restore CONFIG``
    With a job bucket (the config's ``snapshot``), bring back the latest complete snapshot when
    it holds more iterations than the model on disk (a new host after a preemption, a failure or
    a ``down``), and the faces when their folders are empty. One JSON line
    ``{"fsoci_restore": {...}}``.
``poll CONFIG [SECONDS]``
    (With SECONDS: wait up to that long for the training to end, checking every second, then
    answer; the role's poll loop uses it, so the end of a training is seen at once.)
    One JSON line ``{"fsoci_progress": {...}}`` with iteration, losses, it/s and a state:
    ``starting``, ``running``, ``stopping``, ``finished``, ``stopped`` or ``failed``. Decides the
    stop criteria (wall-clock hours since the job's first start, loss plateau; the iteration
    target is Faceswap's own ``-i``) and sends ONE SIGINT to the supervisor when one is met;
    copies the preview image into the job's logs.

With a job bucket, ``run`` also pushes a snapshot (fsoci_snapshot.py, next to this file) after
each model save, in a background thread, and a final one when Faceswap has exited; the faces go
up once when training starts. ``logs/snapshot.json`` says which iteration the bucket holds.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fsoci_train_core import (
    LOSS_RE,
    model_differences,
    plateau_reached,
    stop_criterion,
    use_distributed,
)
from fsoci_train_core import parse_progress as _progress
from fsoci_train_core import save_averages as _saves

__all__ = ["model_differences", "plateau_reached", "use_distributed"]

_HERE = Path(__file__).resolve().parent

TAIL_BYTES = 256 * 1024


class Job:
    """Paths and settings of one training job, read from its JSON config."""

    def __init__(self, config_path: str) -> None:
        with open(config_path, encoding="utf-8") as handle:
            self.cfg: dict[str, Any] = json.load(handle)
        self.job_dir = Path(self.cfg["job_dir"])
        self.logs = self.job_dir / "logs"
        self.model_dir = Path(self.cfg["model_dir"])
        self.out = self.logs / "train.out"
        self.pidfile = self.logs / "train.pid"
        self.exitfile = self.logs / "train.exit.json"
        self.stopfile = self.logs / "train.stop.json"
        self.startfile = self.logs / "train.started.json"
        self.sessionfile = self.logs / "train.session.json"
        self.donefile = self.model_dir / ".fsoci_train_done"
        self.madefile = self.model_dir / ".fsoci_made_from.json"
        self.preview_src = Path(self.cfg["faceswap_dir"]) / "training_preview.png"
        self.preview_dst = self.logs / "preview.png"
        self.state_file = self.model_dir / f"{self.cfg['trainer']}_state.json"
        self.snapshot_status = self.logs / "snapshot.json"

    def iterations(self) -> int:
        try:
            with open(self.state_file, encoding="utf-8") as handle:
                return int(json.load(handle).get("iterations", 0))
        except (OSError, ValueError):
            return 0

    def alive_pid(self) -> int | None:
        """The supervisor's pid if it is running (pid file plus a matching command line)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        args = [a.decode(errors="replace") for a in cmdline]
        if "run" in args and any(a.endswith("fsoci_train.py") for a in args):
            return pid
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _load_by_path(name: str, *places: Path) -> Any:
    """The module ``name`` from the first of *places* holding ``<name>.py``."""
    for place in places:
        path = place / f"{name}.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                break
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError(f"{name}.py is in none of {', '.join(map(str, places))}")


@functools.cache
def _faceswap_cli() -> Any:
    """The one builder of Faceswap's command lines (plugins/module_utils/faceswap_cli.py):
    the role installs it next to this file; in the checkout it is the collection's own."""
    return _load_by_path("faceswap_cli", _HERE, _HERE.parents[2] / "plugins" / "module_utils")


def build_command(job: Job) -> list[str]:
    cfg = job.cfg
    target = int(cfg.get("iterations") or 0)
    exclude = [int(i) for i in cfg.get("exclude_gpus") or []]
    argv: list[str] = _faceswap_cli().train_argv(
        cfg["python"],
        str(Path(cfg["faceswap_dir"]) / "faceswap.py"),
        faces_a=cfg["faces_a"],
        faces_b=cfg["faces_b"],
        model_dir=str(job.model_dir),
        trainer=cfg["trainer"],
        batch_size=int(cfg["batch_size"]),
        save_every=int(cfg["save_every"]),
        log=str(job.logs / "train.log"),
        ini=cfg["ini_work"] if cfg.get("ini_src") else "",
        # what is left to train: Faceswap's -i counts this session's iterations
        iterations=max(target - job.iterations(), 1) if target > 0 else 0,
        preview=bool(cfg.get("preview")),
        exclude_gpus=exclude,
        distributed=use_distributed(
            cfg.get("distributed", "auto"), int(cfg.get("gpu_count") or 0), exclude
        ),
        extra=[str(a) for a in cfg.get("extra_args", [])],
    )
    return argv


@functools.cache
def _snapshot_helper() -> Any:
    """fsoci_snapshot.py, installed next to this file (loaded once)."""
    return _load_by_path("fsoci_snapshot", _HERE)


def snapshot_store(job: Job) -> Any | None:
    """The job bucket's store (through the PAR), or None without a job bucket."""
    cfg = job.cfg.get("snapshot") or {}
    if not cfg.get("par_file"):
        return None
    helper = _snapshot_helper()
    return helper.ParStore(helper.read_par_url(cfg["par_file"]), cfg["prefix"])


SNAPSHOT_NICE = 10
"""The snapshot thread's nice value: staging, checksums and the upload wait for Faceswap when
the cores are busy. (On 2 CPU cores with a push every 5 iterations, benchmarks/snapshot.py
measured 0.80-0.88 of the training speed with snapshots on at nice 0, and 0.817 at nice 10:
there the pushes' own work, and the OCI double's beside it, is the cost.)"""


def _lower_this_thread(nice: int) -> None:
    """Lower the calling thread alone (Linux: setpriority(2) of a thread id is per thread)."""
    native = getattr(threading, "get_native_id", None)
    if native is None or not hasattr(os, "setpriority"):
        return
    thread = native()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, max(os.getpriority(os.PRIO_PROCESS, thread), nice))


class Snapshotter:
    """Pushes a snapshot after each model save (the state file's iteration count grew and the
    save has settled), one at a time, and records the outcome in ``logs/snapshot.json``."""

    def __init__(self, job: Job, store: Any, settle_s: float = 1.0) -> None:
        self.job = job
        self.store = store
        self.helper = _snapshot_helper()
        self.settle_s = settle_s
        status = _read_json(job.snapshot_status) or {}
        self.pushed = int(status.get("iteration") or -1)
        # the model folder's files as the last pushed snapshot copied them: a save at the same
        # iteration (the exit's, after the last interval's) is pushed again
        self.pushed_files: list[Any] | None = None
        self.pushed_sha: dict[str, str] = {}
        self.staging = job.job_dir / "snapshot.staging"
        self.journal = job.job_dir / "snapshot.journal"

    def due(self, settled: bool = True) -> int | None:
        """The model's iteration count when it is newer than the last snapshot."""
        try:
            mtime = self.job.state_file.stat().st_mtime
        except OSError:
            return None
        iterations = self.job.iterations()
        if iterations < self.pushed or (iterations == self.pushed and not self._saved_again()):
            return None
        if settled and time.time() - mtime < self.settle_s:
            return None  # Faceswap may still be writing this save
        return iterations

    def _saved_again(self) -> bool:
        """Whether the model folder this process pushed at its iteration count was saved again
        with other contents (the exit's save after the last interval's)."""
        if self.pushed_files is None:
            return False
        now = self.helper.save_signature(self.job.model_dir)
        if now == self.pushed_files:
            return False
        model = {
            k: v
            for k, v in self.pushed_sha.items()
            if k.startswith("model/") and not self.helper.is_training_log(k[len("model/") :])
        }
        local = {
            f"model/{rel}": self.helper.file_digests(self.job.model_dir / rel)["sha256"]
            for rel, _size, _mtime in now
        }
        if local == model:
            self.pushed_files = now  # rewritten, the same bytes: nothing to push
            return False
        return True

    def push(self, iterations: int) -> bool:
        started = time.time()
        try:
            extra = [self.job.preview_dst] if self.job.preview_dst.exists() else []
            staged, files = self.helper.stage(self.job.model_dir, extra, self.staging)
            pointer = self.helper.push_snapshot(self.store, staged, iterations, self.journal)
        except (self.helper.SnapshotError, OSError) as exc:
            status = _read_json(self.job.snapshot_status) or {}
            status.update(error=str(exc), failed_iteration=iterations, time=time.time())
            _write_json(self.job.snapshot_status, status)
            return False
        self.pushed = int(pointer["iteration"])
        if self.pushed == iterations:
            self.pushed_files, self.pushed_sha = files, dict(pointer.get("files") or {})
        _write_json(
            self.job.snapshot_status,
            {
                "iteration": self.pushed,
                "snapshot": pointer["snapshot"],
                "time": time.time(),
                "seconds": round(time.time() - started, 3),
            },
        )
        return True

    def push_faces(self) -> None:
        folders = {
            k: Path(v) for k, v in (self.job.cfg.get("snapshot") or {}).get("faces", {}).items()
        }
        if folders:
            # With each side's alignments file and extract marker, so that a new host's extract
            # phase restores them and skips (fsoci_snapshot.restore_extract).
            outputs = self.helper.extract_outputs_from_markers(self.job.job_dir, folders)
            outputs.update(folders)
            with contextlib.suppress(self.helper.SnapshotError, OSError):
                self.helper.push_faces(self.store, outputs, self.journal)

    def loop(self, stop: threading.Event, interval: float = 2.0) -> None:
        _lower_this_thread(SNAPSHOT_NICE)
        self.push_faces()
        while not stop.wait(interval):
            iterations = self.due()
            if iterations is not None:
                self.push(iterations)


def cmd_run(job: Job) -> int:
    job.logs.mkdir(parents=True, exist_ok=True)
    job.model_dir.mkdir(parents=True, exist_ok=True)
    if job.alive_pid() not in (None, os.getpid()):
        print("training of this job is already running", file=sys.stderr)
        return 3
    job.pidfile.write_text(f"{os.getpid()}\n", encoding="utf-8")
    for stale in (job.exitfile, job.stopfile, job.logs / "detached.json"):
        stale.unlink(missing_ok=True)
    now = time.time()
    if not job.startfile.exists():
        _write_json(job.startfile, {"started": now})
    _write_json(job.sessionfile, {"started": now, "pid": os.getpid()})
    if job.cfg.get("ini_src"):
        shutil.copyfile(job.cfg["ini_src"], job.cfg["ini_work"])
    env = dict(os.environ)
    env.update({k: str(v) for k, v in job.cfg.get("env", {}).items()})
    cmd = build_command(job)
    child: list[subprocess.Popen[bytes]] = []
    forwarded: list[float] = []

    def _on_stop(signum: int, frame: object) -> None:
        # Like Faceswap's GUI: one SIGINT to Faceswap's main process only. Its data-loader
        # workers must not get it (they die and training crashes instead of saving), and a
        # second SIGINT would make Faceswap quit without saving.
        del signum, frame
        if child and not forwarded:
            forwarded.append(time.time())
            with contextlib.suppress(ProcessLookupError):
                child[0].send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, _on_stop)
    signal.signal(signal.SIGTERM, _on_stop)
    store = snapshot_store(job)
    snapshots = Snapshotter(job, store) if store is not None else None
    stop_snapshots = threading.Event()
    if snapshots is not None:
        threading.Thread(target=snapshots.loop, args=(stop_snapshots,), daemon=True).start()
    detached = job.cfg.get("detached") or {}
    if detached:
        # No controller polls a detached job: follow its stop criteria here.
        interval = float(detached.get("poll_s") or 30)
        threading.Thread(
            target=_follow_criteria, args=(job, stop_snapshots, interval), daemon=True
        ).start()
    with open(job.out, "ab") as out, open(os.devnull, "rb") as devnull:
        out.write(f"\n[fsoci] {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        child.append(
            subprocess.Popen(
                cmd,
                stdin=devnull,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=job.job_dir,
                start_new_session=True,
            )
        )
        rc = child[0].wait()
    stop_snapshots.set()
    if snapshots is not None:
        # The final save is on disk now: push it before the host may go away.
        final = snapshots.due(settled=False)
        if final is not None:
            snapshots.push(final)
    _write_json(job.exitfile, {"rc": rc, "ended": time.time(), "iterations": job.iterations()})
    job.pidfile.unlink(missing_ok=True)
    if detached:
        finish_detached(job, store, detached)
    return rc


def _follow_criteria(job: Job, stop: threading.Event, interval: float) -> None:
    """A detached job's own poll: ``poll_once`` asks the training to stop (SIGINT, a save)
    once the hours or plateau criterion is met; the iteration target is Faceswap's ``-i``."""
    while not stop.wait(interval):
        with contextlib.suppress(Exception):
            poll_once(job)


def finish_detached(job: Job, store: Any, detached: dict[str, Any]) -> dict[str, Any] | None:
    """After a detached job's training ended (the final snapshot pushed): the marker in the
    bucket, then the end of the instance's billing (fsoci_detached.finish). A training stopped
    by request (``stop``, ``down``: the controller is acting) is left alone."""
    progress = poll_once(job)
    if progress["state"] not in ("finished", "failed"):
        return None
    agent = _load_by_path("fsoci_detached", _HERE)

    def put_marker(body: dict[str, Any]) -> None:
        if store is None:
            raise OSError("the job has no bucket (target.oci.storage.enabled is false)")
        store.put_bytes(agent.MARKER, json.dumps(body, sort_keys=True).encode())

    def end_billing() -> dict[str, Any]:
        argv = [str(a) for a in detached.get("terminate") or []]
        if not argv:
            return {"action": "none", "reason": "no terminate command: left to the watchdog"}
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        lines = done.stdout.strip().splitlines()
        try:
            result: dict[str, Any] = json.loads(lines[-1])
        except (IndexError, ValueError):
            result = {"action": "none", "reason": f"the terminate command exited {done.returncode}"}
        return result

    tail = progress.get("log_tail") or []
    outcome: dict[str, Any] = agent.finish(
        None,
        lambda: {},
        put_marker,
        end_billing,
        int(progress.get("model_iterations") or 0),
        log=lambda text: print(text, file=sys.stderr),
        failure=(tail[-1] if tail else "faceswap train failed")
        if progress["state"] == "failed"
        else None,
    )
    _write_json(job.logs / "detached.json", outcome)
    return outcome


def cmd_start(job: Job, config_path: str) -> int:
    if job.alive_pid() is not None:
        return 0
    job.logs.mkdir(parents=True, exist_ok=True)
    if os.fork() > 0:
        # Wait until the grandchild has written its pid so that `status` sees it at once.
        for _ in range(100):
            if job.alive_pid() is not None:
                return 0
            time.sleep(0.05)
        return 0
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), "run", config_path])
    return 0  # not reached


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _copy_preview(job: Job) -> None:
    """Copy Faceswap's preview (one file per Faceswap checkout) once this session wrote it."""
    try:
        src = job.preview_src.stat()
    except OSError:
        return
    try:
        dst_mtime = job.preview_dst.stat().st_mtime
    except OSError:
        dst_mtime = 0.0
    session = float((_read_json(job.sessionfile) or {}).get("started", time.time()))
    if src.st_mtime > max(dst_mtime, session):
        tmp = job.preview_dst.with_suffix(".png.tmp")
        shutil.copyfile(job.preview_src, tmp)
        os.replace(tmp, job.preview_dst)


def _request_stop(job: Job, pid: int, reason: str) -> None:
    if job.stopfile.exists():
        return  # one SIGINT only: a second one makes Faceswap quit without saving
    _write_json(job.stopfile, {"reason": reason, "requested": time.time()})
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # the supervisor forwards it to Faceswap's main process


def criterion_met(job: Job, state_iters: int) -> str | None:
    """The stop criterion the job's training has met, if any (iterations, hours, plateau)."""
    started = (_read_json(job.startfile) or {}).get("started")
    return stop_criterion(
        job.cfg, state_iters, started, time.time(), lambda: _saves(_tail(job.out))
    )


def poll_once(job: Job) -> dict[str, Any]:
    """The training's progress and state now (and one stop request when a criterion is met)."""
    cfg = job.cfg
    text = _tail(job.out)
    info = _progress(text)
    state_iters = job.iterations()
    target = int(cfg.get("iterations") or 0)
    criteria = {k: cfg.get(k) for k in ("iterations", "hours", "plateau_saves")}
    pid = job.alive_pid()
    stop = _read_json(job.stopfile)
    reason = stop.get("reason") if stop else None
    if info["iteration"] is None:
        info["iteration"] = state_iters
    if cfg.get("preview"):
        _copy_preview(job)
    done = _read_json(job.donefile)
    if done is not None and done.get("criteria") != criteria:
        # The spec's stop criteria changed since the training ended: judge again (more
        # iterations or hours resume the training from the saved model).
        job.donefile.unlink(missing_ok=True)
        done = None
    if done is not None:
        state = "finished"
        reason = done.get("reason", reason)
    elif pid is not None:
        if reason is None:
            reason = criterion_met(job, state_iters)
            # The iteration target needs no signal: `run` passed the remainder as `-i`, and a
            # SIGINT during Faceswap's own final save would cut that save short.
            if reason == "iterations":
                reason = None
            if reason is not None:
                _request_stop(job, pid, reason)
        if reason is not None:
            state = "stopping"
        else:
            state = "running" if LOSS_RE.search(text) else "starting"
    else:
        exit_info = _read_json(job.exitfile)
        requested = reason
        reason = criterion_met(job, state_iters)
        if exit_info is not None and int(exit_info.get("rc", 1)) != 0:
            state = "failed"
        elif reason is not None:
            state = "finished"
            _write_json(
                job.donefile, {"reason": reason, "iterations": state_iters, "criteria": criteria}
            )
        else:
            state = "stopped"
            reason = requested  # e.g. "stopped by request" (faceswap-oci down)
    info["iteration"] = max(int(info["iteration"] or 0), state_iters)
    progress = {"phase": "train", **info, "state": state, "target": target or None}
    progress["model_iterations"] = state_iters
    snapshot = _read_json(job.snapshot_status)
    if snapshot is not None:
        progress["snapshot_iterations"] = snapshot.get("iteration")
    if reason:
        progress["stop_reason"] = reason
    if state in ("failed", "stopped"):
        progress["log_tail"] = text.replace("\r", "\n").splitlines()[-15:]
    return progress


TERMINAL = ("finished", "stopped", "failed")


def cmd_poll(job: Job, wait: float = 0.0) -> int:
    """Print the progress once the training reaches a terminal state, or after *wait* seconds
    (a long poll: the caller learns of the end within a second, not a poll interval later)."""
    deadline = time.monotonic() + wait
    progress = poll_once(job)
    while progress["state"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        progress = poll_once(job)
    print(json.dumps({"fsoci_progress": progress}, sort_keys=True))
    return 0


def cmd_status(job: Job) -> int:
    pid = job.alive_pid()
    print(json.dumps({"running": pid is not None, "pid": pid, "done": job.donefile.exists()}))
    return 0


def cmd_stop(job: Job, timeout: float) -> int:
    """Ask a running training to save and stop (one SIGINT, as `systemctl stop` sends) and
    wait until it has; the next start resumes from the saved model."""
    pid = job.alive_pid()
    if pid is not None:
        _request_stop(job, pid, "stopped by request")
    deadline = time.monotonic() + timeout
    while pid is not None and job.alive_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    still = job.alive_pid() is not None
    report: dict[str, Any] = {
        "was_running": pid is not None,
        "running": still,
        "iterations": job.iterations(),
    }
    store = None if still else snapshot_store(job)
    if store is not None:
        # The supervisor pushed its final snapshot on the way out; push it here if that failed
        # (or no supervisor ran since the last save), so the bucket holds the saved model.
        snapshots = Snapshotter(job, store)
        final = snapshots.due(settled=False)
        if final is not None:
            snapshots.push(final)
        report["snapshot_iterations"] = snapshots.pushed if snapshots.pushed >= 0 else None
    print(json.dumps({"fsoci_stop": report}, sort_keys=True))
    return 1 if still else 0


# The training's own files that belong with a model (moved aside with it by `prepare`).
TRAINING_LOGS = (
    "train.out",
    "train.log",
    "train.exit.json",
    "train.stop.json",
    "train.started.json",
    "train.session.json",
    "preview.png",
)


def cmd_prepare(job: Job, timeout: float) -> int:
    want = {"key": job.cfg["made_from_key"], "made_from": job.cfg["made_from"]}
    have = _read_json(job.madefile)
    report: dict[str, Any] = {"key": want["key"], "reset": False, "changed": False}
    if have is not None and have.get("key") == want["key"]:
        print(json.dumps({"fsoci_prepare": report}, sort_keys=True))
        return 0
    model = (
        [p for p in job.model_dir.iterdir() if p != job.madefile] if job.model_dir.is_dir() else []
    )
    if model:
        pid = job.alive_pid()
        if pid is not None:
            _request_stop(job, pid, "made from other inputs")
            deadline = time.monotonic() + timeout
            while job.alive_pid() is not None and time.monotonic() < deadline:
                time.sleep(0.5)
            if job.alive_pid() is not None:
                report["error"] = (
                    f"the running training (pid {pid}) did not stop in {timeout:.0f} s"
                )
                print(json.dumps({"fsoci_prepare": report}, sort_keys=True))
                return 1
        old_key = str((have or {}).get("key") or "unknown")
        aside = job.job_dir / "model.replaced" / f"{time.strftime('%Y%m%dT%H%M%S')}-{old_key[:12]}"
        aside.mkdir(parents=True)
        report.update(
            reset=True,
            why=model_differences(have, want),
            old_iterations=job.iterations(),
            kept=str(aside),
        )
        shutil.move(str(job.model_dir), str(aside / "model"))
        (aside / "logs").mkdir()
        for name in TRAINING_LOGS:
            if (job.logs / name).exists():
                shutil.move(str(job.logs / name), str(aside / "logs" / name))
    job.model_dir.mkdir(parents=True, exist_ok=True)
    _write_json(job.madefile, want)
    report["changed"] = True
    print(json.dumps({"fsoci_prepare": report}, sort_keys=True))
    return 0


def cmd_restore(job: Job) -> int:
    """Bring back the latest complete snapshot (when newer than the model here) and the faces
    (when their folders are empty) from the job bucket."""
    report: dict[str, Any] = {"restored": False, "local_iterations": job.iterations()}
    store = snapshot_store(job)
    if store is None:
        report["why"] = "no job bucket"
        print(json.dumps({"fsoci_restore": report}, sort_keys=True))
        return 0
    helper = _snapshot_helper()
    try:
        pointer = store.get_json(helper.POINTER)
        if pointer is not None and int(pointer["iteration"]) > job.iterations():
            incoming = job.job_dir / "snapshot.restore"
            helper.restore_snapshot(store, incoming)
            if job.model_dir.exists():
                shutil.rmtree(job.model_dir)
            os.replace(incoming / "model", job.model_dir)
            if (incoming / job.preview_dst.name).exists():
                job.logs.mkdir(parents=True, exist_ok=True)
                os.replace(incoming / job.preview_dst.name, job.preview_dst)
            shutil.rmtree(incoming, ignore_errors=True)
            _write_json(
                job.snapshot_status,
                {
                    "iteration": int(pointer["iteration"]),
                    "snapshot": pointer["snapshot"],
                    "time": time.time(),
                },
            )
            report.update(restored=True, iteration=int(pointer["iteration"]))
        faces = {k: Path(v) for k, v in (job.cfg.get("snapshot") or {}).get("faces", {}).items()}
        empty = {k: p for k, p in faces.items() if not (p.is_dir() and any(p.iterdir()))}
        if empty and len(empty) == len(faces):
            report["faces"] = helper.restore_faces(store, faces)
    except helper.SnapshotError as exc:
        report["error"] = str(exc)
        print(json.dumps({"fsoci_restore": report}, sort_keys=True))
        return 1
    print(json.dumps({"fsoci_restore": report}, sort_keys=True))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] in ("stop", "prepare"):
        run = cmd_stop if argv[1] == "stop" else cmd_prepare
        return run(Job(argv[2]), float(argv[3]))
    if len(argv) == 4 and argv[1] == "poll":
        return cmd_poll(Job(argv[2]), float(argv[3]))
    if len(argv) != 3 or argv[1] not in ("run", "start", "status", "poll", "restore"):
        usage = "run|start|status|poll|restore CONFIG | poll|stop|prepare CONFIG SECONDS"
        print(f"usage: {argv[0]} {usage}", file=sys.stderr)
        return 2
    job = Job(argv[2])
    if argv[1] == "run":
        return cmd_run(job)
    if argv[1] == "start":
        return cmd_start(job, os.path.abspath(argv[2]))
    if argv[1] == "status":
        return cmd_status(job)
    if argv[1] == "restore":
        return cmd_restore(job)
    return cmd_poll(job)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
