"""The dashboard's readers: loss history from TensorBoard event files (incremental, cached on
disk, robust to a copy still arriving) and the job summary from a state folder."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from faceswap_oci.dashboard.data import JobView, StateRoot, is_failure
from faceswap_oci.dashboard.tblog import LossReader
from tests.dashboard.tbfiles import loss_at, write_session

STATIC = Path(__file__).resolve().parents[2] / "src" / "faceswap_oci" / "dashboard" / "static"
FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tb")
    write_session(folder / "session_1" / "train", 1, 40)
    write_session(folder / "session_2" / "train", 41, 25)
    return folder


def test_losses_of_every_session_in_step_order(two_sessions: Path) -> None:
    losses = LossReader(two_sessions).losses()
    assert losses.steps == tuple(range(1, 66))
    assert losses.loss_a[0] == pytest.approx(loss_at(1, "A"), rel=1e-6)
    assert losses.loss_b[-1] == pytest.approx(loss_at(65, "B"), rel=1e-6)


def test_the_page_format_holds_the_same_values(two_sessions: Path) -> None:
    losses = LossReader(two_sessions).losses()
    data = losses.as_bytes()
    count = int(np.frombuffer(data[:4], dtype="<u4")[0])
    columns = (
        np.frombuffer(data[4:], dtype="<u4", count=count),
        np.frombuffer(data[4 + 4 * count :], dtype="<f4").reshape(2, count),
    )
    assert count == 65
    assert columns[0].tolist() == list(losses.steps)
    assert columns[1][0].tolist() == pytest.approx(list(losses.loss_a), rel=1e-6)
    assert columns[1][1].tolist() == pytest.approx(list(losses.loss_b), rel=1e-6)


def test_only_appended_records_are_read_and_a_cut_record_waits(
    two_sessions: Path, tmp_path: Path
) -> None:
    source = next((two_sessions / "session_1" / "train").glob("events.out.tfevents.*"))
    data = source.read_bytes()
    target = tmp_path / "tb" / "session_1" / "train" / source.name
    target.parent.mkdir(parents=True)
    target.write_bytes(data[: len(data) // 2 + 7])  # a copy still arriving, cut mid-record
    reader = LossReader(tmp_path / "tb")
    half = reader.losses().steps
    assert 0 < len(half) < 40
    assert half == tuple(range(1, len(half) + 1))
    target.write_bytes(data)
    assert reader.losses().steps == tuple(range(1, 41))


def test_a_restarted_reader_uses_the_disk_cache_and_notices_a_replaced_file(
    two_sessions: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "tb"
    shutil.copytree(two_sessions, logs)
    cache = tmp_path / "cache"
    first = LossReader(logs, cache).losses()
    assert len(list(cache.iterdir())) == 2
    assert LossReader(logs, cache).losses() == first
    # another run's file under the same name: the cache no longer matches its first bytes
    for old in (logs / "session_2" / "train").iterdir():
        old.unlink()
    write_session(logs / "session_2" / "train", 41, 5, start=123.0)
    assert LossReader(logs, cache).losses().steps == tuple(range(1, 46))


def test_a_session_repeating_steps_wins_them(tmp_path: Path) -> None:
    write_session(tmp_path / "session_1" / "train", 1, 30)
    write_session(
        tmp_path / "session_2" / "train", 21, 5
    )  # a model restored from the iteration-20 backup
    assert LossReader(tmp_path).losses().steps == tuple(range(1, 26))


def _state(tmp_path: Path, events: list[dict[str, object]]) -> JobView:
    job = tmp_path / "state" / "demo"
    job.mkdir(parents=True)
    spec = {"name": "demo", "target": {"kind": "local"}, "output": "out"}
    (job / "spec.json").write_text(json.dumps({"source": str(tmp_path / "job.yml"), "spec": spec}))
    (job / "status.json").write_text(
        json.dumps({"state": "running", "phase": "train", "updated": 5})
    )
    (job / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + '{"half')
    view = StateRoot(tmp_path / "state").job("demo")
    assert view is not None
    return view


def test_summary_and_timeline_from_the_events(tmp_path: Path) -> None:
    view = _state(
        tmp_path,
        [
            {"event": "PhaseSkipped", "phase": "setup", "reason": "done", "at": 1.0},
            {"event": "PhaseStarted", "phase": "extract", "at": 2.0},
            {
                "event": "PhaseFinished",
                "phase": "extract",
                "status": "successful",
                "at": 9.0,
                "duration_s": 7.0,
            },
            {"event": "PhaseStarted", "phase": "train", "at": 10.0},
            {
                "event": "Progress",
                "phase": "train",
                "at": 20.0,
                "data": {
                    "iteration": 40,
                    "target": 100,
                    "loss_a": 0.1,
                    "loss_b": 0.2,
                    "it_per_s": 2.0,
                },
            },
        ],
    )
    summary = view.summary()
    assert summary == {
        "name": "demo", "target": "local", "state": "running", "phase": "train",
        "iteration": 40, "target_iterations": 100, "loss_a": 0.1, "loss_b": 0.2,
        "it_per_s": 2.0, "eta_s": 30.0, "cost_usd": None, "updated": 20.0, "error": None,
    }  # fmt: skip
    timeline = view.timeline()
    assert [(t["phase"], t["status"]) for t in timeline] == [
        ("setup", "skipped"), ("extract", "successful"), ("train", "running"),
    ]  # fmt: skip
    assert timeline[1]["duration_s"] == 7.0
    assert view.output_dir() == tmp_path / "out"
    assert view.rates() == {"steps": [40], "it_per_s": [2.0]}


@pytest.mark.parametrize(
    ("event", "failure"),
    [
        ({"event": "PhaseFinished", "status": "failed"}, True),
        ({"event": "PhaseFinished", "status": "successful"}, False),
        ({"event": "TaskDone", "status": "unreachable"}, True),
        ({"event": "TaskDone", "status": "ok"}, False),
        ({"event": "JobFailed"}, True),
        ({"event": "JobFinished", "status": "canceled"}, True),
        ({"event": "JobFinished", "status": "successful"}, False),
    ],
)
def test_failures_are_flagged(event: dict[str, object], failure: bool) -> None:
    assert is_failure(event) is failure


def test_the_vendored_chart_library_is_the_pinned_one() -> None:
    """`npm run build` in frontend/ was run after the last change of the pinned uPlot."""
    version = json.loads((FRONTEND / "package.json").read_text())["dependencies"]["uplot"]
    assert json.loads((STATIC / "vendor.json").read_text()) == {"uplot": version}
    assert (
        (STATIC / "uPlot.iife.min.js")
        .read_bytes()
        .startswith(b"/*! https://github.com/leeoniya/uPlot")
    )


def test_cost_so_far_of_a_running_oci_job(tmp_path: Path) -> None:
    from faceswap_oci import cost

    job = tmp_path / "state" / "gpu"
    job.mkdir(parents=True)
    oci = {"shapes": ["VM.GPU.A10.1"], "preemptible": True, "boot_volume_gb": 200}
    spec = {"name": "gpu", "target": {"kind": "oci", "oci": oci}, "output": "out"}
    (job / "spec.json").write_text(json.dumps({"source": str(tmp_path / "j.yml"), "spec": spec}))
    (job / "status.json").write_text(json.dumps({"state": "running", "phase": "setup"}))
    now = time.time()
    events = [
        {"event": "JobFinished", "phase": "-", "status": "failed", "at": now - 9000},
        {"event": "PhaseFinished", "phase": "provision", "duration_s": 1800.0, "at": now - 1800},
        {"event": "PhaseStarted", "phase": "setup", "at": now - 1800},
    ]
    (job / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    view = StateRoot(tmp_path / "state").job("gpu")
    assert view is not None
    expected = cost.estimate("VM.GPU.A10.1", 1.0, True, 200).total_usd
    assert view.summary()["cost_usd"] == pytest.approx(expected, abs=0.02)
