"""Run a playbook text with the repository's collection through ansible-runner.

Shared by the Faceswap integration tests and ``benchmarks/setup.py``.
"""

from __future__ import annotations

import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class PlaybookResult:
    rc: int
    output: str
    changed: dict[str, int]
    failures: list[str]
    durations: dict[str, float]


def run_playbook(
    playbook: str,
    inventory: dict[str, Any],
    workdir: Path,
    extra_vars: dict[str, Any] | None = None,
    timeout: int = 1800,
    check: bool = False,
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
        cmdline="--check" if check else None,
        quiet=True,
        timeout=timeout,
        suppress_env_files=True,
    )
    failures = [
        str(event["event_data"]["res"].get("msg", ""))
        for event in runner.events
        if event.get("event") == "runner_on_failed" and not event["event_data"].get("ignore_errors")
    ]
    durations: dict[str, float] = {}
    for event in runner.events:
        data = event.get("event_data", {})
        if event.get("event", "").startswith("runner_on_") and data.get("duration"):
            task = str(data.get("task", ""))
            durations[task] = durations.get(task, 0.0) + float(data["duration"])
    stats = runner.stats or {}
    output = runner.stdout.read() if runner.stdout else ""
    return PlaybookResult(runner.rc, output, dict(stats.get("changed", {})), failures, durations)


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
