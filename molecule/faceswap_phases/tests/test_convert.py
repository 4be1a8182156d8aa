"""Verify the convert phase: the swapped video keeps A's frames and audio, is tagged, and
its manifest matches it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

JOB = "/opt/faceswap-oci/jobs/molecule"
VIDEO = f"{JOB}/output/molecule.mp4"


def probe(host, tmp_path: Path) -> dict:
    local = tmp_path / "molecule.mp4"
    local.write_bytes(host.file(VIDEO).content)
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,nb_read_frames:format=duration:format_tags",
            "-of",
            "json",
            str(local),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def test_video_keeps_a_frames_and_audio(host, tmp_path: Path) -> None:
    data = probe(host, tmp_path)
    kinds = [s["codec_type"] for s in data["streams"]]
    assert kinds.count("video") == 1 and "audio" in kinds
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    assert abs(int(video["nb_read_frames"]) - 32) <= 1


def test_video_is_tagged_as_synthetic_media(host, tmp_path: Path) -> None:
    tags = probe(host, tmp_path)["format"]["tags"]
    assert "faceswap-oci" in tags["comment"]
    assert tags["description"].endswith("trainedAlgorithmicMedia")


def test_manifest_matches_the_video(host) -> None:
    manifest = json.loads(host.file(f"{JOB}/output/molecule.manifest.json").content_string)
    assert manifest["output"]["sha256"] == hashlib.sha256(host.file(VIDEO).content).hexdigest()
    made_from = json.loads(host.file(f"{JOB}/model/.fsoci_made_from.json").content_string)
    assert manifest["model"] == {
        "trainer": "original",
        "iterations": 4,
        "made_from": made_from["key"],
    }
    # The manifest names the media the video was made from, as the conversion's marker does.
    media = f"{JOB}/inputs/a/a.mp4"
    assert manifest["inputs"]["a"]["sha256"] == host.check_output(f"sha256sum {media}").split()[0]
    marker = json.loads(host.file(f"{JOB}/logs/convert.done").content_string)
    assert marker["made_from"]["input_sha256"] == manifest["inputs"]["a"]["sha256"]
    assert marker["made_from"]["model"] == made_from["key"]
    assert manifest["consent"].startswith("I have the consent")
    assert len(manifest["faceswap_commit"]) == 40
    assert host.file(VIDEO).user == "faceswap"
