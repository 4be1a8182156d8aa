"""Fixtures for the dashboard tests: a job state made by a real run (the suite's `e2e_job`, a
whole job through the API with the real Faceswap), and the `faceswap-oci dashboard` command
serving a copy of it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.job import E2eJob


@pytest.fixture(scope="session")
def demo_job(e2e_job: E2eJob) -> tuple[Path, str, Path]:
    """(state_dir, job_name, output_dir) of the session's whole job."""
    return e2e_job.result.state_dir, e2e_job.job.name, e2e_job.job.output_dir


class Dashboard:
    def __init__(self, process: subprocess.Popen[str], url: str, stderr: Path) -> None:
        self.process = process
        self.url = url
        self.stderr = stderr


def start_dashboard(state_root: Path, *args: str, stderr: Path) -> Dashboard:
    """Run `faceswap-oci dashboard` and wait for the URL it prints."""
    with stderr.open("w") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "faceswap_oci.cli",
                "dashboard",
                "--state-dir",
                str(state_root),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = re.search(r"dashboard: (http://\S+/)", line)
        if found:
            return Dashboard(process, found.group(1), stderr)
        if process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"the dashboard did not start: {line!r} {stderr.read_text()}")


def stop_dashboard(dashboard: Dashboard) -> None:
    dashboard.process.terminate()
    try:
        dashboard.process.wait(10)
    except subprocess.TimeoutExpired:
        dashboard.process.kill()


@pytest.fixture
def served_copy(
    demo_job: tuple[Path, str, Path], tmp_path: Path
) -> Iterator[tuple[Dashboard, Path]]:
    """The dashboard on a copy of the demo job's state (tests append events to it)."""
    state_dir, name, _output = demo_job
    root = tmp_path / "state"
    shutil.copytree(state_dir, root / name, ignore=shutil.ignore_patterns("runner", "tmp"))
    dashboard = start_dashboard(root, "--port", "0", stderr=tmp_path / "dashboard.err")
    try:
        yield dashboard, root / name
    finally:
        stop_dashboard(dashboard)
