"""The local OCI API answers the real SDK the way the service does."""

from __future__ import annotations

import oci
import pytest

from tests.ociapi.fixtures import OciApi

M = oci.core.models
NO_RETRY = oci.retry.NoneRetryStrategy()


def _clients(api: OciApi) -> tuple[oci.core.VirtualNetworkClient, oci.core.ComputeClient, dict]:
    config = oci.config.from_file(str(api.cfg.config_file), api.cfg.profile)
    kw = {"service_endpoint": api.url, "retry_strategy": NO_RETRY}
    return oci.core.VirtualNetworkClient(config, **kw), oci.core.ComputeClient(config, **kw), config


def _network(
    api: OciApi, vn: oci.core.VirtualNetworkClient, job: str = "j1"
) -> tuple[M.Vcn, M.Subnet]:
    tags = {"faceswap-oci-job": job}
    comp = api.cfg.compartment
    vcn = vn.create_vcn(
        M.CreateVcnDetails(compartment_id=comp, cidr_block="10.0.0.0/16", freeform_tags=tags)
    ).data
    subnet = vn.create_subnet(
        M.CreateSubnetDetails(
            compartment_id=comp, vcn_id=vcn.id, cidr_block="10.0.0.0/24", freeform_tags=tags
        )
    ).data
    return vcn, subnet


def test_signed_requests_are_accepted_and_bodies_are_sdk_models(ociapi: OciApi) -> None:
    vn, _, _ = _clients(ociapi)
    ociapi.state.faults.network_provision_s = 0.3
    resp = vn.create_vcn(
        M.CreateVcnDetails(
            compartment_id=ociapi.cfg.compartment,
            cidr_block="10.0.0.0/16",
            display_name="v",
            freeform_tags={"faceswap-oci-job": "j1"},
        )
    )
    assert isinstance(resp.data, M.Vcn)
    assert resp.data.lifecycle_state == "PROVISIONING"
    assert resp.data.freeform_tags == {"faceswap-oci-job": "j1"}
    assert resp.headers["etag"]
    assert resp.request_id
    got = oci.wait_until(
        vn, vn.get_vcn(resp.data.id), "lifecycle_state", "AVAILABLE", max_wait_seconds=10
    )
    assert got.data.cidr_blocks == ["10.0.0.0/16"]
    assert ociapi.state.auth_failures == 0


def test_wrong_key_is_rejected_with_401(ociapi: OciApi, tmp_path) -> None:
    from tests.ociapi.fixtures import write_test_config

    other = write_test_config(tmp_path / "other")
    config = oci.config.from_file(str(other.config_file))
    vn = oci.core.VirtualNetworkClient(config, service_endpoint=ociapi.url, retry_strategy=NO_RETRY)
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        vn.list_vcns(ociapi.cfg.compartment)
    assert (exc.value.status, exc.value.code) == (401, "NotAuthenticated")
    assert ociapi.state.auth_failures == 1


def test_tampered_body_is_rejected(ociapi: OciApi) -> None:
    vn, _, _ = _clients(ociapi)
    signer = vn.base_client.signer
    real = signer.__call__

    def tamper(request, enforce_content_headers=True):  # type: ignore[no-untyped-def]
        signed = real(request, enforce_content_headers)
        signed.body = signed.body.replace("10.0.0.0", "10.9.0.0")
        return signed

    vn.base_client.session.auth = tamper
    vn.base_client.signer = tamper
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        vn.create_vcn(
            M.CreateVcnDetails(compartment_id=ociapi.cfg.compartment, cidr_block="10.0.0.0/16")
        )
    assert exc.value.status == 401


def test_delete_vcn_with_subnet_conflicts(ociapi: OciApi) -> None:
    vn, _, _ = _clients(ociapi)
    vcn, subnet = _network(ociapi, vn)
    oci.wait_until(
        vn, vn.get_subnet(subnet.id), "lifecycle_state", "AVAILABLE", max_wait_seconds=10
    )
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        vn.delete_vcn(vcn.id)
    assert (exc.value.status, exc.value.code) == (409, "Conflict")
    vn.delete_subnet(subnet.id)
    vn.delete_vcn(vcn.id)
    assert ociapi.state.live_tagged("j1") == [] or all(
        r["state"] == "TERMINATING" for r in ociapi.state.live_tagged("j1")
    )


def test_launch_capacity_fault_then_lifecycle_and_public_ip(ociapi: OciApi) -> None:
    vn, compute, _ = _clients(ociapi)
    _, subnet = _network(ociapi, vn)
    oci.wait_until(
        vn, vn.get_subnet(subnet.id), "lifecycle_state", "AVAILABLE", max_wait_seconds=10
    )
    ad1, ad2, _ = ociapi.state.availability_domains
    ociapi.state.faults.no_capacity(ad1, "VM.GPU.A10.1")
    ociapi.state.set_public_ip("192.0.2.7", job="j1")
    image = compute.list_images(ociapi.cfg.compartment, operating_system="Oracle Linux").data[0]
    details = M.LaunchInstanceDetails(
        compartment_id=ociapi.cfg.compartment,
        availability_domain=ad1,
        shape="VM.GPU.A10.1",
        source_details=M.InstanceSourceViaImageDetails(
            image_id=image.id, boot_volume_size_in_gbs=100
        ),
        create_vnic_details=M.CreateVnicDetails(subnet_id=subnet.id, assign_public_ip=True),
        freeform_tags={"faceswap-oci-job": "j1"},
    )
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        compute.launch_instance(details)
    assert (exc.value.status, exc.value.code, exc.value.message) == (
        500,
        "InternalError",
        "Out of host capacity.",
    )
    details.availability_domain = ad2
    inst = compute.launch_instance(details).data
    assert inst.lifecycle_state == "PROVISIONING"
    running = oci.wait_until(
        compute, compute.get_instance(inst.id), "lifecycle_state", "RUNNING", max_wait_seconds=10
    )
    assert running.data.shape_config.gpu_description == "NVIDIA A10"
    att = compute.list_vnic_attachments(ociapi.cfg.compartment, instance_id=inst.id).data[0]
    assert vn.get_vnic(att.vnic_id).data.public_ip == "192.0.2.7"
    compute.terminate_instance(inst.id)
    oci.wait_until(
        compute,
        compute.get_instance(inst.id),
        "lifecycle_state",
        "TERMINATED",
        max_wait_seconds=10,
        succeed_on_not_found=True,
    )
    assert not any(r["kind"] == "instance" for r in ociapi.state.live_tagged("j1"))


def test_pagination_and_429(ociapi: OciApi) -> None:
    vn, _, _ = _clients(ociapi)
    ociapi.state.faults.page_size = 2
    for _ in range(5):
        _network(ociapi, vn)
    vcns = oci.pagination.list_call_get_all_results(vn.list_vcns, ociapi.cfg.compartment).data
    assert len(vcns) == 5
    ociapi.state.faults.throttle(count=1)
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        vn.list_vcns(ociapi.cfg.compartment)
    assert exc.value.status == 429
    assert len(vn.list_vcns(ociapi.cfg.compartment).data) == 2


def test_preemption_terminates_preemptible_instance(ociapi: OciApi) -> None:
    vn, compute, _ = _clients(ociapi)
    _, subnet = _network(ociapi, vn)
    oci.wait_until(
        vn, vn.get_subnet(subnet.id), "lifecycle_state", "AVAILABLE", max_wait_seconds=10
    )
    ociapi.state.faults.provision_s = 0.0
    image = compute.list_images(ociapi.cfg.compartment).data[0]
    inst = compute.launch_instance(
        M.LaunchInstanceDetails(
            compartment_id=ociapi.cfg.compartment,
            availability_domain=ociapi.state.availability_domains[0],
            shape="VM.GPU.A10.1",
            image_id=image.id,
            subnet_id=subnet.id,
            preemptible_instance_config=M.PreemptibleInstanceConfigDetails(
                preemption_action=M.TerminatePreemptionAction(preserve_boot_volume=False)
            ),
        )
    ).data
    assert compute.get_instance(inst.id).data.lifecycle_state == "RUNNING"
    ociapi.state.preempt(inst.id)
    assert compute.get_instance(inst.id).data.lifecycle_state in ("TERMINATING", "TERMINATED")


def test_spontaneous_preemption_after_a_while(ociapi: OciApi) -> None:
    now = [1000.0]
    ociapi.state.clock = lambda: now[0]
    ociapi.state.faults.preempt_after_s = 60.0
    ociapi.state.faults.provision_s = 5.0
    ociapi.state.faults.terminate_s = 5.0
    vn, compute, _ = _clients(ociapi)
    _, subnet = _network(ociapi, vn)
    image = compute.list_images(ociapi.cfg.compartment).data[0]
    common = {
        "compartment_id": ociapi.cfg.compartment,
        "availability_domain": ociapi.state.availability_domains[0],
        "shape": "VM.GPU.A10.1",
        "image_id": image.id,
        "subnet_id": subnet.id,
    }
    spot = compute.launch_instance(
        M.LaunchInstanceDetails(
            **common,
            preemptible_instance_config=M.PreemptibleInstanceConfigDetails(
                preemption_action=M.TerminatePreemptionAction(preserve_boot_volume=False)
            ),
        )
    ).data
    steady = compute.launch_instance(M.LaunchInstanceDetails(**common)).data
    states = []
    for t in (1002.0, 1010.0, 1062.0, 1070.0):
        now[0] = t
        states.append(
            (
                compute.get_instance(spot.id).data.lifecycle_state,
                compute.get_instance(steady.id).data.lifecycle_state,
            )
        )
    assert states == [
        ("PROVISIONING", "PROVISIONING"),
        ("RUNNING", "RUNNING"),
        ("TERMINATING", "RUNNING"),
        ("TERMINATED", "RUNNING"),
    ]
    att = compute.list_vnic_attachments(ociapi.cfg.compartment, instance_id=spot.id).data[0]
    assert att.lifecycle_state == "DETACHED"
