"""Ctrl-C during provisioning: whatever step the playbook is interrupted at, the teardown
playbook (by tag) leaves 0 live tagged resources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from tests.oci.playbook import BIN, ROOT, job_vars, run_playbook
from tests.ociapi.fixtures import OciApi

# Steps at which the playbook gets SIGINT (after the service applied the call, before the
# answer reaches the SDK): every mutating step of provisioning in turn, the launch itself and
# the wait for RUNNING.
STEPS = [
    "CreateVcn",
    "CreateInternetGateway",
    "CreateRouteTable",
    "CreateSecurityList",
    "CreateSubnet",
    "LaunchInstance",
    "GetInstance",
    "ListVnicAttachments",
]


@pytest.mark.parametrize("step", STEPS)
def test_sigint_at_step_then_teardown_leaves_nothing(
    ociapi: OciApi, tmp_path: Path, step: str
) -> None:
    ociapi.state.faults.provision_s = 2.0
    state = tmp_path / "state"
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(job_vars(ociapi, "intr", state)))
    (tmp_path / "inv.ini").write_text("")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.Popen(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(tmp_path / "inv.ini"),
            "playbooks/provision.yml",
            "-e",
            f"@{vars_file}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    fired = threading.Event()

    def interrupt(op: str) -> None:
        if op == step and not fired.is_set():
            fired.set()
            os.killpg(proc.pid, signal.SIGINT)

    ociapi.state.on_request = interrupt
    out, _ = proc.communicate(timeout=240)
    ociapi.state.on_request = None
    assert fired.is_set(), out[-3000:]
    assert proc.returncode != 0, out[-3000:]

    down = run_playbook(
        "playbooks/teardown.yml", job_vars(ociapi, "intr", state), tmp_path / "down"
    )
    assert down.rc == 0, down.stdout[-4000:]
    assert ociapi.state.live_tagged() == []
