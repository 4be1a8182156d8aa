"""Verify the results scenario: video, manifest and preview on the controller, byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

JOB = "/opt/faceswap-oci/jobs/molecule"
OUT = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "output"
FILES = {
    "molecule.mp4": f"{JOB}/output/molecule.mp4",
    "molecule.manifest.json": f"{JOB}/output/molecule.manifest.json",
    "preview.png": f"{JOB}/logs/preview.png",
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_result_is_on_the_controller_intact(host, name: str) -> None:
    local = hashlib.sha256((OUT / name).read_bytes()).hexdigest()
    assert host.file(FILES[name]).sha256sum == local


def test_manifest_names_the_video_it_came_with() -> None:
    manifest = json.loads((OUT / "molecule.manifest.json").read_text())
    video = hashlib.sha256((OUT / "molecule.mp4").read_bytes()).hexdigest()
    assert manifest["output"]["sha256"] == video


def test_no_partial_files_on_the_controller() -> None:
    assert sorted(p.name for p in OUT.iterdir()) == sorted(FILES)
