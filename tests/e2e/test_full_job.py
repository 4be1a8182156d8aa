"""End to end through the wrapper: one `faceswap_oci.run` of a whole job on a booted test host.

The real thing at every step: the `ssh` target on a booted Debian host, the setup phase
installing the pinned Faceswap from the controller's source and wheel caches, the real Faceswap
extracting, training (as a service) and converting on the CPU with the synthetic demo clips, and
the results fetched back with checksums. The state folder and the input file names hold
spaces, quotes, `$(...)`, backticks and newlines, and a canary checks that nothing of them ran
as a command, on the controller or the host (issue #13). Skips (with the reason) where the
Faceswap source cache does not hold the pinned commit: GitHub is out of reach here, so the cache
is filled from a local clone (`faceswap-oci source add <path>`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import faceswap_oci
from faceswap_oci import cache
from faceswap_oci import events as ev
from faceswap_oci.spec import CONSENT_TEXT, DEFAULT_FACESWAP_REF
from tests.pipeline.jobs import e2e_job_spec, ffprobe, sha256

pytestmark = [pytest.mark.testbed, pytest.mark.faceswap, pytest.mark.slow]

ITERATIONS = 20
CANARY = "FSOCI_E2E_CANARY"
NASTY = f'it\'s "odd" $(touch {CANARY}) `touch {CANARY}`\nline2'
"""In the state folder's and both inputs' names: run as shell, it would create CANARY."""
STATE = f"state {NASTY}"


def nasty_inputs(folder: Path) -> dict[str, str]:
    """The demo clips and their alignments under names holding NASTY (the alignments' frame
    keys follow the video's stem, as Faceswap names frames)."""
    from faceswap_oci import demo

    demo.make_demo_inputs(folder / "demo")
    names = {}
    for side in ("a", "b"):
        stem = f"{side} {NASTY}"
        (folder / "demo" / f"{side}.mp4").rename(folder / "demo" / f"{stem}.mp4")
        old = folder / "demo" / f"{side}_alignments.json"
        text = old.read_text().replace(f'"{side}_0', json.dumps(stem + "_0")[:-1])
        (folder / "demo" / f"{stem}_alignments.json").write_text(text)
        old.unlink()
        names[side] = f"demo/{stem}.mp4"
    return names


@pytest.fixture(scope="module")
def source_commit() -> str:
    try:
        return cache.resolve_ref(DEFAULT_FACESWAP_REF)
    except cache.CacheError as exc:
        pytest.skip(f"Faceswap source cache lacks the pinned commit: {exc}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def e2e_host(testbed_hosts: Callable[[int], list[Any]]) -> Any:
    return testbed_hosts(1)[0]


@pytest.fixture(scope="module")
def finished(
    source_commit: str,
    e2e_host: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[faceswap_oci.Job, faceswap_oci.JobResult, list[ev.Event], Path]:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not on PATH (apt-get install ffmpeg)")
    host = e2e_host
    folder = tmp_path_factory.mktemp("e2e")
    job_file = folder / "job.yml"
    data = e2e_job_spec("e2e-cpu", host.job_target(), ITERATIONS)
    data["inputs"] = nasty_inputs(folder)
    job_file.write_text(yaml.safe_dump(data, sort_keys=False))
    job = faceswap_oci.load_job(job_file)
    seen: list[ev.Event] = []
    result = faceswap_oci.run(job, on_event=seen.append, state_root=folder / STATE)
    assert result.ok, result.error
    return job, result, seen, folder


def test_no_name_ran_as_a_command(finished: Any, e2e_host: Any) -> None:
    job, result, _, folder = finished
    assert "\n" in str(result.state_dir) and "\n" in str(job.input_a)
    assert (result.state_dir / "known_hosts").is_file()  # ssh used the quoted path
    places = [folder, Path.cwd(), Path.home(), Path("/tmp")]
    assert [p for p in places for _ in p.glob(CANARY)] == []
    assert [p for p in folder.rglob(CANARY)] == []
    found = e2e_host.ssh(f"find / -xdev -name {CANARY} -print")
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
