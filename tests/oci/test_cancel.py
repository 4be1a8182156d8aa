"""Cancelling `faceswap-oci run` on an OCI target, against the local OCI API: the provision
playbook's whole process tree is gone before teardown starts and nothing of the run outlives
the CLI (SIGINT as Ctrl-C sends it, SIGTERM as `kill`/`timeout`/a service manager does); an
API that does not answer makes teardown give up after its printed limit with exit 5, naming
what may be left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from faceswap_oci.spec import CONSENT_TEXT
from tests.media import write_pair
from tests.oci.playbook import run_playbook
from tests.ociapi.fixtures import OciApi, OciTestConfig, oci_target
from tests.processes import alive, process_tree, processes_mentioning

CLI = Path(sys.executable).parent / "faceswap-oci"


def write_job(cfg: OciTestConfig, endpoint: str, tmp_path: Path, name: str) -> Path:
    write_pair(tmp_path / "media")
    job = {
        "name": name,
        "consent": CONSENT_TEXT,
        "target": oci_target(cfg, endpoint, boot_volume_gb=100, max_hours=2),
        "inputs": {"a": "media/a.mp4", "b": "media/b.mp4"},
        "teardown": "always",
    }
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(job))
    return path


def start_cli(args: list[str], state: Path, **env: str) -> subprocess.Popen[str]:
    # --yes: `run` on OCI asks before it spends, and refuses without a terminal
    confirm = ["--yes"] if args[0] == "run" else []
    return subprocess.Popen(
        [str(CLI), *args, *confirm, "--state-dir", str(state), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        start_new_session=True,  # signals reach the CLI only, as they would from `kill`
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cancel_during_provision_stops_the_tree_before_teardown(
    ociapi: OciApi, tmp_path: Path, sig: signal.Signals
) -> None:
    ociapi.state.faults.provision_s = 2.0
    job_file = write_job(ociapi.cfg, ociapi.url, tmp_path, "cancel")
    state = tmp_path / "state root"
    proc = start_cli(["run", str(job_file)], state)
    fired = threading.Event()
    provisioning: dict[int, str] = {}

    def interrupt(op: str) -> None:
        # after the service applied the call, before the answer reaches the SDK: the module
        # process is alive and mid-request
        if op == "CreateRouteTable" and not fired.is_set():
            fired.set()
            provisioning.update(process_tree(str(state), but=proc.pid))
            proc.send_signal(sig)

    ociapi.state.on_request = interrupt
    alive_at_teardown: list[str] | None = None
    events: list[dict[str, Any]] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            events.append(event)
            if event["event"] == "PhaseStarted" and event["phase"] == "teardown":
                alive_at_teardown = alive(provisioning)
        rc = proc.wait(timeout=240)
        stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        ociapi.state.on_request = None
        if proc.poll() is None:
            proc.kill()
    left_after_exit = processes_mentioning(str(state))
    leaks = ociapi.state.live_tagged()
    if leaks:
        run_playbook(
            "playbooks/teardown.yml",
            {"fsoci": yaml.safe_load(job_file.read_text()), "fsoci_state_dir": str(tmp_path / "x")},
            tmp_path / "cleanup",
        )
    assert fired.is_set(), stderr[-3000:]
    # ansible-playbook (its pexpect session), its worker, the oci_network module at least
    assert len(provisioning) >= 3, provisioning
    assert any("ansible-playbook" in c for c in provisioning.values()), provisioning
    assert alive_at_teardown == [], alive_at_teardown
    assert left_after_exit == [], left_after_exit
    assert rc == 130, stderr[-3000:]
    finished = [(e["phase"], e["status"]) for e in events if e["event"] == "PhaseFinished"]
    assert finished == [("provision", "canceled"), ("teardown", "successful")]
    notes = [e for e in events if e["event"] == "Report" and e["report"] == "interrupt"]
    assert notes and notes[0]["data"]["signal"] == sig.name
    assert leaks == []
    status = subprocess.run(
        [str(CLI), "status", "--state-dir", str(state), "--json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(status.stdout)["state"] == "canceled"


def test_unreachable_api_teardown_gives_up_within_its_limit(
    oci_test_config: OciTestConfig, tmp_path: Path
) -> None:
    # nothing listens on this port: every SDK call fails to connect and the SDK's default
    # retry strategy retries it (oci.retry.DEFAULT_RETRY_STRATEGY: connection errors are
    # retried, up to 8 attempts with exponential backoff)
    job_file = write_job(oci_test_config, "http://127.0.0.1:9", tmp_path, "unreach")
    state = tmp_path / "state"
    started = time.monotonic()
    proc = start_cli(["down", str(job_file)], state, FSOCI_TEARDOWN_TIMEOUT="4")
    out, err = proc.communicate(timeout=120)
    took = time.monotonic() - started
    left = processes_mentioning(str(state))
    assert proc.returncode == 5, err[-3000:]
    events = [json.loads(line) for line in out.splitlines()]
    limit = next(e for e in events if e["event"] == "Report" and e["report"] == "time_limit")
    assert limit["data"]["seconds"] == 4
    assert "gave up after 4 s" in err
    assert "every resource tagged faceswap-oci-job=unreach" in " ".join(err.split())
    assert f"faceswap-oci down {job_file}" in err
    assert left == []
    # the limit plus the stop's bounded grace periods (3 x 5 s) plus start-up
    assert took < 4 + 15 + 30, took


def test_second_interrupt_with_the_api_unreachable_ends_at_once(
    oci_test_config: OciTestConfig, tmp_path: Path
) -> None:
    job_file = write_job(oci_test_config, "http://127.0.0.1:9", tmp_path, "twice")
    state = tmp_path / "state"
    proc = start_cli(["run", str(job_file)], state)
    assert proc.stdout is not None
    seen: list[str] = []
    second_at = 0.0
    for line in proc.stdout:
        event = json.loads(line)
        seen.append(f"{event['event']} {event.get('phase')}")
        if event["event"] == "PhaseStarted" and event["phase"] == "provision":
            time.sleep(2)  # the module is inside the SDK's retries by now
            proc.send_signal(signal.SIGINT)
        if event["event"] == "PhaseStarted" and event["phase"] == "teardown":
            time.sleep(2)
            second_at = time.monotonic()
            proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=60)
    took = time.monotonic() - second_at
    err = proc.stderr.read() if proc.stderr else ""
    assert second_at, seen
    assert rc == 5, err[-3000:]
    assert "stopped by a second interrupt" in err
    assert "faceswap-oci sweep" in err
    assert processes_mentioning(str(state)) == []
    assert took < 15, took  # SIGKILL and its wait only, no grace periods
