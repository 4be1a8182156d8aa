"""Shared fixtures for the tests that run the `faceswap` role on test-bed hosts.

The pinned commit, the CPU wheel set and the session's local install come from the plugin
:mod:`tests.faceswap.local` (loaded by ``tests/conftest.py``); an empty Faceswap source cache
fails there with the command that fills it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faceswap.playbook import PREPARE_PLAY, ROLE_PLAY, PlaybookResult, run_playbook
from tests.testbed import Host


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
