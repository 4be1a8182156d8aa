"""provision.yml / teardown.yml through ansible-playbook, the real modules and the real SDK,
against the local OCI API (signatures checked), with faults injected."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci.playbook import fake_sshd, job_vars, run_playbook
from tests.ociapi.fixtures import OciApi

CREATES = (
    "CreateVcn",
    "CreateSubnet",
    "CreateInternetGateway",
    "CreateRouteTable",
    "CreateSecurityList",
    "LaunchInstance",
)


@pytest.fixture
def sshd_port() -> Iterator[int]:
    with fake_sshd() as port:
        yield port


@pytest.fixture
def api(ociapi: OciApi) -> OciApi:
    ociapi.state.set_public_ip("127.0.0.1")
    ociapi.state.faults.provision_s = 0.3
    ociapi.state.faults.terminate_s = 0.3
    return ociapi


def provision(api: OciApi, tmp_path: Path, port: int, name: str = "demo", **oci: object):  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    return run_playbook(
        "playbooks/provision.yml",
        job_vars(api, name, state, **oci),
        tmp_path / "run",
        "-e",
        f"oci_instance_ssh_port={port}",
        "-e",
        "oci_instance_ssh_wait_timeout=20",
    )


def teardown(api: OciApi, tmp_path: Path, name: str = "demo", state: Path | None = None):  # type: ignore[no-untyped-def]
    return run_playbook(
        "playbooks/teardown.yml",
        job_vars(api, name, state or tmp_path / "state"),
        tmp_path / "run-td",
    )


def test_full_lifecycle_second_run_creates_nothing_teardown_leaves_nothing(
    api: OciApi, tmp_path: Path, sshd_port: int
) -> None:
    first = provision(api, tmp_path, sshd_port)
    assert first.rc == 0, first.stdout[-4000:]
    state = tmp_path / "state"
    target = json.loads((state / "target.json").read_text())
    assert {k: target[k] for k in ("host", "user", "port", "key")} == {
        "host": "127.0.0.1",
        "user": "opc",
        "port": sshd_port,
        "key": str(state / "id_ed25519"),
    }
    assert (target["shape"], target["gpu_model"]) == ("VM.GPU.A10.1", "NVIDIA A10")
    assert stat.S_IMODE((state / "id_ed25519").stat().st_mode) == 0o600
    assert (state / "id_ed25519.pub").read_text().startswith("ssh-ed25519 ")
    assert sorted(r["kind"] for r in api.state.live_tagged("demo")) == [
        "instance",
        "internet_gateway",
        "route_table",
        "security_list",
        "subnet",
        "vcn",
    ]
    assert first.event("oci_attempts")["attempts"][0]["result"] == "launched"
    assert api.state.auth_failures == 0

    creates = {op: api.state.calls[op] for op in CREATES}
    second = provision(api, tmp_path, sshd_port)
    assert second.rc == 0, second.stdout[-4000:]
    assert second.changed == 0
    assert {op: api.state.calls[op] for op in CREATES} == creates

    down = teardown(api, tmp_path)
    assert down.rc == 0, down.stdout[-4000:]
    assert [r["kind"] for r in down.event("oci_teardown")["removed"]] == [
        "instance",
        "subnet",
        "route_table",
        "security_list",
        "internet_gateway",
        "vcn",
    ]
    assert api.state.live_tagged() == []
    assert not (state / "target.json").exists()


def test_capacity_failover_to_next_shape_and_ad(
    api: OciApi, tmp_path: Path, sshd_port: int
) -> None:
    ad1, ad2, ad3 = api.state.availability_domains
    api.state.faults.no_capacity(None, "VM.GPU.A10.1")
    api.state.faults.limit_exceeded("VM.GPU3.1")
    api.state.faults.no_capacity(ad1, "VM.GPU2.1")
    run = provision(api, tmp_path, sshd_port, shapes=["VM.GPU.A10.1", "VM.GPU3.1", "VM.GPU2.1"])
    assert run.rc == 0, run.stdout[-4000:]
    target = json.loads((tmp_path / "state" / "target.json").read_text())
    assert (target["shape"], target["gpu_model"]) == ("VM.GPU2.1", "NVIDIA P100")
    assert target["availability_domain"] in (ad2, ad3)
    results = [(a["shape"], a["result"]) for a in run.event("oci_attempts")["attempts"]]
    assert results == [("VM.GPU.A10.1", "out_of_host_capacity")] * 3 + [
        ("VM.GPU3.1", "limit_exceeded")
    ] * 3 + [("VM.GPU2.1", "launched")]
    assert [r["kind"] for r in api.state.live_tagged("demo")].count("instance") == 1
    assert teardown(api, tmp_path).rc == 0
    assert api.state.live_tagged() == []


def test_ladder_exhausted_fails_clearly_and_leaves_no_instance(
    api: OciApi, tmp_path: Path, sshd_port: int
) -> None:
    api.state.faults.no_capacity(None, None)
    run = provision(
        api,
        tmp_path,
        sshd_port,
        shapes=["VM.GPU.A10.1", "VM.GPU3.1"],
        availability_domains=["AD-1", "AD-2"],
    )
    assert run.rc != 0
    assert "no capacity for any shape in any availability domain" in run.stdout
    assert "VM.GPU3.1 in Uocm:EU-FRANKFURT-1-AD-2: out_of_host_capacity" in run.stdout
    assert not [r for r in api.state.live_tagged("demo") if r["kind"] == "instance"]
    assert teardown(api, tmp_path).rc == 0
    assert api.state.live_tagged() == []


def test_429_storm_5xx_and_lost_state_dir(api: OciApi, tmp_path: Path, sshd_port: int) -> None:
    api.state.faults.throttle(count=None, every=5)
    api.state.faults.fail(503, "ServiceUnavailable", "Service unavailable", op="CreateSubnet")
    api.state.faults.fail(500, "InternalServerError", "Internal error", op="LaunchInstance")
    run = provision(api, tmp_path, sshd_port)
    assert run.rc == 0, run.stdout[-4000:]
    assert api.state.calls["LaunchInstance"] >= 2
    assert api.state.faults_fired[(429, "TooManyRequests")] > 5
    # The state directory is lost: teardown finds everything by tag.
    shutil.rmtree(tmp_path / "state")
    down = teardown(api, tmp_path, state=tmp_path / "fresh-state")
    assert down.rc == 0, down.stdout[-4000:]
    assert len(down.event("oci_teardown")["removed"]) == 6
    assert api.state.live_tagged() == []


def test_preemptible_falls_back_to_on_demand(api: OciApi, tmp_path: Path, sshd_port: int) -> None:
    api.state.faults.no_capacity(None, None, preemptible=True)
    run = provision(
        api,
        tmp_path,
        sshd_port,
        preemptible=True,
        preemptible_fallback=True,
        availability_domains=["AD-3"],
    )
    assert run.rc == 0, run.stdout[-4000:]
    attempts = [(a["preemptible"], a["result"]) for a in run.event("oci_attempts")["attempts"]]
    assert attempts == [(True, "out_of_host_capacity"), (False, "launched")]
    assert json.loads((tmp_path / "state" / "target.json").read_text())["preemptible"] is False
    assert teardown(api, tmp_path).rc == 0
    assert api.state.live_tagged() == []


def test_slow_states_and_preemption_then_rerun_launches_again(
    api: OciApi, tmp_path: Path, sshd_port: int
) -> None:
    api.state.faults.provision_s = 2.0
    api.state.faults.terminate_s = 2.0
    first = provision(api, tmp_path, sshd_port, preemptible=True)
    assert first.rc == 0, first.stdout[-4000:]
    old = json.loads((tmp_path / "state" / "target.json").read_text())
    assert old["preemptible"] is True
    api.state.preempt(old["instance_id"])
    second = provision(api, tmp_path, sshd_port, preemptible=True)
    assert second.rc == 0, second.stdout[-4000:]
    new = json.loads((tmp_path / "state" / "target.json").read_text())
    assert new["instance_id"] != old["instance_id"]
    assert second.changed > 0
    assert teardown(api, tmp_path).rc == 0
    assert api.state.live_tagged() == []


def test_check_mode_creates_nothing(api: OciApi, tmp_path: Path, sshd_port: int) -> None:
    run = run_playbook(
        "playbooks/provision.yml",
        job_vars(api, "demo", tmp_path / "state"),
        tmp_path / "run",
        "--check",
    )
    assert run.rc == 0, run.stdout[-4000:]
    assert all(api.state.calls[op] == 0 for op in CREATES)
    assert api.state.live_tagged() == []


def test_other_targets_do_nothing(api: OciApi, tmp_path: Path) -> None:
    extravars = {
        "fsoci": {"name": "demo", "target": {"kind": "ssh", "oci": None}},
        "fsoci_state_dir": str(tmp_path),
    }
    for playbook in ("playbooks/provision.yml", "playbooks/teardown.yml"):
        run = run_playbook(playbook, extravars, tmp_path / "run")
        assert run.rc == 0 and run.changed == 0, run.stdout[-3000:]
    assert sum(api.state.calls.values()) == 0


def test_existing_subnet_is_reused(api: OciApi, tmp_path: Path, sshd_port: int) -> None:
    import oci

    config = oci.config.from_file(str(api.cfg.config_file))
    vn = oci.core.VirtualNetworkClient(config, service_endpoint=api.url)
    comp = api.cfg.compartment
    vcn = vn.create_vcn(
        oci.core.models.CreateVcnDetails(compartment_id=comp, cidr_block="10.1.0.0/16")
    ).data
    subnet = vn.create_subnet(
        oci.core.models.CreateSubnetDetails(
            compartment_id=comp, vcn_id=vcn.id, cidr_block="10.1.0.0/24"
        )
    ).data
    run = provision(api, tmp_path, sshd_port, name="vm", subnet=subnet.id)
    assert run.rc == 0, run.stdout[-4000:]
    assert sorted(r["kind"] for r in api.state.live_tagged("vm")) == ["instance"]
    assert teardown(api, tmp_path, name="vm").rc == 0
    assert api.state.live_tagged() == []
    assert vn.get_subnet(subnet.id).data.lifecycle_state == "AVAILABLE"
