"""Multi-GPU training (issue 15): the -d/--distributed decision, table-tested, and a run of the
faceswap_train role on a fake 2-GPU host (GPU facts injected as tests/roles/test_nvidia_driver.py
does) whose Faceswap is a stand-in that records its command line."""

from __future__ import annotations

import getpass
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "roles/faceswap_train/files/fsoci_train.py"
A10 = {"name": "NVIDIA A10", "pci_device_id": "0x223610DE", "memory_mib": 23028}


def _helper() -> Any:
    spec = importlib.util.spec_from_file_location("fsoci_train_helper", HELPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("mode", "gpus", "exclude", "distributed"),
    [
        ("auto", 1, [], False),
        ("auto", 2, [], True),
        ("auto", 4, [], True),
        ("auto", 2, [1], False),  # one GPU left
        ("auto", 4, [0, 1], True),
        ("auto", 0, [], False),  # CPU host
        (False, 4, [], False),
        (True, 1, [], True),
        ("true", 2, [], True),
        ("false", 2, [], False),
    ],
)
def test_distributed_decision(
    mode: object, gpus: int, exclude: list[int], distributed: bool
) -> None:
    assert _helper().use_distributed(mode, gpus, exclude) is distributed


FAKE_FACESWAP = """\
import json, pathlib, signal, sys, time
pathlib.Path(sys.argv[0]).with_name("argv.json").write_text(json.dumps(sys.argv[1:]))
signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
time.sleep(120)
"""


def _play(tmp_path: Path, gpus: list[dict[str, Any]], **role_vars: Any) -> Path:
    root = tmp_path / "root"
    (root / "faceswap").mkdir(parents=True)
    (root / "faceswap" / "faceswap.py").write_text(FAKE_FACESWAP)
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / "bin" / "python").symlink_to(sys.executable)
    job = root / "jobs" / "demo"
    for sub in ("faces_a", "faces_b"):
        (job / sub).mkdir(parents=True)
    play = [
        {
            "name": "Train on the fake host",
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [
                {
                    "role": "faceswap_oci.core.faceswap_train",
                    "vars": {
                        "faceswap_train_root": str(root),
                        "faceswap_train_job_dir": str(job),
                        "faceswap_train_user": getpass.getuser(),
                        "faceswap_train_become": False,
                        "faceswap_train_backend": "nvidia",
                        "faceswap_train_supervisor": "detached",
                        "faceswap_train_iterations": 100,
                        "faceswap_train_preview": False,
                        "faceswap_train_wait": False,
                        "faceswap_train_poll_delay": 1,
                        "faceswap_train_gpu_facts": {"gpus": gpus},
                        **role_vars,
                    },
                }
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    return path


def _run(tmp_path: Path, play: Path) -> tuple[list[str], dict[str, Any]]:
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(play),
        ],
        cwd=ROOT,
        env={
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(Path.home()),
        },
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    argv_file = tmp_path / "root" / "faceswap" / "argv.json"
    cfg = tmp_path / "root" / "jobs" / "demo" / "config" / "train.json"
    try:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        deadline = time.monotonic() + 30
        while not argv_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        argv: list[str] = json.loads(argv_file.read_text())
    finally:
        if cfg.is_file():
            subprocess.run([sys.executable, str(HELPER), "stop", str(cfg), "20"], check=False)
    marker = '"kind": "train_started"'
    start = proc.stdout.index(marker)
    event = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.rindex("{", 0, start) :])[0]
    return argv, event


def test_a_two_gpu_host_trains_distributed(tmp_path: Path) -> None:
    argv, event = _run(tmp_path, _play(tmp_path, [A10, A10]))
    assert argv[0] == "train"
    assert "-d" in argv
    assert "-X" not in argv
    assert (int(event["gpus"]), str(event["distributed"])) == (2, "auto")


def test_a_two_gpu_host_with_one_excluded_trains_on_one(tmp_path: Path) -> None:
    argv, event = _run(tmp_path, _play(tmp_path, [A10, A10], faceswap_train_exclude_gpus=[1]))
    assert "-d" not in argv
    assert argv[argv.index("-X") + 1] == "1"
    assert int(event["gpus"]) == 2
