"""oci_network helpers against autospecced SDK clients and real SDK models."""

from __future__ import annotations

import datetime as dt
from unittest.mock import create_autospec

import oci
import pytest
from ansible_collections.faceswap_oci.core.plugins.module_utils import oci_network as net

M = oci.core.models
COMP = "ocid1.compartment.oc1..aaaaaaaacomp"
TAGS = {"faceswap-oci-job": "demo"}
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MUTATING = ("create_", "update_", "delete_", "terminate_", "launch_")


def resp(data: object) -> oci.response.Response:
    return oci.response.Response(200, {"opc-request-id": "RID"}, data, None)


def mutating_calls(*clients: object) -> list[str]:
    return [
        name
        for client in clients
        for name, _args, _kw in client.method_calls  # type: ignore[attr-defined]
        if name.startswith(MUTATING)
    ]


def spec() -> net.NetworkSpec:
    return net.NetworkSpec(COMP, "demo", dict(TAGS), "198.51.100.7/32")


def empty_vn() -> object:
    vn = create_autospec(oci.core.VirtualNetworkClient, instance=True)
    for name in (
        "list_vcns",
        "list_internet_gateways",
        "list_route_tables",
        "list_security_lists",
        "list_subnets",
    ):
        getattr(vn, name).return_value = resp([])
    return vn


def test_check_mode_predicts_everything_and_mutates_nothing() -> None:
    vn = empty_vn()
    res = net.ensure_network(vn, spec(), check_mode=True, wait=True, wait_timeout=5)
    assert res.changed
    assert [c["kind"] for c in res.created] == [
        "vcn",
        "internet_gateway",
        "security_list",
        "route_table",
        "subnet",
    ]
    assert mutating_calls(vn) == []


def existing(vn: object, cidr: str = "198.51.100.7/32") -> None:
    vcn = M.Vcn(id="vcn1", freeform_tags=TAGS, lifecycle_state="AVAILABLE", time_created=T0)
    igw = M.InternetGateway(
        id="igw1", vcn_id="vcn1", freeform_tags=TAGS, lifecycle_state="AVAILABLE", time_created=T0
    )
    rt = M.RouteTable(
        id="rt1",
        vcn_id="vcn1",
        freeform_tags=TAGS,
        lifecycle_state="AVAILABLE",
        time_created=T0,
        route_rules=[net.route_rule("igw1")],
    )
    sl = M.SecurityList(
        id="sl1",
        vcn_id="vcn1",
        freeform_tags=TAGS,
        lifecycle_state="AVAILABLE",
        time_created=T0,
        ingress_security_rules=[net.ssh_ingress_rule(cidr)],
        egress_security_rules=[net.egress_all_rule()],
    )
    sn = M.Subnet(
        id="sn1", vcn_id="vcn1", freeform_tags=TAGS, lifecycle_state="AVAILABLE", time_created=T0
    )
    vn.list_vcns.return_value = resp([vcn])  # type: ignore[attr-defined]
    vn.list_internet_gateways.return_value = resp([igw])  # type: ignore[attr-defined]
    vn.list_route_tables.return_value = resp([rt])  # type: ignore[attr-defined]
    vn.list_security_lists.return_value = resp([sl])  # type: ignore[attr-defined]
    vn.list_subnets.return_value = resp([sn])  # type: ignore[attr-defined]


def test_second_run_changes_nothing_and_returns_same_ids() -> None:
    vn = empty_vn()
    existing(vn)
    res = net.ensure_network(vn, spec(), check_mode=False, wait=True, wait_timeout=5)
    assert not res.changed
    assert res.ids == {
        "vcn": "vcn1",
        "internet_gateway": "igw1",
        "route_table": "rt1",
        "security_list": "sl1",
        "subnet": "sn1",
    }
    assert mutating_calls(vn) == []


def test_changed_ssh_cidr_updates_the_security_list_only() -> None:
    vn = empty_vn()
    existing(vn, cidr="192.0.2.1/32")
    vn.update_security_list.return_value = resp(M.SecurityList(id="sl1"))
    res = net.ensure_network(vn, spec(), check_mode=False, wait=True, wait_timeout=5)
    assert res.changed and res.updated == [{"kind": "security_list", "id": "sl1"}]
    assert mutating_calls(vn) == ["update_security_list"]
    details = vn.update_security_list.call_args.args[1]
    assert details.ingress_security_rules[0].source == "198.51.100.7/32"


def test_create_tags_everything_and_wires_subnet() -> None:
    vn = empty_vn()
    vn.create_vcn.return_value = resp(M.Vcn(id="vcn1", lifecycle_state="AVAILABLE"))
    vn.create_internet_gateway.return_value = resp(
        M.InternetGateway(id="igw1", lifecycle_state="AVAILABLE")
    )
    vn.create_route_table.return_value = resp(M.RouteTable(id="rt1", lifecycle_state="AVAILABLE"))
    vn.create_security_list.return_value = resp(
        M.SecurityList(id="sl1", lifecycle_state="AVAILABLE")
    )
    vn.create_subnet.return_value = resp(M.Subnet(id="sn1", lifecycle_state="AVAILABLE"))
    res = net.ensure_network(vn, spec(), check_mode=False, wait=True, wait_timeout=5)
    assert res.ids["subnet"] == "sn1"
    subnet = vn.create_subnet.call_args.args[0]
    assert (subnet.route_table_id, subnet.security_list_ids, subnet.freeform_tags) == (
        "rt1",
        ["sl1"],
        TAGS,
    )
    assert vn.create_route_table.call_args.args[0].route_rules[0].network_entity_id == "igw1"
    for name in (
        "create_vcn",
        "create_internet_gateway",
        "create_route_table",
        "create_security_list",
    ):
        assert getattr(vn, name).call_args.args[0].freeform_tags == TAGS


def test_remove_deletes_in_dependency_order_and_tolerates_gone() -> None:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    vn = create_autospec(oci.core.VirtualNetworkClient, instance=True)
    order: list[str] = []
    for name in (
        "delete_subnet",
        "delete_route_table",
        "delete_security_list",
        "delete_internet_gateway",
        "delete_vcn",
    ):
        getattr(vn, name).side_effect = lambda ocid, _n=name, **kw: order.append(_n)
    compute.terminate_instance.side_effect = oci.exceptions.ServiceError(
        404, "NotAuthorizedOrNotFound", {}, "gone"
    )
    gone = oci.exceptions.ServiceError(404, "NotAuthorizedOrNotFound", {}, "gone")
    for name in (
        "get_subnet",
        "get_route_table",
        "get_security_list",
        "get_internet_gateway",
        "get_vcn",
    ):
        getattr(vn, name).side_effect = gone
    owned = [
        net.Owned(kind, f"{kind}1", None, "AVAILABLE")
        for kind in (
            "vcn",
            "internet_gateway",
            "security_list",
            "route_table",
            "subnet",
            "instance",
        )
    ]
    res = net.remove(compute, vn, owned, check_mode=False, wait_timeout=5)
    assert order == [
        "delete_subnet",
        "delete_route_table",
        "delete_security_list",
        "delete_internet_gateway",
        "delete_vcn",
    ]
    assert [r["kind"] for r in res.already_gone] == ["instance"]
    assert [r["kind"] for r in res.removed] == [
        "subnet",
        "route_table",
        "security_list",
        "internet_gateway",
        "vcn",
    ]


def test_remove_in_check_mode_mutates_nothing() -> None:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    vn = create_autospec(oci.core.VirtualNetworkClient, instance=True)
    owned = [net.Owned("instance", "i1", "x", "RUNNING"), net.Owned("vcn", "v1", "x", "AVAILABLE")]
    res = net.remove(compute, vn, owned, check_mode=True, wait_timeout=5)
    assert [r["id"] for r in res.removed] == ["i1", "v1"]
    assert mutating_calls(compute, vn) == []


def test_remove_reraises_conflict() -> None:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    vn = create_autospec(oci.core.VirtualNetworkClient, instance=True)
    vn.delete_vcn.side_effect = oci.exceptions.ServiceError(409, "Conflict", {}, "still used")
    with pytest.raises(oci.exceptions.ServiceError):
        net.remove(
            compute,
            vn,
            [net.Owned("vcn", "v1", None, "AVAILABLE")],
            check_mode=False,
            wait_timeout=5,
        )


def test_find_job_resources_filters_by_tag_and_state() -> None:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    vn = empty_vn()
    compute.list_instances.return_value = resp(
        [
            M.Instance(
                id="i1",
                shape="VM.GPU.A10.1",
                availability_domain="AD-1",
                freeform_tags=TAGS,
                lifecycle_state="RUNNING",
                time_created=T0,
            ),
            M.Instance(id="i0", freeform_tags=TAGS, lifecycle_state="TERMINATED", time_created=T0),
        ]
    )
    vn.list_vcns.return_value = resp(
        [M.Vcn(id="v1", freeform_tags=TAGS, lifecycle_state="AVAILABLE", time_created=T0)]
    )
    found = net.find_job_resources(compute, vn, COMP, "demo")
    assert [(o.kind, o.id) for o in found] == [("instance", "i1"), ("vcn", "v1")]
    assert found[0].as_dict()["shape"] == "VM.GPU.A10.1"


def test_find_every_job_when_no_job_is_given() -> None:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    vn = empty_vn()
    compute.list_instances.return_value = resp([])
    vn.list_vcns.return_value = resp(
        [
            M.Vcn(id="v1", freeform_tags=TAGS, lifecycle_state="AVAILABLE", time_created=T0),
            M.Vcn(
                id="v2",
                freeform_tags={"faceswap-oci-job": "b"},
                lifecycle_state="AVAILABLE",
                time_created=T0,
            ),
            M.Vcn(id="v3", freeform_tags={}, lifecycle_state="AVAILABLE", time_created=T0),
        ]
    )
    found = net.find_job_resources(compute, vn, COMP, None)
    assert [(o.id, o.as_dict()["job"]) for o in found] == [("v1", "demo"), ("v2", "b")]
