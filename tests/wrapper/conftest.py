"""Fixtures for the wrapper's integration tests: job files and isolated XDG directories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from faceswap_oci.spec import CONSENT_TEXT
from tests.media import write_pair


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the state, data and cache dirs of faceswap-oci at a temporary folder."""
    for var, sub in (
        ("XDG_STATE_HOME", "state"),
        ("XDG_DATA_HOME", "data"),
    ):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


@pytest.fixture
def job_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a job file (with two small input files) and return its path."""

    def make(name: str = "wrap", target: dict[str, Any] | None = None, **extra: Any) -> Path:
        folder = tmp_path / f"job-{name}"
        folder.mkdir(exist_ok=True)
        write_pair(folder)
        data: dict[str, Any] = {
            "name": name,
            "consent": CONSENT_TEXT,
            "target": target or {"kind": "local"},
            "inputs": {"a": "a.mp4", "b": "b.mp4"},
        }
        data.update(extra)
        path = folder / "job.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return make
