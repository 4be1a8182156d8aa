"""The failover ladder, image choice and instance facts, with autospecced SDK clients."""

from __future__ import annotations

import datetime as dt
import json
from unittest.mock import create_autospec, patch

import oci
import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.faceswap_oci.core.plugins.module_utils import oci_common
from ansible_collections.faceswap_oci.core.plugins.module_utils import oci_launch as launch
from ansible_collections.faceswap_oci.core.plugins.modules import oci_instance

M = oci.core.models
COMP = "ocid1.compartment.oc1..aaaaaaaacomp"
AD1, AD2 = "Uocm:EU-FRANKFURT-1-AD-1", "Uocm:EU-FRANKFURT-1-AD-2"
NO_RETRY = oci.retry.NoneRetryStrategy()


def resp(data: object, rid: str = "RID") -> oci.response.Response:
    return oci.response.Response(200, {"opc-request-id": rid}, data, None)


def err(status: int, code: str, message: str) -> oci.exceptions.ServiceError:
    return oci.exceptions.ServiceError(status, code, {"opc-request-id": "E"}, message)


def spec() -> launch.LaunchSpec:
    return launch.LaunchSpec(
        COMP, "demo", {"faceswap-oci-job": "demo"}, "sn1", "ssh-ed25519 AAAA k", 100, "fsoci-demo"
    )


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("Oracle Linux 9", ("Oracle Linux", "9")),
        ("Canonical Ubuntu 24.04", ("Canonical Ubuntu", "24.04")),
        ("Ubuntu 22.04", ("Canonical Ubuntu", "22.04")),
    ],
)
def test_parse_os(text: str, parsed: tuple[str, str]) -> None:
    assert launch.parse_os(text) == parsed


def test_parse_os_rejects_missing_version() -> None:
    with pytest.raises(ValueError, match="expected '<name> <version>'"):
        launch.parse_os("Ubuntu")


def test_choose_image_prefers_newest_gpu_build_only_when_asked() -> None:
    t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    images = [
        M.Image(
            id="plain-old",
            display_name="Oracle-Linux-9.4-2024",
            lifecycle_state="AVAILABLE",
            time_created=t,
        ),
        M.Image(
            id="plain-new",
            display_name="Oracle-Linux-9.5-2025",
            lifecycle_state="AVAILABLE",
            time_created=t.replace(year=2026),
        ),
        M.Image(
            id="gpu",
            display_name="Oracle-Linux-9.5-Gen2-GPU-2025",
            lifecycle_state="AVAILABLE",
            time_created=t,
        ),
    ]
    assert launch.choose_image(images, prefer_gpu=True).id == "gpu"
    assert launch.choose_image(images, prefer_gpu=False).id == "plain-new"


def test_ladder_orders_shapes_then_hinted_ads_then_on_demand_fallback() -> None:
    hints = {("A", AD1): "OUT_OF_HOST_CAPACITY", ("A", AD2): "AVAILABLE"}
    rungs = launch.ladder(["A", "B"], [AD1, AD2], True, True, hints)
    assert [(r.shape, r.availability_domain[-4:], r.preemptible) for r in rungs] == [
        ("A", "AD-2", True),
        ("A", "AD-1", True),
        ("B", "AD-1", True),
        ("B", "AD-2", True),
        ("A", "AD-2", False),
        ("A", "AD-1", False),
        ("B", "AD-1", False),
        ("B", "AD-2", False),
    ]


def test_match_availability_domains_by_suffix() -> None:
    assert launch.match_availability_domains(["AD-2"], [AD1, AD2]) == [AD2]
    with pytest.raises(ValueError, match="'AD-9' is not one of"):
        launch.match_availability_domains(["AD-9"], [AD1, AD2])


def test_run_ladder_moves_on_capacity_and_records_every_attempt() -> None:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    compute.launch_instance.side_effect = [
        err(500, "InternalError", "Out of host capacity."),
        err(400, "LimitExceeded", "limit"),
        resp(M.Instance(id="i1", lifecycle_state="PROVISIONING"), "R3"),
    ]
    rungs = launch.ladder(["A", "B"], [AD1, AD2], False, False)
    inst, attempts = launch.run_ladder(
        compute, spec(), rungs, lambda shape: "img", retry_strategy=NO_RETRY
    )
    assert inst.id == "i1"
    assert [(a.shape, a.availability_domain, a.result) for a in attempts] == [
        ("A", AD1, "out_of_host_capacity"),
        ("A", AD2, "limit_exceeded"),
        ("B", AD1, "launched"),
    ]
    details = compute.launch_instance.call_args.args[0]
    assert isinstance(details, M.LaunchInstanceDetails)
    assert details.metadata == {"ssh_authorized_keys": "ssh-ed25519 AAAA k"}
    assert details.source_details.boot_volume_size_in_gbs == 100
    assert details.preemptible_instance_config is None
    assert details.freeform_tags == {"faceswap-oci-job": "demo"}


def test_run_ladder_exhausted_lists_every_attempt() -> None:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    compute.launch_instance.side_effect = err(500, "InternalError", "Out of host capacity.")
    rungs = launch.ladder(["A"], [AD1, AD2], True, False)
    with pytest.raises(launch.LadderExhausted) as exc:
        launch.run_ladder(compute, spec(), rungs, lambda shape: "img", retry_strategy=NO_RETRY)
    assert str(exc.value) == (
        "no capacity for any shape in any availability domain: "
        f"A in {AD1} (preemptible): out_of_host_capacity; "
        f"A in {AD2} (preemptible): out_of_host_capacity"
    )
    preempt = compute.launch_instance.call_args.args[0].preemptible_instance_config
    assert isinstance(preempt.preemption_action, M.TerminatePreemptionAction)


def test_run_ladder_stops_on_other_errors() -> None:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    compute.launch_instance.side_effect = err(404, "NotAuthorizedOrNotFound", "no such subnet")
    with pytest.raises(launch.LaunchFailed) as exc:
        launch.run_ladder(
            compute,
            spec(),
            launch.ladder(["A", "B"], [AD1], False, False),
            lambda s: "img",
            retry_strategy=NO_RETRY,
        )
    assert [a.result for a in exc.value.attempts] == ["error"]


def _module_args(**extra: object) -> dict[str, object]:
    args = {
        "compartment_id": COMP,
        "job": "demo",
        "shapes": ["VM.GPU.A10.1"],
        "subnet_id": "sn1",
        "ssh_public_key": "ssh-ed25519 AAAA k",
        "config_file": "/nonexistent",
    }
    args.update(extra)
    return args


def _run_module(
    args: dict[str, object],
    compute: object,
    vn: object,
    identity: object,
    capsys: pytest.CaptureFixture[str],
) -> dict:
    def fake_clients(params, *classes):  # type: ignore[no-untyped-def]
        return ({"region": "eu-frankfurt-1"}, compute, vn, identity)

    with (
        patch_module_args(args),
        patch.object(oci_common, "clients_from_params", fake_clients),
        pytest.raises(SystemExit),
    ):
        oci_instance.main()
    return json.loads(capsys.readouterr().out)


def _clients() -> tuple[object, object, object]:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    vn = create_autospec(oci.core.VirtualNetworkClient, instance=True)
    identity = create_autospec(oci.identity.IdentityClient, instance=True)
    compute.list_instances.return_value = resp([])
    vn.get_subnet.return_value = resp(M.Subnet(id="sn1", prohibit_public_ip_on_vnic=False))
    identity.list_availability_domains.return_value = resp(
        [
            oci.identity.models.AvailabilityDomain(name=AD1),
            oci.identity.models.AvailabilityDomain(name=AD2),
        ]
    )
    compute.create_compute_capacity_report.return_value = resp(
        M.ComputeCapacityReport(
            shape_availabilities=[
                M.CapacityReportShapeAvailability(
                    instance_shape="VM.GPU.A10.1", availability_status="AVAILABLE"
                )
            ]
        )
    )
    return compute, vn, identity


def test_module_check_mode_plans_the_ladder_and_launches_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    compute, vn, identity = _clients()
    out = _run_module(_module_args(_ansible_check_mode=True), compute, vn, identity, capsys)
    assert out["changed"] is True
    assert [(a["availability_domain"], a["result"]) for a in out["attempts"]] == [
        (AD1, "planned"),
        (AD2, "planned"),
    ]
    compute.launch_instance.assert_not_called()
    compute.terminate_instance.assert_not_called()


def test_module_returns_existing_instance_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    compute, vn, identity = _clients()
    inst = M.Instance(
        id="i1",
        shape="VM.GPU.A10.1",
        availability_domain=AD1,
        lifecycle_state="RUNNING",
        freeform_tags={"faceswap-oci-job": "demo"},
        time_created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        shape_config=M.InstanceShapeConfig(gpus=1, gpu_description="NVIDIA A10"),
    )
    compute.list_instances.return_value = resp([inst])
    compute.list_vnic_attachments.return_value = resp(
        [M.VnicAttachment(id="a1", vnic_id="v1", lifecycle_state="ATTACHED")]
    )
    vn.get_vnic.return_value = resp(M.Vnic(id="v1", public_ip="203.0.113.5", private_ip="10.0.0.2"))
    out = _run_module(_module_args(), compute, vn, identity, capsys)
    assert (out["changed"], out["instance_id"], out["public_ip"], out["gpu_model"]) == (
        False,
        "i1",
        "203.0.113.5",
        "NVIDIA A10",
    )
    compute.launch_instance.assert_not_called()


def test_module_ladder_exhausted_fails_listing_attempts(capsys: pytest.CaptureFixture[str]) -> None:
    compute, vn, identity = _clients()
    compute.list_images.return_value = resp(
        [M.Image(id="img", display_name="Oracle-Linux-9.5-2025", lifecycle_state="AVAILABLE")]
    )
    compute.launch_instance.side_effect = err(500, "InternalError", "Out of host capacity.")
    out = _run_module(_module_args(capacity_report=False), compute, vn, identity, capsys)
    assert out["failed"] is True
    assert out["msg"].startswith(
        "oci_instance: option shapes/availability_domains (region eu-frankfurt-1): no capacity"
    )
    assert [a["result"] for a in out["attempts"]] == [
        "out_of_host_capacity",
        "out_of_host_capacity",
    ]
