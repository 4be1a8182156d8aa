"""The suite's one whole job through the API on a test-bed host (tests/e2e, tests/dashboard).

`e2e_job` (tests/conftest.py) runs it once per session on ``installed_host``: the demo clips,
weight-free extract, a lean CPU training, the results fetched back. Its state folder and both
input file names hold spaces, quotes, ``$(...)``, backticks and a newline, so every phase shows
that no value reaches a shell (issue #13's canary).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import faceswap_oci
from faceswap_oci import events as ev
from tests.pipeline.jobs import e2e_job_spec

NAME = "e2e-cpu"
ITERATIONS = 10
FRAMES = 32
"""Frames (and faces) per demo clip: above Faceswap's 25, and extract and convert cost per frame."""
CANARY = "FSOCI_E2E_CANARY"
NASTY = f'it\'s "odd" $(touch {CANARY}) `touch {CANARY}`\nline2'
"""In the state folder's and both inputs' names: run as shell, it would create CANARY."""
STATE = f"state {NASTY}"


@dataclass(frozen=True)
class E2eJob:
    job: faceswap_oci.Job
    result: faceswap_oci.JobResult
    seen: list[ev.Event]
    folder: Path
    host: Any

    @property
    def state_root(self) -> Path:
        return self.folder / STATE


def rename_clip(video: Path, alignments: Path, folder: Path, stem: str) -> Path:
    """Copy a demo clip and its alignments to ``folder/<stem>.mp4`` (the alignments' frame keys
    follow the video's stem, as Faceswap names frames)."""
    side = video.stem
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stem}.mp4"
    target.write_bytes(video.read_bytes())
    text = alignments.read_text()
    if stem != side:
        text = text.replace(f'"{side}_0', json.dumps(stem + "_0")[:-1])
    (folder / f"{stem}_alignments.json").write_text(text)
    return target


def nasty_inputs(folder: Path) -> dict[str, str]:
    """The demo clips and their alignments under names holding NASTY."""
    from faceswap_oci import demo

    clips = demo.make_demo_inputs(folder / "made", frames=FRAMES)
    names = {}
    for side, clip in (("a", clips.a), ("b", clips.b)):
        made = rename_clip(clip.video, clip.alignments, folder / "demo", f"{side} {NASTY}")
        names[side] = str(made.relative_to(folder))
    return names


def run_e2e_job(host: Any, folder: Path) -> E2eJob:
    job_file = folder / "job.yml"
    data = e2e_job_spec(NAME, host.job_target(), ITERATIONS)
    data["inputs"] = nasty_inputs(folder)
    job_file.write_text(yaml.safe_dump(data, sort_keys=False))
    job = faceswap_oci.load_job(job_file)
    seen: list[ev.Event] = []
    result = faceswap_oci.run(job, on_event=seen.append, state_root=folder / STATE)
    assert result.ok, result.error
    return E2eJob(job, result, seen, folder, host)
