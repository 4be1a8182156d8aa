"""`run --detach` / `target.oci.detach`: the instance-principal policy is verified through the
Identity API the double serves (ListDynamicGroups, ListPolicies, GetCompartment, from
`oci.identity.models`) before anything is created; without it `--detach` is refused (exit 2,
with the exact dynamic group and policy text), except on VM.GPU.A10.x ladders, which power off;
`plan` warns for shapes a stopped instance of which is still billed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from faceswap_oci import api, cli, cost, detach, spec
from faceswap_oci.check import _detach_policy
from faceswap_oci.errors import DetachRefused, SpecError
from tests.media import write_pair
from tests.ociapi.fixtures import TENANCY, OciApi, oci_target

GROUP = "fsoci-detached"


def write_job(api_: OciApi, folder: Path, shapes: list[str], **oci: Any) -> Path:
    write_pair(folder / "media")
    data = {
        "name": "det",
        "consent": spec.CONSENT_TEXT,
        "target": oci_target(api_.cfg, api_.url, shapes=shapes, **oci),
        "inputs": {"a": "media/a.mp4", "b": "media/b.mp4"},
    }
    path = folder / "job.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def expected_policy(compartment: str) -> list[str]:
    return [
        f"instance.compartment.id = '{compartment}'",
        f"Allow dynamic-group {GROUP} to manage instance-family in compartment id {compartment}",
        f"Allow dynamic-group {GROUP} to manage volume-family in compartment id {compartment}",
    ]


def grant(api_: OciApi, statements: list[str] | None = None, rule: str | None = None) -> None:
    comp = api_.cfg.compartment
    api_.state.iam.add_dynamic_group(GROUP, rule or f"instance.compartment.id = '{comp}'")
    api_.state.iam.add_policy(TENANCY, statements or expected_policy(comp)[1:])


MUTATING = ("Create", "Launch", "Update", "Delete", "Terminate", "InstanceAction")


def test_detach_without_the_policy_is_refused_before_anything_is_created(
    ociapi: OciApi, tmp_path: Path
) -> None:
    job = write_job(ociapi, tmp_path, ["VM.GPU.A10.1", "VM.GPU3.1"])
    state = tmp_path / "state"
    result = CliRunner().invoke(
        cli.app, ["run", str(job), "--detach", "-y", "--state-dir", str(state)]
    )
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "target.oci.detach: refused: no dynamic group of tenancy" in flat
    assert "a stopped VM.GPU3.1 is still billed for its shape" in flat
    assert "VM.GPU.A10.1 is still" not in flat
    for line in expected_policy(ociapi.cfg.compartment):
        assert line in flat
    assert not state.exists()
    assert [op for op in ociapi.state.calls if op.startswith(MUTATING)] == []
    assert ociapi.state.calls["ListDynamicGroups"] >= 1
    assert ociapi.state.live_tagged() == []


def test_the_spec_field_detaches_too_and_the_api_refuses_the_same(
    ociapi: OciApi, tmp_path: Path
) -> None:
    job = spec.load_job(write_job(ociapi, tmp_path, ["VM.GPU3.1"], detach=True), write=False)
    with pytest.raises(DetachRefused) as err:
        api.run(job, state_root=tmp_path / "state")
    assert err.value.exit_code == 2
    assert expected_policy(ociapi.cfg.compartment)[1] in str(err.value)
    assert not (tmp_path / "state").exists()


def test_with_the_policy_plan_and_check_say_the_agent_terminates(
    ociapi: OciApi, tmp_path: Path
) -> None:
    grant(ociapi)
    job = spec.load_job(write_job(ociapi, tmp_path, ["VM.GPU.A10.1", "VM.GPU3.1"]), write=False)
    planned = api.plan(job, state_root=tmp_path / "state", detach=True)
    assert planned.detach_refused is None
    assert planned.detach[0].startswith(
        "detach: the agent terminates its instance (boot volume included) through its instance "
        f"principal (dynamic group(s) {GROUP} may terminate"
    )
    # terminating stops the billing: no watchdog warning for VM.GPU3.1
    assert not [w for w in planned.warnings if w.startswith("watchdog")]
    item = _detach_policy(spec.with_detach(job))
    assert (item.name, item.level, item.fix) == ("detach policy", "ok", "")
    assert [op for op in ociapi.state.calls if op.startswith(MUTATING)] == []


def test_an_a10_ladder_without_the_policy_powers_off_and_plan_says_so(
    ociapi: OciApi, tmp_path: Path
) -> None:
    job = spec.load_job(
        write_job(ociapi, tmp_path, ["VM.GPU.A10.1", "VM.GPU.A10.2"], detach=True), write=False
    )
    decision = detach.require(job)
    assert decision is not None and decision.mode == "poweroff"
    planned = api.plan(job, state_root=tmp_path / "state")
    assert planned.detach_refused is None
    assert "so the agent powers the instance off" in planned.detach[0]
    assert [w for w in planned.warnings if w.startswith("watchdog")] == []
    assert _detach_policy(job).level == "warn"


@pytest.mark.parametrize(
    ("rule", "statements", "why"),
    [
        # a rule naming one instance can never take the job's new one
        (
            "instance.id = 'ocid1.instance.oc1..old'",
            None,
            "no dynamic group of tenancy",
        ),
        # the instance alone: its boot volume could not be deleted
        (
            None,
            ["Allow dynamic-group fsoci-detached to manage instance-family in tenancy"],
            "but no policy lets them manage volume-family in compartment",
        ),
        # a verb below manage does not terminate
        (
            None,
            ["Allow dynamic-group fsoci-detached to use all-resources in tenancy"],
            "but no policy lets them manage instance-family and volume-family",
        ),
        # another compartment
        (
            None,
            ["Allow dynamic-group fsoci-detached to manage all-resources in compartment id x"],
            "but no policy lets them manage instance-family and volume-family",
        ),
    ],
)
def test_policies_that_would_not_let_the_instance_terminate_itself_are_missing(
    ociapi: OciApi, tmp_path: Path, rule: str | None, statements: list[str] | None, why: str
) -> None:
    grant(ociapi, statements, rule)
    job = spec.load_job(write_job(ociapi, tmp_path, ["VM.GPU3.1"], detach=True), write=False)
    decision = detach.decide(job)
    assert decision is not None and decision.mode == "refused"
    assert why in decision.detail


def test_policies_by_compartment_name_or_in_tenancy_count(ociapi: OciApi, tmp_path: Path) -> None:
    # the double's compartment is named faceswap-oci-tests, directly below the tenancy
    grant(
        ociapi,
        [
            "allow dynamic-group fsoci-detached to manage all-resources in tenancy",
            "allow dynamic-group fsoci-detached to manage instance-family in compartment "
            "faceswap-oci-tests where request.permission = 'INSTANCE_DELETE'",
        ],
        rule=f"ANY {{instance.compartment.id = '{ociapi.cfg.compartment}'}}",
    )
    job = spec.load_job(write_job(ociapi, tmp_path, ["VM.GPU3.1"], detach=True), write=False)
    decision = detach.decide(job)
    assert decision is not None and decision.mode == "terminate"
    assert decision.notes and "a condition is not evaluated" in decision.notes[0]


def test_unreadable_iam_is_unknown_never_ok(ociapi: OciApi, tmp_path: Path) -> None:
    grant(ociapi)
    ociapi.state.faults.fail(
        404, "NotAuthorizedOrNotFound", "Authorization failed", op="ListPolicies", count=None
    )
    job = spec.load_job(write_job(ociapi, tmp_path, ["VM.GPU3.1"], detach=True), write=False)
    with pytest.raises(DetachRefused) as err:
        detach.require(job)
    assert "ListPolicies in" in str(err.value)
    assert "404 NotAuthorizedOrNotFound" in str(err.value)


def test_plan_warns_for_each_shape_still_billed_when_stopped(
    ociapi: OciApi, tmp_path: Path
) -> None:
    job = spec.load_job(
        write_job(ociapi, tmp_path, ["VM.GPU.A10.1", "VM.GPU3.1", "BM.GPU.A100-v2.8"]),
        write=False,
    )
    warned = [w for w in api.plan(job).warnings if w.startswith("watchdog")]
    assert [w.split("a stopped ")[1].split(" is")[0] for w in warned] == [
        "VM.GPU3.1",
        "BM.GPU.A100-v2.8",
    ]
    assert ociapi.state.calls["ListDynamicGroups"] == 0  # not detached: no IAM call


@pytest.mark.parametrize(
    ("shape", "billed"),
    [
        ("VM.GPU.A10.1", False),
        ("VM.GPU.A10.2", False),
        ("VM.GPU3.1", True),
        ("VM.GPU2.1", True),
        ("BM.GPU.A10.4", True),
        ("BM.GPU.A100-v2.8", True),
        ("VM.Standard.E4.Flex", False),
        ("VM.DenseIO.E4.Flex", True),
    ],
)
def test_billed_when_stopped(shape: str, billed: bool) -> None:
    assert cost.billed_when_stopped(shape) is billed


def test_detach_needs_the_bucket(ociapi: OciApi, tmp_path: Path) -> None:
    path = write_job(ociapi, tmp_path, ["VM.GPU3.1"], detach=True, storage={"enabled": False})
    with pytest.raises(SpecError) as err:
        spec.load_job(path, write=False)
    assert "target.oci.detach: a detached job puts its results in the job bucket; set " in str(
        err.value
    )


def test_check_detach_reports_the_policy(ociapi: OciApi, tmp_path: Path) -> None:
    job = write_job(ociapi, tmp_path, ["VM.GPU3.1"])
    args = ["check", str(job), "--detach", "--json", "--state-dir", str(tmp_path / "s")]
    before = CliRunner().invoke(cli.app, args)
    (item,) = [json.loads(line) for line in before.stdout.splitlines() if "detach policy" in line]
    assert item["level"] == "fail"
    assert expected_policy(ociapi.cfg.compartment)[1] in item["fix"]
    assert before.exit_code == 2
    grant(ociapi)
    after = CliRunner().invoke(cli.app, args)
    (item,) = [json.loads(line) for line in after.stdout.splitlines() if "detach policy" in line]
    assert (item["level"], item["fix"]) == ("ok", "")
    # without --detach (and without the field) there is no such item
    plain = CliRunner().invoke(cli.app, [a for a in args if a != "--detach"])
    assert "detach policy" not in plain.stdout
