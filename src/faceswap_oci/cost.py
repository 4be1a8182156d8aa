"""Cost of an OCI GPU job from the list-price table in ``data/prices.yml``.

``estimate`` and ``phase_costs`` price a plan (every rung of the ladder); ``bill_instance``
prices what was really paid for: an instance's lifetime, created -> terminated (one-minute
minimum), at the price of the shape and capacity type it was launched with, plus its boot
volume. ``Ledger`` keeps every instance and every run of a job in its state (``costs.json``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
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
    source: str = ""
    as_of: str = ""
    verified: bool = True


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
        name: ShapePrice(
            name,
            int(v["gpus"]),
            str(v["gpu"]),
            float(v["usd_per_gpu_hour"]),
            str(v.get("source") or data["source"]),
            str(v.get("as_of") or data["as_of"]),
            bool(v.get("verified", True)),
        )
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


# --- billed cost: what the instances really cost ------------------------------------------------


@dataclass(frozen=True)
class InstanceBill:
    """One instance's billed cost: lifetime x the launched shape's price (by capacity type)."""

    instance_id: str
    shape: str
    preemptible: bool
    boot_volume_gb: int
    time_created: str
    time_terminated: str | None
    billed_seconds: float
    usd_per_hour: float
    compute_usd: float
    boot_volume_usd: float
    total_usd: float

    @property
    def running(self) -> bool:
        return self.time_terminated is None


def _when(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def bill_instance(
    record: Mapping[str, Any], now: dt.datetime | None = None, table: PriceTable | None = None
) -> InstanceBill:
    """``record`` (instance_id, shape, preemptible, boot_volume_gb, time_created and, once gone,
    time_terminated) priced at the list price; a live instance is billed until ``now``."""
    prices = table or load_prices()
    created = _when(str(record["time_created"]))
    ended = record.get("time_terminated")
    end = _when(str(ended)) if ended else (now or dt.datetime.now(dt.UTC))
    seconds = max(prices.minimum_billed_seconds, (end - created).total_seconds())
    preemptible = bool(record.get("preemptible"))
    boot_gb = int(record.get("boot_volume_gb") or 0)
    cost = estimate(str(record["shape"]), seconds / 3600, preemptible, boot_gb, prices)
    return InstanceBill(
        instance_id=str(record["instance_id"]),
        shape=cost.shape,
        preemptible=preemptible,
        boot_volume_gb=boot_gb,
        time_created=created.isoformat(),
        time_terminated=str(ended) if ended else None,
        billed_seconds=seconds,
        usd_per_hour=cost.usd_per_hour,
        compute_usd=cost.compute_usd,
        boot_volume_usd=cost.boot_volume_usd,
        total_usd=cost.total_usd,
    )


@dataclass
class Ledger:
    """A job's cost history (``<state>/costs.json``): every instance it launched, and per run
    the instances that run terminated (each instance is billed once, by the run that ended it)."""

    path: Path
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, state_dir: Path) -> Ledger:
        path = state_dir / "costs.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{path}: not a cost history ({exc}); move it away to start anew"
            ) from exc
        return cls(path, dict(data.get("instances", {})), list(data.get("runs", [])))

    def save(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"instances": self.instances, "runs": self.runs}, indent=2))
        os.replace(tmp, self.path)

    def seen(self, item: Mapping[str, Any]) -> None:
        """An instance the provision launched or found, or the teardown removed."""
        ocid = str(item.get("instance_id") or item.get("id") or "")
        if not ocid or not item.get("time_created") or not item.get("shape"):
            return
        rec = self.instances.setdefault(ocid, {"instance_id": ocid})
        for key in ("shape", "preemptible", "boot_volume_gb", "time_created", "time_terminated"):
            if item.get(key) is not None:
                rec[key] = item[key]

    def record_run(
        self,
        started: str,
        status: str,
        phases: list[str],
        terminated: list[str],
        table: PriceTable | None = None,
    ) -> dict[str, Any]:
        """Add this run: the instances it terminated are billed here; those still running are
        listed with their cost so far (billed by the run that ends them)."""
        bills = [bill_instance(self.instances[i], table=table) for i in terminated]
        running = [
            bill_instance(r, table=table)
            for r in self.instances.values()
            if not r.get("time_terminated")
        ]
        run = {
            "started": started,
            "status": status,
            "phases": phases,
            "instances": [asdict(b) for b in bills],
            "running": [asdict(b) for b in running],
            "compute_usd": round(sum(b.compute_usd for b in bills), 4),
            "boot_volume_usd": round(sum(b.boot_volume_usd for b in bills), 4),
            "total_usd": round(sum(b.total_usd for b in bills), 4),
        }
        self.runs.append(run)
        return run

    def total(self, table: PriceTable | None = None) -> dict[str, float]:
        """Billed so far over the whole job (live instances counted until now)."""
        bills = [bill_instance(r, table=table) for r in self.instances.values()]
        return {
            "billed_usd": round(sum(b.total_usd for b in bills if not b.running), 4),
            "running_usd": round(sum(b.total_usd for b in bills if b.running), 4),
        }


# "Resource Billing for Stopped Instances" (Oracle's Compute docs, "Stopping and Starting an
# Instance", docs.oracle.com/iaas/Content/Compute/Tasks/restartinginstance.htm): a stopped
# instance of a standard VM shape is not billed for its shape; stopped instances of dense I/O,
# GPU and HPC shapes and of bare metal shapes keep being billed for the shape, the VM.GPU.A10
# shapes excepted (they pause billing like standard shapes). Boot volumes are billed either way.
_STOPPED_NOT_BILLED_GPU_PREFIXES = ("VM.GPU.A10.",)


def billed_when_stopped(shape: str) -> bool:
    """Whether a stopped (powered-off) instance of ``shape`` is still billed for the shape."""
    if shape.startswith(_STOPPED_NOT_BILLED_GPU_PREFIXES):
        return False
    return shape.startswith("BM.") or ".GPU" in shape or ".DenseIO" in shape or ".HPC" in shape
