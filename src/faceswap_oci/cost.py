"""Cost of an OCI GPU job from the list-price table in ``data/prices.yml``.

Pure functions over frozen dataclasses: ``estimate`` for a plan, ``phase_costs`` for the run
summary (billed time and cost per phase, and the share of GPU time spent outside training).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


class UnknownShapePrice(ValueError):
    """The price table has no entry for the shape."""


@dataclass(frozen=True)
class ShapePrice:
    shape: str
    gpus: int
    gpu: str
    usd_per_gpu_hour: float


@dataclass(frozen=True)
class PriceTable:
    source: str
    as_of: str
    preemptible_discount: float
    hours_per_month: float
    boot_volume_usd_per_gb_month: float
    minimum_billed_seconds: float
    shapes: Mapping[str, ShapePrice]


@dataclass(frozen=True)
class Cost:
    shape: str
    gpus: int
    hours: float
    preemptible: bool
    usd_per_hour: float
    compute_usd: float
    boot_volume_usd: float
    total_usd: float
    source: str
    as_of: str


@dataclass(frozen=True)
class PhaseCost:
    phase: str
    seconds: float
    billed_hours: float
    usd: float


@dataclass(frozen=True)
class RunCost:
    phases: tuple[PhaseCost, ...]
    total_usd: float
    gpu_hours: float
    share_outside_training: float


def _table_from(data: Mapping[str, Any]) -> PriceTable:
    shapes = {
        name: ShapePrice(name, int(v["gpus"]), str(v["gpu"]), float(v["usd_per_gpu_hour"]))
        for name, v in data["shapes"].items()
    }
    return PriceTable(
        source=str(data["source"]),
        as_of=str(data["as_of"]),
        preemptible_discount=float(data["preemptible_discount"]),
        hours_per_month=float(data["hours_per_month"]),
        boot_volume_usd_per_gb_month=float(data["boot_volume_usd_per_gb_month"]),
        minimum_billed_seconds=float(data["minimum_billed_seconds"]),
        shapes=shapes,
    )


@lru_cache(maxsize=1)
def load_prices() -> PriceTable:
    """The packaged price table."""
    text = resources.files("faceswap_oci").joinpath("data/prices.yml").read_text(encoding="utf-8")
    return _table_from(yaml.safe_load(text))


def _shape(shape: str, table: PriceTable) -> ShapePrice:
    if shape not in table.shapes:
        raise UnknownShapePrice(
            f"target.oci.shapes: no list price for {shape!r}; choose one of "
            f"{sorted(table.shapes)} or add it to faceswap_oci/data/prices.yml"
        )
    return table.shapes[shape]


def estimate(
    shape: str,
    hours: float,
    preemptible: bool,
    boot_gb: int,
    table: PriceTable | None = None,
) -> Cost:
    """List-price cost of running ``shape`` for ``hours`` with a ``boot_gb`` boot volume."""
    prices = table or load_prices()
    price = _shape(shape, prices)
    if hours < 0 or boot_gb < 0:
        raise ValueError("hours and boot_gb must not be negative")
    per_hour = price.gpus * price.usd_per_gpu_hour
    if preemptible:
        per_hour *= 1 - prices.preemptible_discount
    compute = per_hour * hours
    boot = boot_gb * prices.boot_volume_usd_per_gb_month * hours / prices.hours_per_month
    return Cost(
        shape=shape,
        gpus=price.gpus,
        hours=hours,
        preemptible=preemptible,
        usd_per_hour=per_hour,
        compute_usd=compute,
        boot_volume_usd=boot,
        total_usd=compute + boot,
        source=prices.source,
        as_of=prices.as_of,
    )


def phase_costs(
    shape: str,
    preemptible: bool,
    boot_gb: int,
    phase_seconds: Mapping[str, float],
    table: PriceTable | None = None,
) -> RunCost:
    """Billed time and cost per phase (per second, the first phase carrying OCI's one-minute
    minimum), and the share of GPU time spent outside the ``train`` phase."""
    prices = table or load_prices()
    out = []
    total_s = sum(phase_seconds.values())
    shortfall = max(0.0, prices.minimum_billed_seconds - total_s)
    for i, (phase, seconds) in enumerate(phase_seconds.items()):
        billed = seconds + (shortfall if i == 0 else 0.0)
        cost = estimate(shape, billed / 3600, preemptible, boot_gb, prices)
        out.append(PhaseCost(phase, seconds, billed / 3600, cost.total_usd))
    gpu_hours = sum(p.billed_hours for p in out)
    train_hours = sum(p.billed_hours for p in out if p.phase == "train")
    share = 0.0 if gpu_hours == 0 else 1 - train_hours / gpu_hours
    return RunCost(tuple(out), sum(p.usd for p in out), gpu_hours, share)
