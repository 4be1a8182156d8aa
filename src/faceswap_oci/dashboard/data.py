"""What the dashboard shows, read from the job state folders the CLI writes (never changed).

One :class:`JobView` per job folder (``<state_root>/<job>``): ``spec.json``, ``status.json``,
``events.jsonl`` (typed events, one JSON object a line), ``preview.png`` and ``tensorboard/``
(pulled back by the train phase), and the output folder named by the spec (the video and its
manifest after the fetch phase).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceswap_oci.dashboard.tblog import LossReader

RECENT_EVENTS = 200
_SHOWN = {
    "PhaseStarted",
    "PhaseFinished",
    "PhaseSkipped",
    "Report",
    "PreviewUpdated",
    "JobFailed",
    "JobFinished",
    "Notified",
}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_failure(event: dict[str, Any]) -> bool:
    kind = event.get("event")
    if kind == "JobFailed":
        return True
    if kind == "PhaseFinished" and event.get("status") not in ("successful", "skipped"):
        return True
    if kind == "TaskDone" and event.get("status") in ("failed", "unreachable"):
        return True
    return kind == "JobFinished" and event.get("status") not in ("successful",)


@dataclass
class EventLog:
    """The job's events.jsonl, read incrementally (it only grows)."""

    path: Path
    offset: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def refresh(self) -> list[dict[str, Any]]:
        """Read what was appended; return the new events."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.offset:
            self.offset, self.events = 0, []
        if size == self.offset:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(size - self.offset)
        end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
        new: list[dict[str, Any]] = []
        for line in chunk[:end].splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                new.append(value)
        self.offset += end
        self.events.extend(new)
        return new


class JobView:
    """One job's state folder, as the dashboard reads it."""

    def __init__(self, path: Path, cache: Path | None = None) -> None:
        self.path = path
        self.name = path.name
        self.log = EventLog(path / "events.jsonl")
        self.losses = LossReader(path / "tensorboard", cache)
        self._lock = threading.Lock()

    # files -----------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        data = _read_json(self.path / "spec.json")
        spec = data.get("spec") if isinstance(data, dict) else None
        return spec if isinstance(spec, dict) else {}

    def source(self) -> Path | None:
        data = _read_json(self.path / "spec.json")
        source = data.get("source") if isinstance(data, dict) else None
        return Path(source) if isinstance(source, str) else None

    def status(self) -> dict[str, Any]:
        data = _read_json(self.path / "status.json")
        return data if isinstance(data, dict) else {"state": "new", "phase": None}

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            self.log.refresh()
            return self.log.events

    def preview(self) -> Path | None:
        path = self.path / "preview.png"
        return path if path.is_file() else None

    def output_dir(self) -> Path | None:
        output = self.spec().get("output")
        if not isinstance(output, str):
            return None
        path = Path(output).expanduser()
        if not path.is_absolute():
            source = self.source()
            path = (source.parent if source else self.path) / path
        return path

    def video(self) -> Path | None:
        out = self.output_dir()
        path = out / f"{self.name}.mp4" if out else None
        return path if path is not None and path.is_file() else None

    def manifest(self) -> dict[str, Any] | None:
        out = self.output_dir()
        data = _read_json(out / f"{self.name}.manifest.json") if out else None
        return data if isinstance(data, dict) else None

    # derived ---------------------------------------------------------------
    def target_text(self) -> str:
        target = self.spec().get("target") or {}
        kind = str(target.get("kind", "?"))
        if kind == "ssh" and isinstance(target.get("ssh"), dict):
            ssh = target["ssh"]
            return f"ssh {ssh.get('user')}@{ssh.get('host')}"
        if kind == "oci" and isinstance(target.get("oci"), dict):
            oci = target["oci"]
            return f"oci {oci.get('region')} {','.join(oci.get('shapes') or [])}"
        return kind

    def running_cost(self, events: list[dict[str, Any]]) -> float | None:
        """List-price cost of the run in progress on OCI: its phases so far at the shape's
        price (the run's own cost report replaces it when the run ends)."""
        target = self.spec().get("target") or {}
        oci = target.get("oci") if target.get("kind") == "oci" else None
        if not isinstance(oci, dict):
            return None
        seconds = 0.0
        for event in events:
            if event.get("event") == "JobFinished":
                seconds = 0.0
            elif event.get("event") == "PhaseFinished":
                seconds += float(event.get("duration_s") or 0)
        started = next(
            (e for e in reversed(events) if e.get("event") in ("PhaseStarted", "PhaseFinished")),
            None,
        )
        if started is not None and started.get("event") == "PhaseStarted":
            seconds += max(time.time() - float(started.get("at") or 0), 0.0)
        from faceswap_oci import cost

        try:
            return round(
                cost.estimate(
                    str((oci.get("shapes") or [""])[0]),
                    seconds / 3600,
                    bool(oci.get("preemptible")),
                    int(oci.get("boot_volume_gb") or 0),
                ).total_usd,
                2,
            )
        except (cost.UnknownShapePrice, ValueError):
            return None

    def summary(self) -> dict[str, Any]:
        """One row of the job list."""
        events = self.events()
        status = self.status()
        progress: dict[str, Any] = {}
        cost: float | None = None
        for event in reversed(events):
            if not progress and event.get("event") == "Progress":
                progress = dict(event.get("data") or {})
            if cost is None and event.get("event") == "Report" and event.get("report") == "cost":
                cost = (event.get("data") or {}).get("total_usd")
            if progress and cost is not None:
                break
        target = progress.get("target") or (
            ((self.spec().get("train") or {}).get("stop") or {}).get("iterations")
        )
        iteration = progress.get("iteration")
        rate = progress.get("it_per_s")
        eta = None
        if (
            status.get("state") == "running"
            and isinstance(target, int)
            and isinstance(iteration, int)
            and isinstance(rate, int | float)
            and rate > 0
        ):
            eta = max(target - iteration, 0) / rate
        if status.get("state") == "running":
            cost = self.running_cost(events)
        updated = status.get("updated")
        if events:
            updated = max(float(updated or 0), float(events[-1].get("at") or 0))
        return {
            "name": self.name,
            "target": self.target_text(),
            "state": status.get("state"),
            "phase": status.get("phase"),
            "iteration": iteration,
            "target_iterations": target,
            "loss_a": progress.get("loss_a"),
            "loss_b": progress.get("loss_b"),
            "it_per_s": rate,
            "eta_s": eta,
            "cost_usd": cost,
            "updated": updated,
            "error": status.get("error"),
        }

    def timeline(self) -> list[dict[str, Any]]:
        """Each phase of the latest run: start, end, duration, status."""
        phases: dict[str, dict[str, Any]] = {}
        for event in self.events():
            kind, phase = event.get("event"), str(event.get("phase"))
            if kind == "PhaseStarted":
                phases[phase] = {"phase": phase, "started": event.get("at"), "status": "running"}
            elif kind == "PhaseFinished" and phase in phases:
                phases[phase].update(
                    ended=event.get("at"),
                    duration_s=event.get("duration_s"),
                    status=event.get("status"),
                )
            elif kind == "PhaseSkipped":
                phases[phase] = {"phase": phase, "status": "skipped", "reason": event.get("reason")}
        now = time.time()
        for item in phases.values():
            if item["status"] == "running" and item.get("started"):
                item["duration_s"] = round(now - float(item["started"]), 1)
        return list(phases.values())

    def recent(self, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
        shown = [e for e in self.events() if e.get("event") in _SHOWN or is_failure(e)]
        return [dict(e, failure=is_failure(e)) for e in shown[-limit:]]

    def rates(self) -> dict[str, list[Any]]:
        steps: list[Any] = []
        rates: list[Any] = []
        for event in self.events():
            data = event.get("data") or {}
            if event.get("event") == "Progress" and data.get("it_per_s") is not None:
                steps.append(data.get("iteration"))
                rates.append(data.get("it_per_s"))
        return {"steps": steps, "it_per_s": rates}

    def detail(self) -> dict[str, Any]:
        preview = self.preview()
        return {
            **self.summary(),
            "state_dir": str(self.path),
            "timeline": self.timeline(),
            "events": self.recent(),
            "rates": self.rates(),
            "preview": preview.stat().st_mtime if preview else None,
            "video": self.video() is not None,
            "manifest": self.manifest(),
        }


class StateRoot:
    """Every job under one state root; a view per job, kept between requests."""

    def __init__(self, root: Path, cache: Path | None = None) -> None:
        self.root = root
        self.cache = cache
        self._views: dict[str, JobView] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "spec.json").is_file())

    def job(self, name: str) -> JobView | None:
        if name not in self.names():
            return None
        with self._lock:
            if name not in self._views:
                self._views[name] = JobView(self.root / name, self.cache)
            return self._views[name]

    def summaries(self) -> list[dict[str, Any]]:
        views = [self.job(n) for n in self.names()]
        return [v.summary() for v in views if v is not None]
