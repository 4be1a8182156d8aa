"""The Python API on the `local` target: real ansible-runner, real host_prepare role."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import faceswap_oci
from faceswap_oci import events as ev
from tests.media import write_video


def test_setup_on_local_emits_typed_events_in_order(
    installed_xdg: Path, job_file: Callable[..., Path]
) -> None:
    job = faceswap_oci.load_job(job_file("loc"))
    seen: list[ev.Event] = []
    result = faceswap_oci.run(job, on_event=seen.append, only="setup")
    assert result.ok, result.error
    assert result.phases_run == ("setup",)

    kinds = [e.kind for e in seen]
    assert kinds[0] == "PhaseStarted"
    assert kinds[-2:] == ["PhaseFinished", "JobFinished"]
    starts = [e for e in seen if isinstance(e, ev.TaskStarted)]
    done = [e for e in seen if isinstance(e, ev.TaskDone)]
    assert {e.phase for e in starts + done} == {"setup"}
    assert "Create the job directories" in [e.task for e in starts]
    finished = next(e for e in seen if isinstance(e, ev.PhaseFinished))
    assert finished.status is ev.PhaseStatus.SUCCESSFUL
    assert finished.changed == sum(1 for e in done if e.status is ev.TaskStatus.CHANGED) > 0

    job_dir = installed_xdg / "faceswap-oci" / "jobs" / "loc"
    for sub in ("inputs", "faces_a", "faces_b", "model", "output", "logs"):
        assert (job_dir / sub).is_dir()
    stamp = result.state_dir / "stamps" / "setup.json"
    assert stamp.is_file()
    assert (result.state_dir.stat().st_mode & 0o777) == 0o700

    again: list[ev.Event] = []
    second = faceswap_oci.run(job, on_event=again.append, only="setup")
    assert second.ok
    assert second.changed == 0
    assert [e.kind for e in again if isinstance(e, ev.TaskDone)]


def test_plan_resumes_after_the_last_finished_phase(
    installed_xdg: Path, job_file: Callable[..., Path]
) -> None:
    job = faceswap_oci.load_job(job_file("plan"))
    before = faceswap_oci.plan(job)
    assert [p.name for p in before.phases if p.will_run and p.name != "teardown"] == [
        "setup",
        "upload",
        "extract",
        "train",
        "convert",
        "fetch",
    ]
    assert faceswap_oci.run(job, only="setup").ok
    after = faceswap_oci.plan(job)
    todo = [p.name for p in after.phases if p.will_run]
    assert todo[0] == "upload"
    assert "setup" not in todo


def test_changed_input_invalidates_upload_and_later(
    xdg: Path, job_file: Callable[..., Path]
) -> None:
    path = job_file("inval")
    job = faceswap_oci.load_job(path)
    runner = faceswap_oci.runner.Runner(job)
    for phase in ("setup", "upload", "extract"):
        runner.state.write_stamp(phase, runner.fingerprint(phase))
    assert runner.plan_phases()[0] == "train"
    write_video(path.parent / "a.mp4", "green")
    fresh = faceswap_oci.runner.Runner(faceswap_oci.load_job(path))
    assert fresh.plan_phases()[0] == "upload"


def test_failed_phase_reports_task_and_log(xdg: Path, job_file: Callable[..., Path]) -> None:
    job = faceswap_oci.load_job(job_file("bad"))
    runner = faceswap_oci.runner.Runner(job)
    failures: list[ev.Event] = []
    # a job directory under a file cannot be created: host_prepare fails on that task
    blocker = xdg / "data" / "faceswap-oci"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")
    runner.on_event = failures.append
    result = runner.run(only="setup")
    assert result.status == "failed"
    assert result.error is not None
    assert "phase 'setup' failed: Create the host root on target" in result.error
    assert "full log:" in result.error
    assert any(isinstance(e, ev.JobFailed) for e in failures)
    assert runner.state.stamp("setup") is None
    assert runner.state.status()["state"] == "failed"


def test_down_on_local_runs_the_stop_playbook(xdg: Path, job_file: Callable[..., Path]) -> None:
    """`down` on a non-cloud target stops the job's training (none here: nothing changes);
    tests/pipeline stops a real one."""
    job = faceswap_oci.load_job(job_file("down"))
    seen: list[ev.Event] = []
    result = faceswap_oci.down(job, on_event=seen.append)
    assert result.ok, result.error
    assert result.phases_run == ("stop",) and result.changed == 0
    started = [e for e in seen if isinstance(e, ev.PhaseStarted)]
    assert [e.playbook.rsplit("/", 1)[-1] for e in started] == ["stop.yml"]
    (report,) = [e for e in seen if isinstance(e, ev.Report) and e.report == "train_stopped"]
    assert report.data["was_running"] is False
    assert faceswap_oci.runner.Runner(job).state.status()["state"] == "stopped"
