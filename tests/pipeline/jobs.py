"""Helpers to run the phase playbooks of one job on the local target (tests and benchmarks).

The host root is an installed Faceswap: ``$FSOCI_FACESWAP_ROOT`` (a folder holding
``faceswap/faceswap.py`` and ``venv/bin/python``), else ``/var/tmp/fsdev``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("upload", "extract", "train", "convert", "fetch")
DEFAULT_ROOT = Path("/var/tmp/fsdev")
CONSENT = (
    "I have the consent of every person whose face appears in the A and B media, "
    "and I will label the output as synthetic media."
)
RECAP_RE = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


def e2e_job_spec(name: str, target: dict[str, Any], iterations: int) -> dict[str, Any]:
    """A whole job on a test-bed host: the demo clips, weight-free extract, a lean CPU train
    (the e2e test and benchmarks/rerun.py)."""
    return {
        "name": name,
        "consent": CONSENT,
        "target": target,
        "inputs": {"a": "demo/a.mp4", "b": "demo/b.mp4", "demo": True},
        "faceswap": {"backend": "cpu"},
        "extract": {"detector": "file", "aligner": "file", "size": 256},
        "train": {
            "batch_size": 4,
            "save_every": max(1, iterations // 2),  # two saves in the run
            "stop": {"iterations": iterations, "hours": 0.5},
            "config": {
                "global.optimizer": {"save_optimizer": "never"},
                "model.original": {"lowmem": True},
                "trainer.loader": {"num_processes": 2},
            },
        },
        "convert": {"writer": "ffmpeg", "keep_audio": True},
        "output": "output",
        "teardown": "never",
    }


def missing_faceswap(root: Path | None = None) -> tuple[Path, str | None]:
    """The host root with an installed Faceswap, and why it can't be used (None: it can)."""
    root = root or Path(os.environ.get("FSOCI_FACESWAP_ROOT") or DEFAULT_ROOT)
    missing = [p for p in ("faceswap/faceswap.py", "venv/bin/python") if not (root / p).exists()]
    if missing:
        return root, (
            f"no installed Faceswap at {root} (missing {', '.join(missing)}); set "
            "FSOCI_FACESWAP_ROOT to a folder with faceswap/ (a checkout) and venv/ (its venv)"
        )
    for tool in ("ffmpeg", "ffprobe", "rsync"):
        if shutil.which(tool) is None:
            return root, f"{tool} not on PATH"
    return root, None


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's view of a media file: streams (type, counted frames, rate, size, duration) and
    the container's duration and tags."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,nb_read_frames,r_frame_rate,width,height,duration"
            ":format=duration:format_tags",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class PhaseRun:
    phase: str
    rc: int
    output: str

    @property
    def changed(self) -> int:
        recaps = RECAP_RE.findall(self.output)
        return sum(int(r[2]) for r in recaps)

    @property
    def failed(self) -> int:
        return sum(int(r[4]) for r in RECAP_RE.findall(self.output))

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The fsoci_event payloads of this kind found in the YAML callback output."""
        found = []
        for block in re.findall(r"fsoci_event:\n((?:\s{12,}.*\n)+)", self.output):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and data.get("kind") == kind:
                found.append(data)
        return found


@dataclass
class Job:
    """One job on the local target: its spec, its vars file and where its files go."""

    name: str
    root: Path
    work: Path
    spec: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def job_dir(self) -> Path:
        return self.root / "jobs" / self.name

    @property
    def state_dir(self) -> Path:
        return self.work / "state"

    @property
    def output(self) -> Path:
        return Path(self.spec["output"])

    def write_vars(self) -> Path:
        data = {
            "fsoci": self.spec,
            "fsoci_state_dir": str(self.state_dir),
            "fsoci_host_root": str(self.root),
            "fsoci_user": os.environ.get("USER") or "root",
            "fsoci_become": False,
            "fsoci_job_dir": str(self.job_dir),
            "faceswap_train_poll_delay": 2,
            **self.extra,
        }
        path = self.work / "vars.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=True))
        return path

    def command(self, phase: str) -> list[str]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        inventory = self.work / "inventory.yml"
        inventory.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "children": {
                            "fsoci_target": {
                                "hosts": {
                                    "target": {
                                        "ansible_connection": "local",
                                        "ansible_python_interpreter": sys.executable,
                                    }
                                }
                            }
                        }
                    }
                }
            )
        )
        return [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            str(ROOT / "playbooks" / f"{phase}.yml"),
            "-e",
            f"@{self.write_vars()}",
        ]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
        env["ANSIBLE_NOCOLOR"] = "1"
        env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "yaml"
        return env

    def run(self, phase: str, timeout: float = 600) -> PhaseRun:
        proc = subprocess.run(
            self.command(phase),
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        result = PhaseRun(phase, proc.returncode, proc.stdout + proc.stderr)
        (self.work / f"{phase}.{time.monotonic_ns()}.log").write_text(result.output)
        return result

    def start(self, phase: str) -> subprocess.Popen[bytes]:
        """Start a phase in its own session (so the test can kill the whole controller)."""
        return subprocess.Popen(
            self.command(phase),
            cwd=ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def train_state(self) -> dict[str, Any]:
        trainer = self.spec["train"]["trainer"]
        path = self.job_dir / "model" / f"{trainer}_state.json"
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def supervisor_pid(self) -> int | None:
        try:
            pid = int((self.job_dir / "logs" / "train.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def train_starts(self) -> list[str]:
        out = (self.job_dir / "logs" / "train.out").read_text(errors="replace")
        return [line for line in out.splitlines() if line.startswith("[fsoci]")]

    def cleanup(self) -> None:
        pid = self.supervisor_pid()
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
        shutil.rmtree(self.job_dir, ignore_errors=True)


def make_spec(name: str, inputs: Path, output: Path, iterations: int) -> dict[str, Any]:
    return {
        "name": name,
        "consent": CONSENT,
        # as the validated spec has it (the runner's `fsoci`): the phases look at the target
        "target": {"kind": "local", "ssh": None, "oci": None},
        "inputs": {"a": str(inputs / "a.mp4"), "b": str(inputs / "b.mp4")},
        "faceswap": {"backend": "cpu"},
        "extract": {
            "detector": "file",
            "aligner": "file",
            "masker": [],
            "size": 256,
            "extract_every_n": 1,
            "min_faces": 25,
        },
        "train": {
            "trainer": "original",
            "batch_size": 4,
            "save_every": 3,
            "preview": True,
            "stop": {"iterations": iterations, "hours": None, "plateau_saves": None},
            "config": {
                "global.optimizer": {"save_optimizer": "never"},
                "model.original": {"lowmem": True},
                "trainer.loader": {"num_processes": 1},
            },
        },
        "convert": {
            "writer": "ffmpeg",
            "keep_audio": True,
            "color": "avg-color",
            "mask_type": "extended",
            "config": {},
        },
        "output": str(output),
    }


def new_job(root: Path, work: Path, inputs: Path, suffix: str, iterations: int) -> Job:
    name = f"pt{os.getpid()}-{suffix}"
    work.mkdir(parents=True, exist_ok=True)
    return Job(name, root, work, make_spec(name, inputs, work / "output", iterations))
