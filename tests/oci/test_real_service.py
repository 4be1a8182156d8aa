"""The modules against the local OCI API where it behaves as the real service does and the
project's first double did not (issue 15): one test per behaviour, each run in-process through
the real SDK (tests/oci/modules.py)."""

from __future__ import annotations

import os
from pathlib import Path

import oci
import pytest

from tests.oci.modules import (
    auth_args,
    fast_clock,
    instance_args,
    network,
    run_module,
    teardown,
)
from tests.ociapi.fixtures import TENANCY, OciApi, write_private_key

M = oci.core.models
A10, V100, BM = "VM.GPU.A10.1", "VM.GPU3.1", "BM.GPU.A100-v2.8"


@pytest.fixture
def api(ociapi: OciApi) -> OciApi:
    ociapi.state.faults.provision_s = 0.2
    ociapi.state.faults.terminate_s = 0.2
    return ociapi


def _sdk(api: OciApi) -> tuple[oci.core.VirtualNetworkClient, oci.core.ComputeClient]:
    """Plain SDK clients on the double, without retries (to see the service's own answers)."""
    config = oci.config.from_file(str(api.cfg.config_file), api.cfg.profile)
    kw = {"service_endpoint": api.url, "retry_strategy": oci.retry.NoneRetryStrategy()}
    return oci.core.VirtualNetworkClient(config, **kw), oci.core.ComputeClient(config, **kw)


def _subnet(api: OciApi, vn: oci.core.VirtualNetworkClient, prohibit_public_ip: bool) -> M.Subnet:
    comp = api.cfg.compartment
    vcn = vn.create_vcn(M.CreateVcnDetails(compartment_id=comp, cidr_block="10.0.0.0/16")).data
    return vn.create_subnet(
        M.CreateSubnetDetails(
            compartment_id=comp,
            vcn_id=vcn.id,
            cidr_block="10.0.0.0/24",
            prohibit_public_ip_on_vnic=prohibit_public_ip,
        )
    ).data


def _clean(api: OciApi, capsys: pytest.CaptureFixture[str], job: str = "demo") -> None:
    out = teardown(api, capsys, job)
    assert not out.get("failed"), out
    assert api.state.live_tagged(job) == []


def test_capacity_report_is_sent_to_the_root_compartment(
    api: OciApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 1: the double refuses a report for any compartment but the tenancy, as the SDK's
    CreateComputeCapacityReportDetails says; the hints reach the attempts."""
    api.state.faults.no_capacity(api.state.availability_domains[0], A10)
    subnet = network(api, capsys)
    out = run_module("oci_instance", instance_args(api, subnet), capsys)
    try:
        assert not out.get("failed"), out
        assert out["availability_domain"] == api.state.availability_domains[1]
        assert [(a["availability_domain"], a["capacity_hint"]) for a in out["attempts"]] == [
            (api.state.availability_domains[1], "AVAILABLE")
        ]
        assert api.state.calls["LaunchInstance"] == 1  # the hint put the free AD first
    finally:
        _clean(api, capsys)


def test_capacity_report_for_a_job_compartment_is_refused(api: OciApi) -> None:
    _, compute = _sdk(api)

    def report(compartment: str) -> object:
        return compute.create_compute_capacity_report(
            M.CreateComputeCapacityReportDetails(
                compartment_id=compartment,
                availability_domain=api.state.availability_domains[0],
                shape_availabilities=[
                    M.CreateCapacityReportShapeAvailabilityDetails(instance_shape=A10)
                ],
            )
        ).data

    with pytest.raises(oci.exceptions.ServiceError) as exc:
        report(api.cfg.compartment)
    assert (exc.value.status, exc.value.code) == (400, "InvalidParameter")
    assert report(TENANCY).shape_availabilities[0].availability_status == "AVAILABLE"


def test_teardown_outlasts_a_30_s_vnic_lag_in_one_invocation(
    api: OciApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 2: after TERMINATED the VNIC still blocks DeleteSubnet (409 Conflict) for 30 s
    of the service's time (a clock 10x faster here); one teardown still removes everything."""
    api.state.clock = fast_clock(10.0)
    api.state.faults.vnic_release_s = 30.0
    subnet = network(api, capsys)
    launched = run_module("oci_instance", instance_args(api, subnet), capsys)
    assert not launched.get("failed"), launched
    fired_before = api.state.calls["DeleteSubnet"]
    out = teardown(api, capsys, wait_timeout=120)
    assert not out.get("failed"), out
    assert out["left"] == []
    assert sorted(r["kind"] for r in out["removed"]) == [
        "instance",
        "internet_gateway",
        "route_table",
        "security_list",
        "subnet",
        "vcn",
    ]
    assert api.state.calls["DeleteSubnet"] - fired_before > 1  # the 409 was met and retried
    assert api.state.live_tagged() == []


def test_a_429_storm_on_the_first_shape_launches_the_second(
    api: OciApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 3: LaunchInstance of shape 1 is throttled on every call; the ladder moves on."""
    api.state.faults.throttle(shape=A10)
    subnet = network(api, capsys)
    args = instance_args(
        api,
        subnet,
        shapes=[A10, V100],
        availability_domains=["AD-1"],
        capacity_report=False,
        launch_retry_attempts=2,
    )
    out = run_module("oci_instance", args, capsys)
    try:
        assert not out.get("failed"), out
        assert out["shape"] == V100
        assert [(a["shape"], a["result"]) for a in out["attempts"]] == [
            (A10, "throttled"),
            (V100, "launched"),
        ]
    finally:
        _clean(api, capsys)


def test_bare_metal_gets_no_preemptible_launch(
    api: OciApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 4: preemptible capacity is VM-only; the BM rung is skipped, the VM one launches."""
    subnet = network(api, capsys)
    args = instance_args(
        api,
        subnet,
        shapes=[BM, A10],
        availability_domains=["AD-1"],
        preemptible=True,
        capacity_report=False,
    )
    out = run_module("oci_instance", args, capsys)
    try:
        assert not out.get("failed"), out
        assert (out["shape"], out["preemptible"]) == (A10, True)
        assert [(a["shape"], a["result"]) for a in out["attempts"]] == [
            (BM, "preemptible_unsupported"),
            (A10, "launched"),
        ]
        assert api.state.calls["LaunchInstance"] == 1
    finally:
        _clean(api, capsys)


def test_the_double_refuses_preemptible_bare_metal(api: OciApi) -> None:
    from ansible_collections.faceswap_oci.core.plugins.module_utils import oci_launch

    vn, compute = _sdk(api)
    comp = api.cfg.compartment
    subnet = _subnet(api, vn, prohibit_public_ip=False)
    image = next(r.model.id for r in api.state.resources.values() if r.kind == "image")
    spec = oci_launch.LaunchSpec(comp, "x", {}, subnet.id, "ssh-ed25519 AAAA k", 100, "x")
    rung = oci_launch.Rung(BM, api.state.availability_domains[0], True)
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        compute.launch_instance(oci_launch.launch_details(spec, rung, image))
    assert (exc.value.status, exc.value.code) == (400, "InvalidParameter")
    assert BM in exc.value.message


def test_a_404_right_after_the_launch_is_retried(
    api: OciApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 9: eventual consistency, GetInstance answers 404 for a second after the create."""
    api.state.faults.consistency_lag_s = 1.0
    subnet = network(api, capsys)
    out = run_module("oci_instance", instance_args(api, subnet), capsys)
    try:
        assert not out.get("failed"), out
        assert out["lifecycle_state"] == "RUNNING"
    finally:
        _clean(api, capsys)


def test_a_stopped_instance_found_again_is_started(
    api: OciApi, capsys: pytest.CaptureFixture[str]
) -> None:
    subnet = network(api, capsys)
    first = run_module("oci_instance", instance_args(api, subnet), capsys)
    try:
        api.state.stop(first["instance_id"])
        api.state.clock()  # (the stop settles after terminate_s)
        again = run_module("oci_instance", instance_args(api, subnet, wait_timeout=20), capsys)
        assert not again.get("failed"), again
        assert (again["instance_id"], again["lifecycle_state"], again["changed"]) == (
            first["instance_id"],
            "RUNNING",
            True,
        )
        assert api.state.calls["InstanceAction"] == 1
        assert api.state.calls["LaunchInstance"] == 1
    finally:
        _clean(api, capsys)


def test_two_live_instances_of_a_job_are_refused_as_a_leak(
    api: OciApi, capsys: pytest.CaptureFixture[str]
) -> None:
    subnet = network(api, capsys)
    first = run_module("oci_instance", instance_args(api, subnet), capsys)
    # a second instance with the job's tag, as a crashed earlier run could have left
    second = run_module("oci_instance", instance_args(api, subnet, job="other"), capsys)
    api.state.resources[second["instance_id"]].model.freeform_tags["faceswap-oci-job"] = "demo"
    try:
        out = run_module("oci_instance", instance_args(api, subnet), capsys)
        assert out["failed"] is True
        assert "2 live instances carry faceswap-oci-job=demo" in out["msg"]
        assert "likely a leak" in out["msg"]
        assert sorted(out["instance_ids"]) == sorted([first["instance_id"], second["instance_id"]])
    finally:
        _clean(api, capsys)


def test_a_subnet_that_prohibits_public_ips_is_named_before_any_launch(
    api: OciApi, capsys: pytest.CaptureFixture[str]
) -> None:
    vn, _ = _sdk(api)
    subnet = _subnet(api, vn, prohibit_public_ip=True)
    out = run_module("oci_instance", instance_args(api, subnet.id), capsys)
    assert out["failed"] is True
    assert out["msg"].startswith(f"option subnet_id: subnet {subnet.id} (region eu-frankfurt-1)")
    assert api.state.calls["LaunchInstance"] == 0


def test_a_failure_after_the_launch_names_the_instance_and_keeps_the_attempts(
    api: OciApi, capsys: pytest.CaptureFixture[str]
) -> None:
    subnet = network(api, capsys)
    api.state.faults.fail(400, "InvalidParameter", "broken for the test", "ListVnicAttachments", 1)
    out = run_module("oci_instance", instance_args(api, subnet), capsys)
    try:
        assert out["failed"] is True
        (inst,) = api.state.instances()
        assert out["instance_id"] == inst.model.id
        assert [a["result"] for a in out["attempts"]] == ["launched"]
        assert f"OCID {inst.model.id}" in out["msg"]
        assert "option compartment_id" not in out["msg"]
    finally:
        _clean(api, capsys)


def _session_profile(api: OciApi, tmp_path: Path) -> Path:
    """A profile as `oci session authenticate` writes it: no user, no fingerprint, a token file
    and the session's own key pair."""
    key_file = tmp_path / "session_key.pem"
    key = write_private_key(key_file)
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test-session.signature"
    token_file = tmp_path / "token"
    token_file.write_text(token)
    api.state.session_tokens[token] = key.public_key()
    config = tmp_path / "config"
    config.write_text(
        f"[SESSION]\nfingerprint=\nkey_file={key_file}\ntenancy={TENANCY}\n"
        f"region={api.cfg.region}\nsecurity_token_file={token_file}\n"
    )
    os.chmod(config, 0o600)
    return config


def test_a_session_token_profile_works_with_auth_security_token(
    api: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Point 10: the double accepts the SDK's SecurityTokenSigner ("ST$<token>" key id)."""
    config = _session_profile(api, tmp_path)
    args = auth_args(api, config_file=str(config), profile="SESSION")
    out = run_module("oci_job_resources_info", {**args, "auth_type": "security_token"}, capsys)
    assert not out.get("failed"), out
    assert out["resources"] == []
    assert api.state.auth_failures == 0


def test_a_session_token_profile_with_api_key_auth_names_the_fix(
    api: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _session_profile(api, tmp_path)
    args = auth_args(api, config_file=str(config), profile="SESSION")
    out = run_module("oci_job_resources_info", args, capsys)
    assert out["failed"] is True
    assert (
        f"{config}: [SESSION] user: is missing; fix: this is a session-token profile"
        in (out["msg"])
    )
    assert "target.oci.auth: security_token" in out["msg"]
    assert api.state.calls.total() == 0  # found before any call
