"""Billed cost (issue 15): an instance's lifetime at the price of what was launched, stored per
run in the job's state; the runner fed with the roles' recorded reports, never Ansible."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from faceswap_oci import cli, cost, events, spec
from faceswap_oci.runner import Runner
from tests.unit.oci_job import write_oci_job

T0 = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC)


def _record(**over: Any) -> dict[str, Any]:
    rec = {
        "instance_id": "ocid1.instance.oc1.eu-frankfurt-1.aaaa1",
        "shape": "VM.GPU.A10.1",
        "preemptible": False,
        "boot_volume_gb": 0,
        "time_created": T0.isoformat(),
        "time_terminated": (T0 + dt.timedelta(hours=2)).isoformat(),
    }
    rec.update(over)
    return rec


@pytest.mark.parametrize(
    ("over", "usd"),
    [
        ({}, 4.0),  # 2 h x $2.00
        ({"preemptible": True}, 2.0),  # half price
        ({"shape": "VM.GPU.A10.2"}, 8.0),
        ({"time_terminated": (T0 + dt.timedelta(seconds=5)).isoformat()}, 2.0 / 60),  # 1 min
        (
            {"shape": "BM.GPU.H100.8", "time_terminated": (T0 + dt.timedelta(hours=1)).isoformat()},
            80.0,
        ),
    ],
)
def test_bill_is_lifetime_times_the_launched_price(over: dict[str, Any], usd: float) -> None:
    bill = cost.bill_instance(_record(**over))
    assert bill.compute_usd == pytest.approx(usd)


def test_bill_adds_the_boot_volume_and_a_live_instance_runs_until_now() -> None:
    table = cost.load_prices()
    bill = cost.bill_instance(
        _record(boot_volume_gb=200, time_terminated=None), now=T0 + dt.timedelta(hours=1)
    )
    assert bill.running
    assert bill.boot_volume_usd == pytest.approx(200 * table.boot_volume_usd_per_gb_month / 730)
    assert bill.total_usd == pytest.approx(2.0 + bill.boot_volume_usd)


def test_every_gpu_shape_the_ladder_knows_has_a_price_with_source_and_date() -> None:
    import importlib

    from tests.unit.plugins import conftest  # noqa: F401 - puts the collection on sys.path

    gpu_table = importlib.import_module(
        "ansible_collections.faceswap_oci.core.plugins.module_utils.gpu_table"
    )
    OCI_SHAPES = gpu_table.OCI_SHAPES

    table = cost.load_prices()
    assert sorted(OCI_SHAPES) == sorted(table.shapes)
    for name, price in table.shapes.items():
        assert price.source.startswith("https://"), name
        assert dt.date.fromisoformat(price.as_of), name
        assert price.gpus == OCI_SHAPES[name].gpu_count, name


# --- the runner, fed with the roles' reports ---------------------------------------------------


def _job(tmp_path: Path, **oci: Any) -> spec.Job:
    return spec.load_job(write_oci_job(tmp_path, "billed", **oci))


def _launched(preemptible: bool, shape: str = "VM.GPU.A10.1") -> events.Report:
    return events.Report(
        "provision",
        report="oci_attempts",
        data={
            "instance_id": "ocid1.instance.oc1.eu-frankfurt-1.aaaa1",
            "shape": shape,
            "preemptible": preemptible,
            "time_created": T0.isoformat(),
            "boot_volume_gb": 200,
        },
    )


def _removed(preemptible: bool, hours: float = 2.0) -> events.Report:
    return events.Report(
        "teardown",
        report="oci_teardown",
        data={
            "removed": [
                {
                    "kind": "instance",
                    "id": "ocid1.instance.oc1.eu-frankfurt-1.aaaa1",
                    "shape": "VM.GPU.A10.1",
                    "preemptible": preemptible,
                    "time_created": T0.isoformat(),
                    "boot_volume_gb": 200,
                    "time_terminated": (T0 + dt.timedelta(hours=hours)).isoformat(),
                },
                {"kind": "vcn", "id": "ocid1.vcn.oc1..x"},
            ]
        },
    )


def test_a_fallback_to_on_demand_is_billed_on_demand(tmp_path: Path) -> None:
    job = _job(tmp_path, preemptible=True, preemptible_fallback=True)
    runner = Runner(job, state_root=tmp_path / "state")
    runner._emit(_launched(preemptible=False))
    runner._emit(_removed(preemptible=False))
    run = runner.billed_cost("successful", ["provision", "teardown"])
    assert run is not None
    assert run["compute_usd"] == pytest.approx(4.0)  # 2 h x $2.00, not the preemptible $1.00
    assert [b["preemptible"] for b in run["instances"]] == [False]


def test_a_run_without_an_instance_is_billed_zero(tmp_path: Path) -> None:
    runner = Runner(_job(tmp_path), state_root=tmp_path / "state")
    runner._durations = {"provision": 40.0, "teardown": 20.0}  # it ran, and failed to launch
    run = runner.billed_cost("failed", ["provision", "teardown"])
    assert run is not None
    assert (run["compute_usd"], run["total_usd"], run["instances"]) == (0.0, 0.0, [])


def test_cost_command_prints_the_history_of_two_runs(tmp_path: Path) -> None:
    job = _job(tmp_path)
    state = tmp_path / "state"
    first = Runner(job, state_root=state)
    first._emit(_launched(preemptible=False))
    first.billed_cost("successful", ["provision"])  # `run --only provision`: still running
    second = Runner(job, state_root=state)
    second._emit(_removed(preemptible=False, hours=3.0))
    second.billed_cost("successful", ["teardown"])  # `down`
    ledger = json.loads((state / "billed" / "costs.json").read_text())
    assert [r["total_usd"] for r in ledger["runs"]][1] > 6.0
    result = CliRunner().invoke(cli.app, ["cost", "billed", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("run 1 ")
    assert "provision" in lines[0] and "still running: ocid1.instance" in lines[0]
    assert lines[1].startswith("run 2 ")
    table = cost.load_prices()
    expected = 3 * 2.00 + 200 * table.boot_volume_usd_per_gb_month * 3 / table.hours_per_month
    assert f"billed (list price): ${expected:.2f} (VM.GPU.A10.1 3.000 h)" in lines[1]
    assert lines[2] == f"total billed: ${expected:.2f}"
