"""The job's state directory on the controller.

Layout (mode 0700)::

    <state_root>/<job>/
        spec.json          the validated spec of the last run
        status.json        where the job stands (state, phase, pid, updated)
        stamps/<phase>.json  a finished phase and the fingerprint of what it depended on
        events.jsonl       every typed event of every run
        checksums.json     sha256 cache of input files keyed by (path, size, mtime)
        runner/            ansible-runner's private_data_dir (inventory, env, artifacts)
        target.json        the host the phases run on, when provisioned (oci)
        preview.png        the last training preview brought back
        tensorboard/       Faceswap's TensorBoard event files (loss history), per session
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceswap_oci.errors import StateError


def default_state_root() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local/state")
    return Path(base) / "faceswap-oci" / "jobs"


def default_cache_dir() -> Path:
    explicit = os.environ.get("FSOCI_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "faceswap-oci"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(base) / "faceswap-oci"


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise StateError(
            f"{path}: not valid JSON ({exc}); delete it to reset this record"
        ) from None


@dataclass(frozen=True)
class StateDir:
    path: Path

    @classmethod
    def for_job(cls, name: str, root: Path | None = None) -> StateDir:
        return cls((root or default_state_root()) / name)

    def create(self) -> StateDir:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)
        (self.path / "stamps").mkdir(exist_ok=True)
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
        data = _read_json(self.path / "spec.json")
        if not isinstance(data, dict):
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
        data = _read_json(self.path / "status.json")
        return data if isinstance(data, dict) else {"state": "new", "phase": None}

    # stamps ----------------------------------------------------------------
    def stamp(self, phase: str) -> dict[str, Any] | None:
        data = _read_json(self.path / "stamps" / f"{phase}.json")
        return data if isinstance(data, dict) else None

    def write_stamp(self, phase: str, fingerprint: str, **extra: Any) -> None:
        data = {"phase": phase, "fingerprint": fingerprint, "finished": time.time()}
        data.update(extra)
        _write_json(self.path / "stamps" / f"{phase}.json", data)

    def clear_stamp(self, phase: str) -> None:
        (self.path / "stamps" / f"{phase}.json").unlink(missing_ok=True)

    # target ----------------------------------------------------------------
    def target(self) -> dict[str, Any] | None:
        data = _read_json(self.path / "target.json")
        return data if isinstance(data, dict) else None

    # events ----------------------------------------------------------------
    def append_event(self, line: str) -> None:
        with self.events_file.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    # checksums -------------------------------------------------------------
    def sha256(self, path: Path) -> str:
        """sha256 of a file (or of a folder's files), cached by path, size and mtime."""
        cache_file = self.path / "checksums.json"
        cache = _read_json(cache_file) or {}
        st = path.stat()
        key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
        if key not in cache:
            cache[key] = _sha256_path(path)
            _write_json(cache_file, cache)
        return str(cache[key])


def _sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def fingerprint(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def list_jobs(root: Path | None = None) -> list[StateDir]:
    base = root or default_state_root()
    if not base.is_dir():
        return []
    return [StateDir(p) for p in sorted(base.iterdir()) if (p / "spec.json").is_file()]
