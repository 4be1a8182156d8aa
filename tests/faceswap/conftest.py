"""Shared fixtures for the tests that install the real Faceswap with the `faceswap` role.

They need the controller's Faceswap source cache (``faceswap-oci source add <clone>``) and skip
with the reason where it is empty. Wheel sets come from ``faceswap_oci.cache.ensure_wheels``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faceswap_oci import cache
from tests.faceswap.playbook import PREPARE_PLAY, ROLE_PLAY, PlaybookResult, run_playbook
from tests.testbed import Host


@pytest.fixture(scope="session")
def faceswap_commit() -> str:
    """The pinned commit (``$FSOCI_FACESWAP_REF``, default master) from the source cache."""
    ref = os.environ.get("FSOCI_FACESWAP_REF") or "master"
    try:
        return cache.resolve_ref(ref)
    except cache.CacheError as exc:
        pytest.skip(f"Faceswap source cache has no {ref!r}: {exc}")


@pytest.fixture(scope="session")
def cpu_wheels(faceswap_commit: str) -> cache.WheelSet:
    """The CPU wheel set for Python 3.11 on manylinux x86_64 (Debian 12 test hosts)."""
    try:
        return cache.ensure_wheels(faceswap_commit, "cpu", "3.11", "manylinux_2_28_x86_64")
    except cache.CacheError as exc:
        pytest.skip(f"CPU wheel set unavailable: {exc}")


@pytest.fixture(scope="session")
def prepared_host(testbed_host: Host, tmp_path_factory: pytest.TempPathFactory) -> Host:
    """A test-bed host with the OS packages and the faceswap user (host_prepare)."""
    result = run_playbook(
        PREPARE_PLAY, testbed_host.ansible_inventory(), tmp_path_factory.mktemp("prepare")
    )
    assert result.rc == 0, result.output[-3000:]
    return testbed_host


RoleRunner = Callable[..., PlaybookResult]


@pytest.fixture
def run_role(tmp_path: Path) -> RoleRunner:
    """Run the faceswap role with the given role variables on an inventory."""

    def run(inventory: dict[str, Any], check: bool = False, **role_vars: Any) -> PlaybookResult:
        return run_playbook(ROLE_PLAY, inventory, tmp_path / "run", role_vars, check=check)

    return run
