"""Shared fixtures for the tests that install the real Faceswap with the `faceswap` role.

They need the controller's Faceswap source cache (``faceswap-oci source add <clone>``) and skip
with the reason where it is empty. Wheel sets come from ``faceswap_oci.cache.ensure_wheels``.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from faceswap_oci import cache
from tests.testbed import Host

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class PlaybookResult:
    rc: int
    output: str
    changed: dict[str, int]
    failures: list[str]


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


def run_playbook(
    playbook: str,
    inventory: dict[str, Any],
    workdir: Path,
    extra_vars: dict[str, Any] | None = None,
    timeout: int = 1800,
) -> PlaybookResult:
    """Run a playbook text against an inventory with the repository's collection and roles."""
    workdir.mkdir(parents=True, exist_ok=True)
    if str(VENV_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
        # ansible-runner looks up ansible-playbook on this process's PATH.
        os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    (workdir / "play.yml").write_text(textwrap.dedent(playbook))
    runner = ansible_runner.run(
        private_data_dir=str(workdir),
        playbook=str(workdir / "play.yml"),
        inventory=inventory,
        extravars=extra_vars or {},
        envvars={
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        quiet=True,
        timeout=timeout,
        suppress_env_files=True,
    )
    failures = [
        str(event["event_data"]["res"].get("msg", ""))
        for event in runner.events
        if event.get("event") == "runner_on_failed" and not event["event_data"].get("ignore_errors")
    ]
    stats = runner.stats or {}
    output = runner.stdout.read() if runner.stdout else ""
    return PlaybookResult(runner.rc, output, dict(stats.get("changed", {})), failures)


PREPARE_PLAY = """
- name: Prepare
  hosts: all
  gather_facts: true
  roles:
    - role: faceswap_oci.core.host_prepare
      vars:
        host_prepare_user: faceswap
        host_prepare_root: /opt/faceswap-oci
"""

ROLE_PLAY = """
- name: Faceswap
  hosts: all
  gather_facts: false
  roles:
    - role: faceswap_oci.core.faceswap
"""


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

    def run(inventory: dict[str, Any], **role_vars: Any) -> PlaybookResult:
        return run_playbook(ROLE_PLAY, inventory, tmp_path / "run", role_vars)

    return run
