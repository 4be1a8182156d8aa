"""Verify the extract phase: every demo frame gave a face, as the faceswap user, with logs."""

from __future__ import annotations

import json

import pytest

JOB = "/opt/faceswap-oci/jobs/molecule"
FRAMES = 32


@pytest.mark.parametrize("side", ["a", "b"])
def test_every_frame_gave_a_face(host, side: str) -> None:
    count = host.check_output(f"find {JOB}/faces_{side} -maxdepth 1 -name '*.png' | wc -l")
    assert int(count) == FRAMES


@pytest.mark.parametrize("side", ["a", "b"])
def test_faces_belong_to_the_faceswap_user(host, side: str) -> None:
    strays = host.check_output(f"find {JOB}/faces_{side} ! -user faceswap -print -quit")
    assert strays == ""


@pytest.mark.parametrize("side", ["a", "b"])
def test_alignments_and_markers_written(host, side: str) -> None:
    assert host.file(f"{JOB}/inputs/{side}/{side}_alignments.fsa").is_file
    marker = json.loads(host.file(f"{JOB}/logs/extract_{side}.done").content_string)
    media = f"{JOB}/inputs/{side}/{side}.mp4"
    # The marker names what the faces were made from: the media's checksum and the command.
    assert marker["made_from"]["media"] == {
        "path": media,
        "sha256": host.check_output(f"sha256sum {media}").split()[0],
    }
    assert marker["made_from"]["argv"][2:4] == ["extract", "-i"]
    log = host.file(f"{JOB}/logs/extract_{side}.log")
    assert log.is_file and log.size > 0


@pytest.mark.parametrize("side", ["a", "b"])
def test_extract_used_the_file_plugins_with_skip_existing(host, side: str) -> None:
    out = host.file(f"{JOB}/logs/extract_{side}.out").content_string
    assert f"Faces detected:      {FRAMES}" in out
