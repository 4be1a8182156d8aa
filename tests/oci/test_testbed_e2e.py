"""End to end on a booted test host: provision on the local OCI API handing out the test host
as the instance, reach it through the oci_job inventory plugin, arm the watchdog there, tear
everything down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.oci.playbook import job_vars, run_playbook
from tests.ociapi.fixtures import OciApi

pytestmark = pytest.mark.testbed


def test_provision_inventory_watchdog_teardown(
    ociapi: OciApi, testbed_host: Any, tmp_path: Path
) -> None:
    host = testbed_host
    ociapi.state.set_public_ip(host.address)
    ociapi.state.faults.provision_s = 0.3
    state = tmp_path / "state"
    up = run_playbook(
        "playbooks/provision.yml",
        job_vars(ociapi, "e2e", state),
        tmp_path / "up",
        "-e",
        f"oci_instance_ssh_port={host.port}",
    )
    assert up.rc == 0, up.stdout[-4000:]

    inv = tmp_path / "e2e.oci.yml"
    inv.write_text(
        yaml.safe_dump(
            {
                "plugin": "faceswap_oci.core.oci_job",
                "config_file": str(ociapi.cfg.config_file),
                "compartment_id": ociapi.cfg.compartment,
                "service_endpoint": ociapi.url,
                "jobs": ["e2e"],
                "hostname": "target",
                "compose": {
                    "ansible_user": repr(host.user),
                    "ansible_port": str(host.port),
                    "ansible_ssh_private_key_file": repr(host.key_path),
                    "ansible_ssh_common_args": repr(
                        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
                    ),
                    "ansible_python_interpreter": "'/usr/bin/python3'",
                },
            }
        )
    )
    try:
        armed = run_playbook("tests/oci/data/watchdog.yml", {}, tmp_path / "wd", inventory=inv)
        assert armed.rc == 0, armed.stdout[-4000:]
        deadline = armed.event("oci_watchdog")["deadline"]
        assert deadline.endswith("UTC")
        assert host.ssh("systemctl is-active fsoci-watchdog.timer").stdout.strip() == "active"
        calendar = host.ssh("systemctl show -p TimersCalendar fsoci-watchdog.timer").stdout
        assert deadline.split()[0] in calendar
        again = run_playbook("tests/oci/data/watchdog.yml", {}, tmp_path / "wd2", inventory=inv)
        assert again.rc == 0 and again.changed == 0, again.stdout[-4000:]
    finally:
        # The test host is shared by the session: never leave a poweroff timer on it.
        off = run_playbook(
            "tests/oci/data/watchdog.yml",
            {"watchdog_enabled": False},
            tmp_path / "wd3",
            inventory=inv,
        )
        down = run_playbook(
            "playbooks/teardown.yml", job_vars(ociapi, "e2e", state), tmp_path / "down"
        )
    assert off.rc == 0, off.stdout[-4000:]
    assert down.rc == 0, down.stdout[-4000:]
    assert ociapi.state.live_tagged() == []
