"""The `ssh` target on real booted test hosts: the API, the CLI, ansible-playbook, Ctrl-C.

The hosts start from the session's "Faceswap installed" image (tests/hostimage.py; the same
`setup` made it on a plain host), so each `setup` here does the job's own part for real and
finds the install in place."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import faceswap_oci
from faceswap_oci import events as ev
from tests.processes import processes_mentioning

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.testbed


def test_api_applies_host_prepare_then_nothing_changes(
    xdg: Path, job_file: Callable[..., Path], installed_host: Any
) -> None:
    testbed_host = installed_host
    job = faceswap_oci.load_job(job_file("sshapi", testbed_host.job_target()))
    seen: list[ev.Event] = []
    first = faceswap_oci.run(job, on_event=seen.append, only="setup")
    assert first.ok, first.error
    assert first.changed > 0
    phases = [e.phase for e in seen if isinstance(e, ev.TaskDone)]
    assert set(phases) == {"setup"}
    assert [e.kind for e in seen][-2:] == ["PhaseFinished", "JobFinished"]
    owner = testbed_host.ssh("stat -c %U /opt/faceswap-oci/jobs/sshapi/inputs").stdout.strip()
    assert owner == "faceswap"

    second = faceswap_oci.run(job, only="setup")
    assert second.ok
    assert second.changed == 0


def test_ansible_playbook_from_the_checkout_runs_the_same_play(
    tmp_path: Path, job_file: Callable[..., Path], installed_host: Any
) -> None:
    testbed_host = installed_host
    path = job_file("sshplay", testbed_host.job_target())
    inventory = tmp_path / "hosts.yml"
    host_vars = dict(testbed_host.host_vars())
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                        }
                    },
                    "children": {"fsoci_target": {"hosts": {"target": host_vars}}},
                }
            }
        )
    )
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("ANSIBLE_CONFIG", None)
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    command = [
        f"{BIN}/ansible-playbook",
        "-i",
        str(inventory),
        "playbooks/site.yml",
        "-e",
        f"@{path}",
        "--tags",
        "setup",
    ]
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "faceswap_oci.core.host_prepare : Create the job directories" in proc.stdout
    owner = testbed_host.ssh("stat -c %U /opt/faceswap-oci/jobs/sshplay/logs").stdout.strip()
    assert owner == "faceswap"


def test_sigint_leaves_a_resumable_state_and_the_next_run_finishes(
    tmp_path: Path, job_file: Callable[..., Path], testbed: Any, faceswap_image: Any
) -> None:
    host = testbed.up(1, layer=faceswap_image.layer)[0]
    path = job_file("sshint", host.job_target())
    state_root = tmp_path / "jobs"
    command = [
        f"{BIN}/faceswap-oci",
        "run",
        str(path),
        "--only",
        "setup",
        "--json",
        "--state-dir",
        str(state_root),
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert proc.stdout is not None
    interrupted_at = None
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "TaskStarted" and "Install the packages" in event["task"]:
            interrupted_at = event["task"]
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline, "the package install task never started"
    rest, err = proc.communicate(timeout=300)
    left = processes_mentioning(str(state_root))  # no ansible-playbook, ssh outlives the CLI
    assert interrupted_at is not None
    assert proc.returncode == 130, err
    assert left == []
    lines = [json.loads(x) for x in rest.splitlines() if x.strip()]
    finished = [e for e in lines if e["event"] == "PhaseFinished"]
    assert finished and finished[0]["status"] == "canceled"
    status = json.loads((state_root / "sshint" / "status.json").read_text())
    assert status["state"] == "canceled"
    assert status["phase"] == "setup"
    assert not (state_root / "sshint" / "stamps" / "setup.json").exists()

    job = faceswap_oci.load_job(path)
    plan = faceswap_oci.plan(job, state_root=state_root)
    assert next(p.name for p in plan.phases if p.will_run) == "setup"
    again = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    done = [json.loads(x) for x in again.stdout.splitlines() if x.strip()]
    assert done[-1] == {**done[-1], "event": "JobFinished", "status": "successful"}
    assert (state_root / "sshint" / "stamps" / "setup.json").is_file()
    assert host.ssh("dpkg -s python3-tk >/dev/null && echo ok").stdout.strip() == "ok"
