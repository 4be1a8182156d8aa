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

from tests.oci.playbook import run_playbook
from tests.ociapi.fixtures import OciApi

pytestmark = pytest.mark.testbed

CONSENT = (
    "I have the consent of every person whose face appears in the A and B media, "
    "and I will label the output as synthetic media."
)


def write_job(api: OciApi, tmp_path: Path, user: str) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (media / name).write_bytes(b"\0")
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
