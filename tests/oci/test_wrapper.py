"""The Python wrapper and the CLI with an `oci` target against the local OCI API: provision
hands out a booted test host as the instance; `down` (also with the state directory gone)
removes everything by tag."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.media import write_pair
from tests.oci.playbook import run_playbook
from tests.ociapi.fixtures import OciApi

pytestmark = pytest.mark.testbed

CONSENT = (
    "I have the consent of every person whose face appears in the A and B media, "
    "and I will label the output as synthetic media."
)


def write_job(api: OciApi, tmp_path: Path, user: str) -> Path:
    write_pair(tmp_path / "media")
    job = {
        "name": "wrap",
        "consent": CONSENT,
        "target": {
            "kind": "oci",
            "oci": {
                "profile": api.cfg.profile,
                "config_file": str(api.cfg.config_file),
                "compartment": api.cfg.compartment,
                "region": api.cfg.region,
                "shapes": ["VM.GPU.A10.1", "VM.GPU3.1"],
                "ssh_ingress_cidr": "198.51.100.7/32",
                "ssh_user": user,
                "boot_volume_gb": 100,
                "max_hours": 2,
                "service_endpoint": api.url,
            },
        },
        "inputs": {"a": "media/a.mp4", "b": "media/b.mp4"},
        "teardown": "never",
    }
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(job))
    return path


def provision(ociapi: OciApi, host: Any, tmp_path: Path) -> tuple[Path, Path, list[Any]]:
    import faceswap_oci

    if host.port != 22:
        pytest.skip("the OCI target always reaches its host on port 22")
    ociapi.state.set_public_ip(host.address)
    ociapi.state.faults.no_capacity(ociapi.state.availability_domains[0], "VM.GPU.A10.1")
    job_file = write_job(ociapi, tmp_path, host.user)
    state_root = tmp_path / "state"
    seen: list[Any] = []
    result = faceswap_oci.run(
        job_file, only="provision", state_root=state_root, on_event=seen.append
    )
    assert result.ok, result.error
    return job_file, state_root, seen


def test_run_provision_reports_attempts_and_second_run_creates_nothing(
    ociapi: OciApi, testbed_host: Any, tmp_path: Path
) -> None:
    import faceswap_oci
    from faceswap_oci import events as ev

    job_file, state_root, seen = provision(ociapi, testbed_host, tmp_path)
    try:
        reports = {e.report: e.data for e in seen if isinstance(e, ev.Report)}
        attempts = reports["oci_attempts"]["attempts"]
        assert [a["result"] for a in attempts][-1] == "launched"
        assert sorted(r["kind"] for r in ociapi.state.live_tagged("wrap")) == [
            "bucket",
            "instance",
            "internet_gateway",
            "route_table",
            "security_list",
            "subnet",
            "vcn",
        ]
        creates = ociapi.state.calls["CreateVcn"] + ociapi.state.calls["LaunchInstance"]
        again = faceswap_oci.run(job_file, only="provision", state_root=state_root)
        assert again.ok and again.changed == 0
        assert ociapi.state.calls["CreateVcn"] + ociapi.state.calls["LaunchInstance"] == creates
    finally:
        down = run_playbook(
            "playbooks/teardown.yml",
            {"fsoci": yaml.safe_load(job_file.read_text()), "fsoci_state_dir": str(tmp_path / "x")},
            tmp_path / "down",
        )
        assert down.rc == 0, down.stdout[-3000:]
    assert ociapi.state.live_tagged() == []


def test_cli_down_with_the_state_dir_gone_removes_everything(
    ociapi: OciApi, testbed_host: Any, tmp_path: Path
) -> None:
    job_file, state_root, _ = provision(ociapi, testbed_host, tmp_path)
    shutil.rmtree(state_root)
    bindir = Path(sys.executable).parent
    proc = subprocess.run(
        [str(bindir / "faceswap-oci"), "down", str(job_file), "--state-dir", str(state_root)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}"),
        check=False,
    )
    leaks = ociapi.state.live_tagged()
    if leaks:  # leave nothing behind for the next test, whatever the CLI did
        run_playbook(
            "playbooks/teardown.yml",
            {"fsoci": yaml.safe_load(job_file.read_text()), "fsoci_state_dir": str(tmp_path / "x")},
            tmp_path / "cleanup",
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert leaks == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    bindir = Path(sys.executable).parent
    return subprocess.run(
        [str(bindir / "faceswap-oci"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}"),
        check=False,
    )


def _leave_nothing(ociapi: OciApi, job_file: Path, tmp_path: Path) -> None:
    """Whatever the test did, remove what is left (by tag) for the next test."""
    if ociapi.state.live_tagged():
        run_playbook(
            "playbooks/teardown.yml",
            {"fsoci": yaml.safe_load(job_file.read_text()), "fsoci_state_dir": str(tmp_path / "x")},
            tmp_path / "cleanup",
        )


def test_only_provision_keeps_the_instance_and_one_down_outlasts_the_vnic_lag(
    ociapi: OciApi, testbed_host: Any, tmp_path: Path
) -> None:
    """Issue 15, points 2, 5 and 7: `run --only provision` under `teardown: always` leaves the
    instance running; one `down` ends with nothing left although the subnet still references
    the terminated instance's VNIC for 30 s (of the double's clock, 10x fast); the cost history
    then holds both runs."""
    import faceswap_oci
    from tests.oci.modules import fast_clock

    if testbed_host.port != 22:
        pytest.skip("the OCI target always reaches its host on port 22")
    ociapi.state.clock = fast_clock(10.0)
    ociapi.state.faults.vnic_release_s = 30.0
    ociapi.state.set_public_ip(testbed_host.address)
    job_file = write_job(ociapi, tmp_path, testbed_host.user)
    data = yaml.safe_load(job_file.read_text())
    data["teardown"] = "always"
    job_file.write_text(yaml.safe_dump(data))
    state_root = tmp_path / "state"
    try:
        result = faceswap_oci.run(job_file, only="provision", state_root=state_root)
        assert result.ok, result.error
        assert result.phases_run == ("provision",)
        live = sorted(r["kind"] for r in ociapi.state.live_tagged("wrap"))
        assert "instance" in live and "bucket" in live and len(live) == 7
        down = _cli("down", str(job_file), "--state-dir", str(state_root))
        assert down.returncode == 0, down.stdout + down.stderr
        assert ociapi.state.live_tagged() == []
        assert ociapi.state.calls["DeleteSubnet"] > 1  # the VNIC lag was met and outlasted
        history = _cli("cost", "wrap", "--state-dir", str(state_root))
        assert history.returncode == 0, history.stdout + history.stderr
        lines = history.stdout.splitlines()
        assert lines[0].startswith("run 1 ") and "still running" in lines[0]
        assert lines[1].startswith("run 2 ") and "VM.GPU.A10.1 0.0" in lines[1]
        assert lines[2].startswith("total billed: $")
    finally:
        _leave_nothing(ociapi, job_file, tmp_path)
    assert ociapi.state.live_tagged() == []


def test_after_sweep_yes_plan_provisions_again(
    ociapi: OciApi, testbed_host: Any, tmp_path: Path
) -> None:
    """Issue 15, point 8: `sweep --yes` removes the job's resources and forgets its provision
    stamp and target.json; its own runner state stays inside --state-dir."""
    import faceswap_oci

    job_file, state_root, _ = provision(ociapi, testbed_host, tmp_path)
    try:
        job = faceswap_oci.load_job(job_file)
        planned = {p.name: p.will_run for p in faceswap_oci.plan(job, state_root=state_root).phases}
        assert planned["provision"] is False
        # another machine runs the sweep: the job is not "running" here
        swept = _cli("sweep", str(job_file), "--yes", "--state-dir", str(state_root))
        assert swept.returncode == 0, swept.stdout + swept.stderr
        assert ociapi.state.live_tagged() == []
        assert not (state_root / "wrap" / "target.json").exists()
        planned = {p.name: p.will_run for p in faceswap_oci.plan(job, state_root=state_root).phases}
        assert planned["provision"] is True
        assert not (tmp_path / "sweep").exists()  # nothing written outside --state-dir
    finally:
        _leave_nothing(ociapi, job_file, tmp_path)
    assert ociapi.state.live_tagged() == []
