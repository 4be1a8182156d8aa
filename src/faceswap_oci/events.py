"""Typed events: what a run reports, built from ansible-runner's event dicts.

The set is closed: every ansible-runner event maps to one of these classes; an event type we
do not know becomes :class:`RunnerEvent` (never an exception). ``raw`` keeps the original dict
for callers that need more. The wrapper never parses Ansible's stdout text.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from faceswap_oci.role_events import RoleEvent
from faceswap_oci.role_events import parse as parse_role_event


class TaskStatus(StrEnum):
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNREACHABLE = "unreachable"
    IGNORED = "ignored"


class PhaseStatus(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Event:
    phase: str
    at: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k != "raw"}
        data["event"] = self.kind
        return json.dumps(data, default=str, sort_keys=True)


@dataclass(frozen=True)
class PhaseStarted(Event):
    """A phase's playbook (its path) starts."""

    playbook: str


@dataclass(frozen=True)
class PhaseSkipped(Event):
    """A phase does not run, and why (finished earlier with the same inputs)."""

    reason: str


@dataclass(frozen=True)
class PhaseFinished(Event):
    status: PhaseStatus
    changed: int
    failed: int
    duration_s: float


@dataclass(frozen=True)
class TaskStarted(Event):
    task: str
    action: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class TaskDone(Event):
    task: str
    host: str
    status: TaskStatus
    message: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Progress(Event):
    """One poll of a long-running step (e.g. training iteration, losses, it/s)."""

    data: dict[str, Any]
    final: bool = False


@dataclass(frozen=True)
class Report(Event):
    """A fact a role wants the user to see (face counts, GPU found, OCI attempts, ...)."""

    report: str
    data: dict[str, Any]

    @property
    def typed(self) -> RoleEvent | None:
        """The report as its registered dataclass (faceswap_oci.role_events); None for a
        kind that is not a role's."""
        return parse_role_event(self.report, self.data)


@dataclass(frozen=True)
class PreviewUpdated(Event):
    """A new training preview reached the controller (``path``); ``iteration`` is where the
    training stood when it came back (Faceswap writes the preview at each model save)."""

    path: str
    iteration: int | None = None


@dataclass(frozen=True)
class Preempted(Event):
    """The job's preemptible instance was reclaimed (gone from the live instances without a
    teardown of ours); the runner provisions again (recovery ``recovery`` of
    ``max_recoveries``) and the new host resumes from the job bucket's latest snapshot."""

    instance_id: str
    recovery: int
    max_recoveries: int
    snapshot_iterations: int | None = None
    usd: float | None = None  # the preempted instance's list-price cost, billed by this run


@dataclass(frozen=True)
class JobFailed(Event):
    """The run ended with an error; ``phase`` is the last one that ran."""

    message: str


@dataclass(frozen=True)
class JobFinished(Event):
    """The run's last event: the runner's status and how many tasks changed something."""

    status: str
    changed: int


@dataclass(frozen=True)
class RunnerEvent(Event):
    """Any other ansible-runner event, kept as is."""

    name: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _json_line(text: Any, key: str) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and key in line:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            inner = value.get(key) if isinstance(value, dict) else None
            if isinstance(inner, dict):
                return inner
    return None


def _progress_of(res: dict[str, Any]) -> dict[str, Any] | None:
    found = _json_line(res.get("stdout"), "fsoci_progress")
    if found is not None:
        return found
    inner = res.get("fsoci_progress")
    return inner if isinstance(inner, dict) else None


def _report_of(res: dict[str, Any]) -> dict[str, Any] | None:
    msg = res.get("msg")
    if isinstance(msg, dict) and isinstance(msg.get("fsoci_event"), dict):
        return dict(msg["fsoci_event"])
    return None


def _preview_of(phase: str, report: dict[str, Any]) -> PreviewUpdated:
    try:
        iteration: int | None = int(report.get("iteration"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        iteration = None
    return PreviewUpdated(phase, path=str(report.get("path", "")), iteration=iteration)


def _message_of(res: dict[str, Any]) -> str:
    parts = []
    for key in ("msg", "stderr", "module_stderr"):
        value = res.get(key)
        if value and isinstance(value, str):
            parts.append(value.strip())
    if not parts and res.get("rc") not in (None, 0):
        parts.append(f"exit code {res.get('rc')}")
    return "\n".join(parts)[:4000]


def from_runner(phase: str, raw: dict[str, Any]) -> list[Event]:
    """Translate one ansible-runner event dict into typed events (possibly none)."""
    name = str(raw.get("event", ""))
    data: dict[str, Any] = raw.get("event_data") or {}
    res_value = data.get("res")
    res: dict[str, Any] = res_value if isinstance(res_value, dict) else {}
    task = str(data.get("task", ""))
    host = str(data.get("host", ""))
    if name == "playbook_on_task_start":
        return [TaskStarted(phase, task=task, action=str(data.get("task_action", "")), raw=raw)]
    if name == "runner_retry":
        progress = _progress_of(res)
        if progress is not None:
            return [Progress(phase, data=progress)]
        return [RunnerEvent(phase, name=name, raw=raw)]
    if name in {"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"}:
        if name == "runner_on_ok":
            status = TaskStatus.CHANGED if res.get("changed") else TaskStatus.OK
        elif name == "runner_on_failed":
            status = TaskStatus.IGNORED if data.get("ignore_errors") else TaskStatus.FAILED
        elif name == "runner_on_skipped":
            status = TaskStatus.SKIPPED
        else:
            status = TaskStatus.UNREACHABLE
        message = _message_of(res) if status in {TaskStatus.FAILED, TaskStatus.UNREACHABLE} else ""
        events: list[Event] = [
            TaskDone(phase, task=task, host=host, status=status, message=message, raw=raw)
        ]
        if name == "runner_on_ok":
            progress = _progress_of(res)
            if progress is not None:
                events.append(Progress(phase, data=progress, final=True))
            report = _report_of(res)
            if report is not None and report.get("kind") == "preview_updated":
                events.append(_preview_of(phase, report))
            elif report is not None:
                events.append(Report(phase, report=str(report.pop("kind", "")), data=report))
        return events
    return [RunnerEvent(phase, name=name, raw=raw)]
