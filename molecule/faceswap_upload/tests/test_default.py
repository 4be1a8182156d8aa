"""Verify the upload scenario: the demo clips and their alignments on the host, byte for byte."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

JOB = "/opt/faceswap-oci/jobs/molecule"
DEMO = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "demo"
FILES = [
    ("a", "a.mp4"),
    ("a", "a_alignments.json"),
    ("b", "b.mp4"),
    ("b", "b_alignments.json"),
]


@pytest.mark.parametrize(("side", "name"), FILES)
def test_file_arrived_intact(host, side: str, name: str) -> None:
    remote = host.file(f"{JOB}/inputs/{side}/{name}")
    assert remote.is_file
    local = hashlib.sha256((DEMO / name).read_bytes()).hexdigest()
    assert remote.sha256sum == local


@pytest.mark.parametrize(("side", "name"), FILES)
def test_file_belongs_to_the_faceswap_user(host, side: str, name: str) -> None:
    remote = host.file(f"{JOB}/inputs/{side}/{name}")
    assert remote.user == "faceswap"
    assert remote.mode == 0o640


def test_no_partial_files_left(host) -> None:
    leftovers = host.check_output(f"find {JOB}/inputs -name '.*' -type f")
    assert leftovers == ""
