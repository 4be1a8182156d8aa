"""Event translation, replayed from job events recorded from a real ansible-runner run.

The fixtures in fixtures/job_events/ were recorded with ansible-runner 2.4.3 and ansible-core
2.19 running fixtures/job_events/recorded-from.yml.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from faceswap_oci import events as ev

FIXTURES = Path(__file__).parent / "fixtures" / "job_events"


def recorded() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]


def translated() -> list[ev.Event]:
    out: list[ev.Event] = []
    for raw in recorded():
        out.extend(ev.from_runner("train", raw))
    return out


def test_retries_become_progress_events_in_order() -> None:
    progress = [e for e in translated() if isinstance(e, ev.Progress)]
    assert [p.data["iteration"] for p in progress] == [10, 20, 30]
    assert [p.final for p in progress] == [False, False, True]
    assert progress[0].data == {
        "phase": "train",
        "iteration": 10,
        "loss_a": 0.05,
        "loss_b": 0.06,
        "it_per_s": 1.5,
        "state": "running",
    }


def test_task_results_map_to_statuses() -> None:
    done = [(e.task, e.status) for e in translated() if isinstance(e, ev.TaskDone)]
    assert done == [
        ("Poll training", ev.TaskStatus.OK),
        ("Report faces", ev.TaskStatus.OK),
        ("Change something", ev.TaskStatus.CHANGED),
        ("Skip something", ev.TaskStatus.SKIPPED),
        ("Fail but ignored", ev.TaskStatus.IGNORED),
        ("Fail", ev.TaskStatus.FAILED),
    ]


def test_failure_carries_the_message() -> None:
    failed = [e for e in translated() if isinstance(e, ev.TaskDone) and e.task == "Fail"]
    assert "bad input" in failed[0].message


def test_role_reports_become_report_events() -> None:
    reports = [e for e in translated() if isinstance(e, ev.Report)]
    assert [(r.report, r.data) for r in reports] == [("faces", {"side": "a", "count": 64})]


def test_task_starts_are_typed() -> None:
    starts = [e.task for e in translated() if isinstance(e, ev.TaskStarted)]
    assert starts == [
        "Poll training",
        "Report faces",
        "Change something",
        "Skip something",
        "Fail but ignored",
        "Fail",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        {"event": "playbook_on_stats", "event_data": {}},
        {"event": "something_new_in_runner_9", "event_data": {"x": 1}},
        {"event": "verbose", "stdout": "hello"},
        {},
    ],
)
def test_unknown_events_never_raise(raw: dict[str, Any]) -> None:
    events = ev.from_runner("setup", raw)
    assert len(events) == 1
    assert isinstance(events[0], ev.RunnerEvent)
    assert events[0].raw is raw


def test_events_serialise_without_raw() -> None:
    for event in translated():
        data = json.loads(event.to_json())
        assert data["event"] == event.kind
        assert "raw" not in data


def test_progress_with_garbage_stdout_is_not_progress() -> None:
    raw = {"event": "runner_retry", "event_data": {"res": {"stdout": "{not json fsoci_progress"}}}
    assert isinstance(ev.from_runner("train", raw)[0], ev.RunnerEvent)
