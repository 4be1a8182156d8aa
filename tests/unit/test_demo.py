"""Synthetic demo inputs: frame counts, alignments format, audio, determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faceswap_oci.demo import face_landmarks, make_demo_inputs
from tests.pipeline.jobs import ffprobe

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg/ffprobe not on PATH (apt-get install ffmpeg)",
)


def _streams(video: Path) -> list[dict[str, str]]:
    streams: list[dict[str, str]] = ffprobe(video)["streams"]
    return streams


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    make_demo_inputs(directory, frames=30, seed=3)
    return directory


def test_files_are_written(demo: Path) -> None:
    names = sorted(p.name for p in demo.iterdir())
    assert names == ["a.mp4", "a_alignments.json", "b.mp4", "b_alignments.json"]


@pytest.mark.parametrize(("side", "kinds"), [("a", ["video", "audio"]), ("b", ["video"])])
def test_streams_and_frame_count(demo: Path, side: str, kinds: list[str]) -> None:
    streams = _streams(demo / f"{side}.mp4")
    assert [s["codec_type"] for s in streams] == kinds
    video = streams[0]
    assert int(video["nb_read_frames"]) == 30
    assert (int(video["width"]), int(video["height"])) == (256, 256)
    if side == "a":
        assert float(streams[1]["duration"]) == pytest.approx(30 / 25, abs=0.05)


@pytest.mark.parametrize("side", ["a", "b"])
def test_alignments_format(demo: Path, side: str) -> None:
    data = json.loads((demo / f"{side}_alignments.json").read_text())
    assert sorted(data) == [f"{side}_{n:06d}.mp4" for n in range(1, 31)]
    for key, faces in data.items():
        assert len(faces) == 1
        face = faces[0]
        assert set(face) == {"detected", "landmarks_2d"}
        left, top, right, bottom = face["detected"]
        assert 0 <= left < right <= 256 and 0 <= top < bottom <= 256
        assert len(face["landmarks_2d"]) == 68
        for x, y in face["landmarks_2d"]:
            assert left <= x <= right and top <= y <= bottom
        index = int(key[2:8]) - 1
        expected = face_landmarks(index, 30, 3, side)
        assert face["landmarks_2d"][30] == pytest.approx(expected[30].tolist(), abs=0.001)


def test_landmarks_move_between_frames() -> None:
    first = face_landmarks(0, 64, 0, "a")
    later = face_landmarks(8, 64, 0, "a")
    assert float(abs(first - later).max()) > 2.0


def test_deterministic(tmp_path: Path, demo: Path) -> None:
    make_demo_inputs(tmp_path, frames=30, seed=3)
    for name in ("a.mp4", "b.mp4", "a_alignments.json", "b_alignments.json"):
        assert (tmp_path / name).read_bytes() == (demo / name).read_bytes(), name


def test_too_few_frames_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frames: 10 is below 25"):
        make_demo_inputs(tmp_path, frames=10)
