"""Shared pytest configuration: plugins and the session-wide installed hosts.

Tests that need Faceswap installed share one install of each kind per run:

- ``faceswap_image``: the "Faceswap installed" test-bed layer (:mod:`tests.hostimage`), made by
  one real `setup` on a plain host; ``installed_host`` is a host booted on it (session-wide;
  tests that change a host beyond a job of their own boot their own with
  ``testbed.up(1, layer=faceswap_image.layer)``).
- ``xdg`` and ``job_file``: isolated XDG folders and small job files for API tests;
  ``installed_xdg`` is ``xdg`` with the data folder holding ``local_faceswap``.
- ``e2e_job``: one whole job through the API on ``installed_host`` (tests/e2e/job.py), which
  the e2e tests check and the dashboard tests serve.
- ``local_faceswap``: Faceswap installed by the `faceswap` role on this machine (the ``local``
  target's layout: no become, the invoking user), under a scratch root in /var/tmp removed at
  the end of the session.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from faceswap_oci.spec import CONSENT_TEXT
from tests.e2e.job import E2eJob, run_e2e_job
from tests.hostimage import Image, ensure_image, reuse_wanted
from tests.media import write_pair
from tests.testbed import Host

if TYPE_CHECKING:
    from tests.faceswap.local import LocalInstall

pytest_plugins = ["tests.ci_policy", "tests.testbed.fixtures", "tests.faceswap.local"]

SESSION_START = time.time()


@pytest.fixture(scope="session")
def faceswap_image(testbed: object) -> Image:
    """The installed-host layer, built once per run (``FSOCI_TESTBED_REUSE_LAYERS=1`` keeps a
    matching one from an earlier run)."""
    return ensure_image(testbed, since=None if reuse_wanted() else SESSION_START)


@pytest.fixture(scope="session")
def installed_host(testbed: object, faceswap_image: Image) -> Host:
    """A host booted on the installed-host layer, shared by the session."""
    host: Host = testbed.up(1, layer=faceswap_image.layer)[0]  # type: ignore[attr-defined]
    return host


@pytest.fixture(scope="session")
def e2e_job(installed_host: Host, tmp_path_factory: pytest.TempPathFactory) -> E2eJob:
    """The suite's one whole job through the API on ``installed_host`` (tests/e2e/job.py),
    shared by the e2e and dashboard tests."""
    assert shutil.which("ffprobe"), "ffprobe not on PATH (apt-get install ffmpeg)"
    return run_e2e_job(installed_host, tmp_path_factory.mktemp("e2e"))


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
    """Write a job file (with two small real clips, which `run`'s ffprobe check accepts) and
    return its path."""

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


@pytest.fixture
def installed_xdg(
    local_faceswap: LocalInstall, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``xdg`` whose data folder (the ``local`` target's host root) holds the session's local
    Faceswap install; returns that data folder. Jobs there get folders of their own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(local_faceswap.data_home))
    return local_faceswap.data_home


# Fixtures that need booted hosts or an installed Faceswap: a test using one (directly or through
# another fixture) gets the marker, so `-m "not testbed and not faceswap"` (the quick lane,
# scripts/test.sh --quick) leaves it out without each test having to say so.
_MARKED_BY_FIXTURE = {
    "testbed": "testbed",
    "local_faceswap": "faceswap",
    "faceswap_image": "faceswap",
}


def pytest_itemcollected(item: pytest.Item) -> None:
    names = set(getattr(item, "fixturenames", ()))
    for fixture, marker in _MARKED_BY_FIXTURE.items():
        if fixture in names:
            item.add_marker(marker)


def _needs_the_image(item: pytest.Item) -> bool:
    return "faceswap_image" in getattr(item, "fixturenames", ()) or bool(
        item.get_closest_marker("installed_image")
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the installed-host image run after those that need no image, each group in its
    own order: a session that does not build the image itself (another one holds the build
    lock) first runs what needs no image instead of waiting (scripts/test.sh runs several)."""
    for item in items:
        if _needs_the_image(item):
            item.add_marker("installed_image")
    items.sort(key=_needs_the_image)
