"""The price table and the pure cost functions."""

from __future__ import annotations

import pytest

from faceswap_oci import cost


def test_table_names_source_and_date() -> None:
    table = cost.load_prices()
    assert table.source.startswith("https://www.oracle.com/cloud/price-list/")
    assert table.as_of
    assert table.shapes["VM.GPU.A10.1"].usd_per_gpu_hour == 2.00
    assert table.shapes["BM.GPU.A100-v2.8"].usd_per_gpu_hour == 4.00


@pytest.mark.parametrize(
    ("shape", "hours", "preemptible", "compute_usd"),
    [
        ("VM.GPU.A10.1", 10, False, 20.0),
        ("VM.GPU.A10.1", 10, True, 10.0),
        ("VM.GPU.A10.2", 1, False, 4.0),
        ("BM.GPU.A100-v2.8", 1, False, 32.0),
        ("BM.GPU.A100-v2.8", 2, True, 32.0),
    ],
)
def test_estimate_compute(shape: str, hours: float, preemptible: bool, compute_usd: float) -> None:
    assert cost.estimate(shape, hours, preemptible, 0).compute_usd == pytest.approx(compute_usd)


def test_boot_volume_is_billed_per_gb_month() -> None:
    table = cost.load_prices()
    c = cost.estimate("VM.GPU.A10.1", table.hours_per_month, False, 100)
    assert c.boot_volume_usd == pytest.approx(100 * table.boot_volume_usd_per_gb_month)
    assert c.total_usd == pytest.approx(c.compute_usd + c.boot_volume_usd)


def test_unknown_shape_names_the_field_and_fix() -> None:
    with pytest.raises(
        cost.UnknownShapePrice, match=r"target.oci.shapes: no list price for 'VM.X'"
    ):
        cost.estimate("VM.X", 1, False, 50)


def test_phase_costs_share_outside_training() -> None:
    run = cost.phase_costs("VM.GPU.A10.1", False, 0, {"setup": 900, "train": 2700})
    assert [p.phase for p in run.phases] == ["setup", "train"]
    assert run.gpu_hours == pytest.approx(1.0)
    assert run.total_usd == pytest.approx(2.0)
    assert run.share_outside_training == pytest.approx(0.25)


def test_phase_costs_minimum_minute() -> None:
    run = cost.phase_costs("VM.GPU.A10.1", False, 0, {"setup": 10})
    assert run.phases[0].billed_hours == pytest.approx(60 / 3600)
