"""Run a role-planning playbook of tests/roles in check mode on local-connection hosts, one host
per case, and hand back ansible-runner's events (read the way the wrapper reads a real run)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_plans(
    playbook: Path, hosts: dict[str, dict[str, Any]], tags: str, work: Path
) -> tuple[list[dict[str, Any]], str]:
    """Run ``playbook`` with ``--check --tags tags`` on ``hosts`` (name -> host vars, each on a
    local connection with this interpreter); return the events and ansible's stdout."""
    ansible_runner = pytest.importorskip("ansible_runner")
    base = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = work / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {"hosts": {n: base | v for n, v in hosts.items()}}})
    )
    (work / "runner").mkdir()
    runner = ansible_runner.run(
        private_data_dir=str(work / "runner"),
        playbook=str(playbook),
        inventory=str(inventory),
        # With `binary` (the venv's ansible-playbook, PATH may lack it) runner leaves the
        # playbook off the command line, so it goes in cmdline.
        cmdline=f"--check --tags {tags} {playbook}",
        binary=str(Path(sys.executable).with_name("ansible-playbook")),
        envvars={
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
            "ANSIBLE_NOCOLOR": "1",
        },
        quiet=True,
    )
    return list(runner.events), runner.stdout.read()
