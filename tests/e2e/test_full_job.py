"""End to end through the wrapper: one `faceswap_oci.run` of a whole job on a booted test host.

The real thing at every step: the `ssh` target on a booted Debian host, the setup phase
(on the session's installed-host image, ``installed_host``: the same `setup` made that image on a
plain host, see tests/hostimage.py and tests/test_hostimage.py, so here it is the re-run that
finds Faceswap installed), the real Faceswap extracting, training (as a service) and converting
on the CPU with the synthetic demo clips, and the results fetched back with checksums. The job
is the session's `e2e_job` (tests/e2e/job.py), shared with the dashboard tests. Its state folder
and input file names hold spaces, quotes, `$(...)`, backticks and newlines, and a canary checks
that nothing of them ran as a command, on the controller or the host (issue #13). The Faceswap
source cache must hold the pinned commit (`faceswap-oci source add <path>`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import faceswap_oci
from faceswap_oci import events as ev
from faceswap_oci.demo import make_demo_inputs
from faceswap_oci.spec import CONSENT_TEXT
from tests.e2e.job import CANARY, ITERATIONS, NASTY, STATE, E2eJob, rename_clip
from tests.pipeline.jobs import ffprobe, sha256

# One module-wide job: the session's e2e_job (minutes on a loaded 2-core machine).
pytestmark = [
    pytest.mark.testbed,
    pytest.mark.faceswap,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]


@pytest.fixture(scope="module")
def finished(
    e2e_job: E2eJob,
) -> tuple[faceswap_oci.Job, faceswap_oci.JobResult, list[ev.Event], Path]:
    return e2e_job.job, e2e_job.result, e2e_job.seen, e2e_job.folder


def test_no_name_ran_as_a_command(finished: Any, e2e_job: E2eJob) -> None:
    job, result, _, folder = finished
    assert "\n" in str(result.state_dir) and "\n" in str(job.input_a)
    assert (result.state_dir / "known_hosts").is_file()  # ssh used the quoted path
    places = [folder, Path.cwd(), Path.home(), Path("/tmp")]
    assert [p for p in places for _ in p.glob(CANARY)] == []
    assert [p for p in folder.rglob(CANARY)] == []
    found = e2e_job.host.ssh(f"find / -xdev -name {CANARY} -print")
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == ""


def test_every_phase_ran_in_order(finished: Any) -> None:
    _, result, seen, _ = finished
    assert result.phases_run == ("setup", "upload", "extract", "train", "convert", "fetch")
    started = [e.phase for e in seen if isinstance(e, ev.PhaseStarted)]
    assert started == list(result.phases_run)


def test_output_video_matches_a_and_keeps_its_audio(finished: Any) -> None:
    job, _, _, _ = finished
    video = job.output_dir / "e2e-cpu.mp4"
    out, src = ffprobe(video), ffprobe(job.input_a)
    v_out = next(s for s in out["streams"] if s["codec_type"] == "video")
    v_src = next(s for s in src["streams"] if s["codec_type"] == "video")
    assert abs(int(v_out["nb_read_frames"]) - int(v_src["nb_read_frames"])) <= 1
    num, den = v_src["r_frame_rate"].split("/")
    frame = int(den) / int(num)
    assert abs(float(out["format"]["duration"]) - float(src["format"]["duration"])) <= 2 * frame
    assert any(s["codec_type"] == "audio" for s in out["streams"])


def test_output_is_tagged_as_synthetic_media(finished: Any) -> None:
    job, _, _, _ = finished
    tags = {
        k.lower(): v for k, v in ffprobe(job.output_dir / "e2e-cpu.mp4")["format"]["tags"].items()
    }
    text = " ".join(tags.values())
    assert "trainedAlgorithmicMedia" in text
    assert "faceswap-oci" in text


def test_manifest_checksums_match(finished: Any) -> None:
    job, _, _, _ = finished
    manifest = json.loads((job.output_dir / "e2e-cpu.manifest.json").read_text())
    text = json.dumps(manifest)
    assert sha256(job.output_dir / "e2e-cpu.mp4") in text
    assert sha256(job.input_a) in text
    assert CONSENT_TEXT in text


def test_training_reported_progress_and_faces(finished: Any) -> None:
    _, _, seen, _ = finished
    progress = [e for e in seen if isinstance(e, ev.Progress) and e.phase == "train"]
    assert progress, "no training progress events"
    iterations = [p.data.get("iteration") for p in progress if p.data.get("iteration")]
    assert iterations and max(iterations) >= ITERATIONS
    faces = [e for e in seen if isinstance(e, ev.Report) and e.report == "faces"]
    assert {f.data.get("side") for f in faces} == {"a", "b"}


def test_second_run_changes_nothing_and_moves_nothing(finished: Any) -> None:
    job, _, _, folder = finished
    video = job.output_dir / "e2e-cpu.mp4"
    before = video.stat().st_mtime_ns
    again = faceswap_oci.run(job, state_root=folder / STATE)
    assert again.ok
    assert again.phases_run == ()
    assert again.changed == 0
    assert video.stat().st_mtime_ns == before


def test_forced_rerun_of_every_phase_changes_nothing(finished: Any) -> None:
    """Every phase playbook again on the finished job: 0 changed tasks, nothing transferred."""
    job, _, _, folder = finished
    video = job.output_dir / "e2e-cpu.mp4"
    before = video.stat().st_mtime_ns
    seen: list[ev.Event] = []
    again = faceswap_oci.run(
        job, state_root=folder / STATE, from_phase="setup", on_event=seen.append
    )
    assert again.ok, again.error
    assert again.phases_run == ("setup", "upload", "extract", "train", "convert", "fetch")
    done = [e for e in seen if isinstance(e, ev.TaskDone)]
    changed = [e.task for e in done if e.status is ev.TaskStatus.CHANGED]
    assert changed == [] and again.changed == 0
    (upload,) = [e for e in seen if isinstance(e, ev.Report) and e.report == "upload"]
    assert upload.data["files_transferred"] == 0
    assert video.stat().st_mtime_ns == before


def test_a_deleted_output_is_fetched_again(finished: Any) -> None:
    job, _, _, folder = finished
    video = job.output_dir / "e2e-cpu.mp4"
    manifest = json.loads((job.output_dir / "e2e-cpu.manifest.json").read_text())
    video.unlink()
    again = faceswap_oci.run(job, state_root=folder / STATE)
    assert again.ok, again.error
    assert again.phases_run == ("fetch",)
    assert sha256(video) == manifest["output"]["sha256"]


# ---------------------------------------------------------------- a changed input (issue 20)
# These run after the tests above, on the same job and host, and change it: each host-side
# marker (extraction per side, the model, the conversion) is keyed by what it was made from, so a
# changed input or option redoes exactly what depends on it, and the video follows the inputs.
QUICK = 2  # iterations of each training from scratch below


def _video_stream(path: Path) -> dict[str, Any]:
    return next(s for s in ffprobe(path)["streams"] if s["codec_type"] == "video")


def _rerun(job_file: Path, state: Path, spec: dict[str, Any]) -> tuple[Any, list[ev.Event]]:
    spec["train"]["stop"]["iterations"] = QUICK
    job_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    job = faceswap_oci.load_job(job_file)
    seen: list[ev.Event] = []
    result = faceswap_oci.run(job, on_event=seen.append, state_root=state)
    assert result.ok, result.error
    return job, seen


def _reports(seen: list[ev.Event], kind: str) -> list[dict[str, Any]]:
    return [e.data for e in seen if isinstance(e, ev.Report) and e.report == kind]


def _extracted(seen: list[ev.Event]) -> dict[str, bool]:
    return {f["side"]: f["extracted"] in (True, "True", "true") for f in _reports(seen, "faces")}


def _assert_made_from(job: faceswap_oci.Job, clip: Path) -> None:
    """The job's video has the frame size, rate and count of *clip*; its manifest names it."""
    video = job.output_dir / f"{job.name}.mp4"
    stream, source = _video_stream(video), _video_stream(clip)
    assert (stream["width"], stream["height"]) == (source["width"], source["height"])
    assert stream["r_frame_rate"] == source["r_frame_rate"]
    assert abs(int(stream["nb_read_frames"]) - int(source["nb_read_frames"])) <= 1
    manifest = json.loads((job.output_dir / f"{job.name}.manifest.json").read_text())
    assert manifest["inputs"]["a"]["sha256"] == sha256(clip)
    assert manifest["output"]["sha256"] == sha256(video)


@pytest.fixture(scope="module")
def other_clips(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Another A clip, unlike the demo one in every way a video can be: 320x320, 30 fps, 30
    frames (the demo's are 256x256, 25 fps, 32 frames (tests/e2e/job.py FRAMES))."""
    return make_demo_inputs(tmp_path_factory.mktemp("other"), frames=30, seed=5, size=320, fps=30)


def test_a_changed_input_redoes_extract_a_train_and_convert(
    finished: Any, other_clips: Any
) -> None:
    job, _, _, folder = finished
    spec = yaml.safe_load((folder / "job.yml").read_text())
    # Keep the first A clip (for the next test), then put the other one in its place.
    media = job.input_a
    sidecar = media.with_name(f"{media.stem}_alignments.json")
    rename_clip(media, sidecar, folder / "original", media.stem)
    rename_clip(other_clips.a.video, other_clips.a.alignments, media.parent, media.stem)
    job, seen = _rerun(folder / "job.yml", folder / STATE, spec)
    assert _extracted(seen) == {"a": True, "b": False}
    (reset,) = _reports(seen, "model_reset")
    assert reset["why"] == ["faces_a"]
    assert reset["old_iterations"] >= ITERATIONS
    (trained,) = _reports(seen, "trained")
    assert int(trained["iterations"]) == QUICK  # from scratch, not a resume
    _assert_made_from(job, other_clips.a.video)


def test_a_new_state_folder_with_the_same_name_follows_its_own_input(finished: Any) -> None:
    """Another state folder, the same job name, the first A clip again: the host holds a job of
    that name made from the other clip; the video must follow this job's input."""
    _, _, _, folder = finished
    spec = yaml.safe_load((folder / "job.yml").read_text())
    original = folder / "original" / f"a {NASTY}.mp4"
    spec["inputs"]["a"] = str(original.relative_to(folder))
    job, seen = _rerun(folder / "job2.yml", folder / f"{STATE}2", spec)
    assert _extracted(seen) == {"a": True, "b": False}
    assert [r["why"] for r in _reports(seen, "model_reset")] == [["faces_a"]]
    _assert_made_from(job, original)


def test_a_changed_extract_size_redoes_extract_train_convert_only(finished: Any) -> None:
    _, _, _, folder = finished
    spec = yaml.safe_load((folder / "job2.yml").read_text())
    spec["extract"]["size"] = 320
    _, seen = _rerun(folder / "job2.yml", folder / f"{STATE}2", spec)
    started = [e.phase for e in seen if isinstance(e, ev.PhaseStarted)]
    assert started == ["extract", "train", "convert", "fetch"]
    assert _extracted(seen) == {"a": True, "b": True}
    assert [r["why"] for r in _reports(seen, "model_reset")] == [["faces_a", "faces_b"]]


def test_a_changed_trainer_redoes_train_and_convert_only(finished: Any) -> None:
    _, _, _, folder = finished
    spec = yaml.safe_load((folder / "job2.yml").read_text())
    spec["train"]["trainer"] = "lightweight"
    spec["train"]["config"].pop("model.original", None)
    job, seen = _rerun(folder / "job2.yml", folder / f"{STATE}2", spec)
    started = [e.phase for e in seen if isinstance(e, ev.PhaseStarted)]
    assert started == ["train", "convert", "fetch"]
    assert not _reports(seen, "faces")
    (reset,) = _reports(seen, "model_reset")
    assert "trainer" in reset["why"]
    manifest = json.loads((job.output_dir / f"{job.name}.manifest.json").read_text())
    assert manifest["model"]["trainer"] == "lightweight"
    assert manifest["model"]["iterations"] == QUICK
