"""The Faceswap pipeline end to end with the real Faceswap on the CPU (tiny synthetic inputs).

upload -> extract -> train (a supervised unit, a few iterations) -> convert -> fetch on the
local target; then a second run of every phase changes nothing; then training is re-attached
after the controller is killed, stopped by SIGINT on a criterion and resumed from the model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.conftest import FRAMES
from tests.pipeline.jobs import PHASES, Job, PhaseRun, ffprobe, new_job, sha256

pytestmark = [pytest.mark.faceswap, pytest.mark.slow]


def video(data: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in data["streams"] if s["codec_type"] == "video")


def test_output_matches_a(finished_job: tuple[Job, dict[str, PhaseRun]], demo_inputs: Path) -> None:
    job, _ = finished_job
    out = ffprobe(job.output / f"{job.name}.mp4")
    source = ffprobe(demo_inputs / "a.mp4")
    assert abs(int(video(out)["nb_read_frames"]) - int(video(source)["nb_read_frames"])) <= 1
    assert int(video(source)["nb_read_frames"]) == FRAMES
    assert float(out["format"]["duration"]) == pytest.approx(
        float(source["format"]["duration"]), abs=1 / 25 + 1e-6
    )
    assert "audio" in [s["codec_type"] for s in out["streams"]]


def test_output_is_tagged_as_synthetic(finished_job: tuple[Job, dict[str, PhaseRun]]) -> None:
    job, _ = finished_job
    tags = ffprobe(job.output / f"{job.name}.mp4")["format"]["tags"]
    assert "faceswap-oci" in tags["comment"]
    assert "trainedAlgorithmicMedia" in tags["comment"]
    assert tags["description"].endswith("/digitalsourcetype/trainedAlgorithmicMedia")


def test_manifest_matches_the_files(
    finished_job: tuple[Job, dict[str, PhaseRun]], demo_inputs: Path
) -> None:
    job, _ = finished_job
    manifest = json.loads((job.output / f"{job.name}.manifest.json").read_text())
    assert manifest["job"] == job.name
    assert manifest["consent"] == job.spec["consent"]
    assert manifest["output"]["sha256"] == sha256(job.output / f"{job.name}.mp4")
    assert manifest["inputs"]["a"]["sha256"] == sha256(demo_inputs / "a.mp4")
    assert manifest["inputs"]["b"]["sha256"] == sha256(demo_inputs / "b.mp4")
    assert manifest["model"]["iterations"] == 6
    assert len(manifest["faceswap_commit"]) == 40
    assert "trainedAlgorithmicMedia" in manifest["digital_source_type"]


def test_preview_came_back(finished_job: tuple[Job, dict[str, PhaseRun]]) -> None:
    job, _ = finished_job
    for path in (job.output / "preview.png", job.state_dir / "preview.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def test_training_ran_as_a_supervised_service(
    finished_job: tuple[Job, dict[str, PhaseRun]],
) -> None:
    job, runs = finished_job
    assert job.train_state()["iterations"] == 6
    exit_info = json.loads((job.job_dir / "logs" / "train.exit.json").read_text())
    assert exit_info["rc"] == 0
    assert job.supervisor_pid() is None
    started = runs["train"].events("train_started")
    assert started and started[0]["supervisor"] in ("system", "user", "detached")
    trained = runs["train"].events("trained")
    assert trained and trained[-1]["stop_reason"] == "iterations"
    out = (job.job_dir / "logs" / "train.out").read_text()
    assert " -p " not in job.train_starts()[0] and " -n " not in job.train_starts()[0]
    assert " -w" in job.train_starts()[0]
    assert "Loss A:" in out


def test_progress_lines_are_json(finished_job: tuple[Job, dict[str, PhaseRun]]) -> None:
    job, _ = finished_job
    poll = subprocess.run(
        [
            "python3",
            str(job.job_dir / "config" / "fsoci_train.py"),
            "poll",
            str(job.job_dir / "config" / "train.json"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    progress = json.loads(poll.stdout)["fsoci_progress"]
    assert progress["phase"] == "train"
    assert progress["state"] == "finished"
    assert progress["iteration"] == 6
    assert isinstance(progress["loss_a"], float) and isinstance(progress["loss_b"], float)


def test_face_counts_reported(finished_job: tuple[Job, dict[str, PhaseRun]]) -> None:
    _, runs = finished_job
    faces = {e["side"]: e["count"] for e in runs["extract"].events("faces")}
    assert faces == {"a": FRAMES, "b": FRAMES}
    (upload,) = runs["upload"].events("upload")
    assert set(upload["sides"]) == {"a", "b"}
    assert all(side["bytes_sent"] > 0 for side in upload["sides"].values())
    assert upload["verified"] is True


def test_second_run_changes_nothing(finished_job: tuple[Job, dict[str, PhaseRun]]) -> None:
    job, _ = finished_job
    before = {p: p.stat().st_mtime_ns for p in job.output.iterdir()}
    for phase in PHASES:
        run = job.run(phase)
        assert run.rc == 0, run.output[-3000:]
        assert run.changed == 0, f"{phase} changed something on a re-run:\n{run.output[-3000:]}"
    assert {p: p.stat().st_mtime_ns for p in job.output.iterdir()} == before
    assert job.train_state()["iterations"] == 6


def test_too_few_faces_fails_clearly(
    pipeline_root: Path, tmp_path: Path, demo_inputs: Path
) -> None:
    job = new_job(pipeline_root, tmp_path / "few", demo_inputs, "few", 2)
    job.spec["extract"]["min_faces"] = FRAMES + 1
    try:
        assert job.run("upload").rc == 0
        run = job.run("extract")
        assert run.rc != 0
        assert f"has {FRAMES} faces" in run.output and f"fewer than {FRAMES + 1}" in run.output
    finally:
        job.cleanup()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def job_with_faces(source: Job, pipeline_root: Path, tmp_path: Path, suffix: str) -> Job:
    """A new job that reuses a finished extraction's faces (the test is about training)."""
    job = new_job(
        pipeline_root, tmp_path / suffix, Path(source.spec["inputs"]["a"]).parent, suffix, 0
    )
    job.job_dir.mkdir(parents=True)
    for side in ("faces_a", "faces_b"):
        shutil.copytree(source.job_dir / side, job.job_dir / side)
    return job


def faceswap_environ(supervisor: int) -> dict[str, str]:
    """The environment of the `faceswap.py train` process the supervisor runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        ppid = int(next(x for x in status.splitlines() if x.startswith("PPid:")).split()[1])
        if ppid == supervisor and any(arg.endswith(b"faceswap.py") for arg in cmdline):
            pairs = (item.partition(b"=") for item in environ.split(b"\0") if item)
            return {k.decode(): v.decode(errors="replace") for k, _, v in pairs}
    raise AssertionError(f"no faceswap.py child of the supervisor {supervisor}")


def since_last_start(job: Job) -> str:
    """train.out after the supervisor's last ``[fsoci]`` start line."""
    out = (job.job_dir / "logs" / "train.out").read_text(errors="replace")
    return out[out.rfind("[fsoci]") :]


def test_reattach_then_stop_on_request_and_resume(
    extracted_job: tuple[Job, dict[str, PhaseRun]], pipeline_root: Path, tmp_path: Path
) -> None:
    """The controller dies mid-training and the training goes on; a re-attach starts no second
    supervisor and follows it to its hours stop (Faceswap saves on SIGINT). The next train phase
    resumes from that model, and `faceswap-oci down` on ssh/local (playbooks/stop.yml) stops it
    with one SIGINT: the model is saved with the first session's iterations under it and the
    supervisor is gone. One test, two training sessions: each start costs a model build."""
    job = job_with_faces(extracted_job[0], pipeline_root, tmp_path, "attach")
    job.spec["train"]["stop"] = {"iterations": None, "hours": 0.015, "plateau_saves": None}
    try:
        idle = job.run("stop")
        assert idle.rc == 0 and idle.changed == 0, idle.output[-3000:]

        controller = job.start("train")
        wait_for(lambda: job.supervisor_pid() is not None, 120, "the training supervisor")
        pid = job.supervisor_pid()
        assert pid is not None
        time.sleep(5)
        Job.kill(controller)  # the controller dies mid-training ...
        time.sleep(2)
        assert job.supervisor_pid() == pid  # ... and the training goes on
        # on the cpu backend Faceswap's OpenMP threads wait passively (faceswap_cli.faceswap_env)
        assert faceswap_environ(pid).get("OMP_WAIT_POLICY") == "PASSIVE"

        run = job.run("train")  # re-attach: no second supervisor, polls until the hours stop
        assert run.rc == 0, run.output[-4000:]
        assert len(job.train_starts()) == 1
        assert not run.events("train_started")
        trained = run.events("trained")
        assert trained and trained[-1]["stop_reason"] == "hours"
        stop = json.loads((job.job_dir / "logs" / "train.stop.json").read_text())
        assert stop["reason"] == "hours"
        exit_info = json.loads((job.job_dir / "logs" / "train.exit.json").read_text())
        assert exit_info["rc"] == 0  # SIGINT: Faceswap saved and exited cleanly
        done = job.train_state()["iterations"]
        assert done >= 1

        # Resume from the saved model, then stop it on request.
        rest = {"iterations": done + 1000, "hours": None, "plateau_saves": None}
        job.spec["train"]["stop"] = rest
        controller = job.start("train")
        wait_for(lambda: len(job.train_starts()) == 2, 120, "the second training session")
        wait_for(lambda: "Loss A" in since_last_start(job), 300, "the resumed session's loss")
        Job.kill(controller)
        stopped = job.run("stop")
        assert stopped.rc == 0, stopped.output[-4000:]
        assert stopped.changed == 1
        (report,) = stopped.events("train_stopped")
        assert report["was_running"] is True
        assert job.supervisor_pid() is None
        exit_info = json.loads((job.job_dir / "logs" / "train.exit.json").read_text())
        assert exit_info["rc"] == 0  # Faceswap saved and exited cleanly
        saved = job.train_state()["iterations"]
        assert saved > done and report["iterations"] == saved
        assert job.train_starts()[-1].endswith("-i 1000 -w")  # the rest of the target
        assert len(job.train_state()["sessions"]) == 2  # on top of the first session's model
    finally:
        job.cleanup()
