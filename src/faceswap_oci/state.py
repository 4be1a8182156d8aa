"""The job's state directory on the controller.

Layout (mode 0700)::

    <state_root>/<job>/
        spec.json          the validated spec of the last run
        status.json        where the job stands (state, phase, pid, updated)
        stamps/<phase>.json  a finished phase and the fingerprint of what it depended on
        events.jsonl       every typed event of every run (each with its run id)
        lock, lock.json    the job lock (held by run, down, stop) and who holds it
        checksums.json     sha256 cache of input files keyed by (path, size, mtime)
        runner/            ansible-runner's private_data_dir (inventory, env, artifacts)
        target.json        the host the phases run on, when provisioned (oci)
        preview.png        the last training preview brought back
        tensorboard/       Faceswap's TensorBoard event files (loss history), per session
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from faceswap_oci.errors import BadArgument, StateError

JOB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$|^[a-z0-9]$")
"""The spec's job-name rule (spec.NAME_RE): a name never leaves the state root."""


APP_NAME = "faceswap-oci"


def default_state_root() -> Path:
    """The jobs' state folders: the platform's state folder (``$XDG_STATE_HOME`` or
    ``~/.local/state`` on Linux, ``~/Library/Application Support`` on a Mac)."""
    return Path(platformdirs.user_state_dir(APP_NAME)) / "jobs"


def default_cache_dir() -> Path:
    """The cache (faceswap_oci.cache.cache_root: ``$FSOCI_CACHE_DIR`` or the platform's)."""
    from faceswap_oci.cache import cache_root

    return cache_root()


def default_data_dir() -> Path:
    """The ``local`` target's host root: the platform's data folder (``$XDG_DATA_HOME`` or
    ``~/.local/share`` on Linux)."""
    return Path(platformdirs.user_data_dir(APP_NAME))


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, RecursionError) as exc:
        reason = str(exc)[:120]
        raise StateError(
            f"{path}: damaged state file, not valid JSON ({reason}); delete it to reset this "
            "record (a deleted stamp only makes its phase run again)"
        ) from None
    except OSError as exc:
        raise StateError(
            f"{path}: cannot be read ({exc.strerror}); fix its mode or delete it"
        ) from None


def _read_record(path: Path) -> dict[str, Any] | None:
    """A JSON object record, None when missing; anything else is a damaged file."""
    data = _read_json(path)
    if data is None or isinstance(data, dict):
        return data
    raise StateError(
        f"{path}: damaged state file (a JSON {type(data).__name__}, not an object); delete it "
        "to reset this record"
    )


def check_job_name(name: str) -> str:
    """A job name given on the command line (``status``, ``logs``): the spec's rule, so that
    ``../x`` or ``/etc`` never leads outside the state root."""
    if not JOB_NAME_RE.match(name):
        shown = repr(name) if len(name) <= 60 else repr(name[:60]) + "..."
        raise BadArgument(
            f"job name {shown} is not valid: use 1-40 of a-z, 0-9 and '-' (the job file's "
            "`name`), not a path"
        )
    return name


def check_state_root(root: Path) -> Path:
    """``--state-dir`` is a folder of job folders (or can be made), not a file nor a job's
    own state folder."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise StateError(
            f"--state-dir {root}: {existing} is a file, not a folder; give a folder for job state"
        )
    if root.is_dir() and ((root / "spec.json").is_file() or (root / "stamps").is_dir()):
        raise StateError(
            f"--state-dir {root} is the state folder of job {root.name!r}; give the folder "
            f"that holds job folders (here: {root.parent})"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StateError(f"--state-dir {root}: {existing} is not writable; give a folder you own")
    return root


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class StateDir:
    path: Path
    read_only: bool = False
    """``plan`` reads a job's state and writes nothing (no folder, no checksum cache entry)."""

    @classmethod
    def for_job(cls, name: str, root: Path | None = None) -> StateDir:
        return cls((root or default_state_root()) / check_job_name(name))

    def create(self) -> StateDir:
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.path, 0o700)
            (self.path / "stamps").mkdir(exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"{self.path}: cannot create the job's state folder ({exc.strerror}); "
                "check --state-dir"
            ) from None
        return self

    @property
    def exists(self) -> bool:
        return (self.path / "spec.json").is_file()

    @property
    def runner_dir(self) -> Path:
        return self.path / "runner"

    @property
    def events_file(self) -> Path:
        return self.path / "events.jsonl"

    # spec ------------------------------------------------------------------
    def save_spec(self, spec: dict[str, Any], source: Path) -> None:
        _write_json(self.path / "spec.json", {"source": str(source), "spec": spec})

    def load_spec(self) -> dict[str, Any]:
        data = _read_record(self.path / "spec.json")
        if data is None:
            raise StateError(
                f"{self.path}: no job state here (spec.json missing); "
                "run `faceswap-oci run <job.yml>` first or check --state-dir"
            )
        return data

    # status ----------------------------------------------------------------
    def set_status(self, state: str, phase: str | None = None, **extra: Any) -> None:
        data = {"state": state, "phase": phase, "pid": os.getpid(), "updated": time.time()}
        data.update(extra)
        _write_json(self.path / "status.json", data)

    def status(self) -> dict[str, Any]:
        """Where the job stands; a "running" job whose process is gone (killed, or its machine
        restarted) is "interrupted"."""
        data = _read_record(self.path / "status.json")
        if data is None:
            return {"state": "new", "phase": None}
        if data.get("state") == "running" and not pid_alive(data.get("pid")):
            return {**data, "state": "interrupted", "note": f"process {data.get('pid')} is gone"}
        return data

    # stamps ----------------------------------------------------------------
    def stamp(self, phase: str) -> dict[str, Any] | None:
        return _read_record(self.path / "stamps" / f"{phase}.json")

    def write_stamp(self, phase: str, fingerprint: str, **extra: Any) -> None:
        data = {"phase": phase, "fingerprint": fingerprint, "finished": time.time()}
        data.update(extra)
        _write_json(self.path / "stamps" / f"{phase}.json", data)

    def clear_stamp(self, phase: str) -> None:
        (self.path / "stamps" / f"{phase}.json").unlink(missing_ok=True)

    # target ----------------------------------------------------------------
    def target(self) -> dict[str, Any] | None:
        return _read_record(self.path / "target.json")

    # events ----------------------------------------------------------------
    def append_event(self, line: str, run: str | None = None) -> None:
        """One event line; ``run`` (the run id) tells the runs of a job apart in the log."""
        if run is not None:
            data = json.loads(line)
            data["run"] = run
            line = json.dumps(data, default=str, sort_keys=True)
        with self.events_file.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    # the job lock ----------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[str | None]:
        """Hold the job's lock (``lock``, a filelock) while ``command`` (run, down, stop) works
        on it; yields a note when it took over the lock of a process that is gone.

        The lock is an flock(2) on ``lock``: the kernel drops it when its process dies, so a
        killed run leaves no lock behind; ``lock.json`` beside it says who holds it (pid,
        command, started) for the message a second command prints (exit 3)."""
        from filelock import FileLock, Timeout

        info_file = self.path / "lock.json"
        held = FileLock(str(self.path / "lock"), timeout=0)
        try:
            held.acquire()
        except Timeout:
            holder = _read_lock_info(info_file)
            raise StateError(
                f"job {self.path.name!r} is locked by `{holder.get('command', '?')}` (pid "
                f"{holder.get('pid', '?')}, started {_when(holder.get('started'))}); wait for it "
                f"to end, or stop it (Ctrl-C in its terminal, or kill {holder.get('pid', '<pid>')})"
            ) from None
        try:
            before = _read_lock_info(info_file)
            note = None
            if before and before.get("pid") != os.getpid():
                note = (
                    f"took over the lock of job {self.path.name!r} from `{before.get('command')}` "
                    f"(pid {before.get('pid')}, started {_when(before.get('started'))}), whose "
                    "process is gone"
                )
            _write_json(info_file, {"pid": os.getpid(), "command": command, "started": time.time()})
            try:
                yield note
            finally:
                info_file.unlink(missing_ok=True)
        finally:
            held.release()

    def event_lines(self, offset: int = 0, first_line: int = 1) -> tuple[list[str], int]:
        """The event log's complete lines from byte ``offset`` on, and the offset after them;
        a line that is not UTF-8 JSON raises :class:`StateError` naming the file and the line
        (``first_line``: the number of the line at ``offset``)."""
        lines: list[str] = []
        with self.events_file.open("rb") as fh:
            fh.seek(offset)
            for number, raw in enumerate(fh, first_line):
                if not raw.endswith(b"\n"):
                    break  # a line still being written
                try:
                    line = raw.decode("utf-8")
                    json.loads(line)
                except (ValueError, RecursionError):
                    raise StateError(
                        f"{self.events_file}: line {number} is damaged (not UTF-8 JSON); delete "
                        "that line or the file (the log only records what happened)"
                    ) from None
                lines.append(line)
                offset += len(raw)
        return lines, offset

    # checksums -------------------------------------------------------------
    def sha256(self, path: Path) -> str:
        """sha256 of a file (or of a folder's files), cached by path, size and mtime."""
        cache_file = self.path / "checksums.json"
        try:
            cache = _read_record(cache_file) or {}
        except StateError:  # only a cache: a damaged one is rebuilt
            cache = {}
        st = path.stat()
        key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
        if key not in cache:
            cache[key] = sha256_path(path)
            if not self.read_only:
                _write_json(cache_file, cache)
        return str(cache[key])


def _read_lock_info(path: Path) -> dict[str, Any]:
    try:
        return _read_record(path) or {}
    except StateError:
        return {}


def _when(stamp: Any) -> str:
    if not isinstance(stamp, int | float):
        return "at an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def sha256_path(path: Path) -> str:
    """The sha256 of a file or folder, by the very function the host side uses
    (``module_utils/digests.py``), so a folder input hashes the same on both."""
    from faceswap_oci.content import module_util

    found = module_util("digests").sha256_and_size(str(path))
    if found is None:
        raise FileNotFoundError(path)
    return str(found[0])


def fingerprint(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def list_jobs(root: Path | None = None) -> list[StateDir]:
    base = root or default_state_root()
    if not base.is_dir():
        return []
    return [StateDir(p) for p in sorted(base.iterdir()) if (p / "spec.json").is_file()]
