"""Fixtures for the end-to-end pipeline tests: the real Faceswap on this machine's CPU.

The phases run as the project's playbooks (upload, extract, train, convert, fetch) against the
``local`` target (``ansible_connection: local``), with the host root pointing at the session's
install of Faceswap by the `faceswap` role (``local_faceswap``, :mod:`tests.faceswap.local`).
The inputs are the synthetic demo clips (:mod:`faceswap_oci.demo`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from faceswap_oci.demo import make_demo_inputs
from tests.pipeline.jobs import PHASES, Job, PhaseRun, new_job

if TYPE_CHECKING:
    from tests.faceswap.local import LocalInstall

FRAMES = 30  # above Faceswap's 25 faces per side; extract and convert cost per frame


@pytest.fixture(scope="session")
def demo_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo-inputs")
    make_demo_inputs(directory, frames=FRAMES, seed=1)
    return directory


@pytest.fixture(scope="session")
def pipeline_root(local_faceswap: LocalInstall) -> Path:
    return local_faceswap.root


@pytest.fixture(scope="session")
def extracted_job(
    pipeline_root: Path, demo_inputs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Job, dict[str, PhaseRun]]]:
    """One job through upload and extract."""
    job = new_job(pipeline_root, tmp_path_factory.mktemp("job-full"), demo_inputs, "full", 6)
    runs: dict[str, PhaseRun] = {}
    try:
        for phase in PHASES[:2]:
            runs[phase] = job.run(phase)
            assert runs[phase].rc == 0, f"{phase} failed:\n{runs[phase].output[-4000:]}"
        yield job, runs
    finally:
        job.cleanup()


@pytest.fixture(scope="session")
def finished_job(
    extracted_job: tuple[Job, dict[str, PhaseRun]],
) -> tuple[Job, dict[str, PhaseRun]]:
    """The same job through every phase once."""
    job, runs = extracted_job
    for phase in PHASES[2:]:
        if phase not in runs:
            runs[phase] = job.run(phase)
        assert runs[phase].rc == 0, f"{phase} failed:\n{runs[phase].output[-4000:]}"
    return job, runs
