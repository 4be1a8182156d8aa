"""roles/oci_watchdog/files/fsoci_terminate.py, the on-VM way to end billing, run as the VM runs
it (a process with the standard library and `openssl`) against the double's IMDS (on
127.0.0.1), federation endpoint and Core Services: it terminates its own instance through its
instance principal where the policy allows, else powers off (here a command that leaves a
file), and never prints a credential."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci.test_instance_principal import _grant, _launch
from tests.ociapi.fixtures import OciApi
from tests.ociapi.identity import MetadataService

AGENT = Path(__file__).resolve().parents[2] / "roles/oci_watchdog/files/fsoci_terminate.py"


@pytest.fixture
def imds(ociapi: OciApi) -> Iterator[MetadataService]:
    service = ociapi.state.metadata_service()
    try:
        yield service
    finally:
        service.stop()


def agent_argv(api: OciApi, imds: MetadataService, poweroff: str) -> list[str]:
    """fsoci_terminate.py's command line pointed at the double (``--poweroff`` as given)."""
    return [
        sys.executable,
        str(AGENT),
        "--metadata-url",
        imds.base_url,
        "--federation-endpoint",
        f"{api.url}/v1/x509",
        "--endpoint",
        api.url,
        "--poweroff",
        poweroff,
    ]


def run_agent(api: OciApi, imds: MetadataService, marker: Path) -> tuple[dict, Path, str]:
    """Run the agent, its power-off being a command that makes *marker*; (its result line,
    *marker*, its output), having checked that it succeeded and printed no session token."""
    done = subprocess.run(
        agent_argv(api, imds, f"touch {marker}"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    for token in api.state.token_principals:
        assert token not in out
    return json.loads(done.stdout.splitlines()[-1]), marker, out


def test_with_the_policy_the_instance_terminates_itself_boot_volume_included(
    ociapi: OciApi, imds: MetadataService, tmp_path: Path
) -> None:
    inst = _launch(ociapi)
    _grant(ociapi)
    result, marker, out = run_agent(ociapi, imds, tmp_path / "powered-off")
    assert result == {"action": "terminate", "instance": inst.id}
    assert not marker.exists()
    state = ociapi.state.resources[inst.id].state(ociapi.state.clock() + 1)
    assert state == "TERMINATED"
    assert ociapi.state.calls["FederateX509"] == 1
    assert ociapi.state.calls["TerminateInstance"] == 1
    assert ociapi.state.iam.denied == []
    assert "BEGIN" not in out  # no key or certificate printed


def test_without_the_policy_it_powers_off_and_says_why(
    ociapi: OciApi, imds: MetadataService, tmp_path: Path
) -> None:
    inst = _launch(ociapi)
    result, marker, _ = run_agent(ociapi, imds, tmp_path / "powered-off")
    assert result["action"] == "poweroff"
    assert result["reason"] == (
        f"TerminateInstance {inst.id}: 404 NotAuthorizedOrNotFound: Authorization failed or "
        "requested resource not found."
    )
    assert marker.exists()
    assert ociapi.state.resources[inst.id].state(ociapi.state.clock()) == "RUNNING"
    assert ociapi.state.iam.denied == [("TerminateInstance", inst.id)]


def test_without_an_instance_identity_it_powers_off(
    ociapi: OciApi, imds: MetadataService, tmp_path: Path
) -> None:
    # no instance at 127.0.0.1
    result, marker, _ = run_agent(ociapi, imds, tmp_path / "powered-off")
    assert result["action"] == "poweroff"
    assert result["reason"].startswith("instance metadata instance/id: HTTP Error 404")
    assert marker.exists()
