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
    playbook: Path,
    hosts: dict[str, dict[str, Any]],
    tags: str,
    work: Path,
    facts: dict[str, tuple[str, str]],
) -> dict[str, dict[str, Any]]:
    """Run ``playbook`` with ``--check --tags tags`` on ``hosts`` (name -> host vars, each on a
    local connection with this interpreter). Return, per host, the facts set by the tasks named
    in ``facts`` (task name -> (key in the result, fact name)), or ``{"failed": (task, msg)}``
    for a host that failed; every host must have one or the other."""
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
    results: dict[str, dict[str, Any]] = {name: {} for name in hosts}
    for event in runner.events:
        data = event.get("event_data", {})
        host, task, res = data.get("host"), data.get("task"), data.get("res", {})
        if host not in results:
            continue
        if event["event"] == "runner_on_failed":
            results[host] = {"failed": (task, res.get("msg"))}
        elif event["event"] == "runner_on_ok" and task in facts:
            key, fact = facts[task]
            results[host][key] = res["ansible_facts"][fact]
    missing = sorted(name for name, got in results.items() if not got)
    assert not missing, f"no outcome for {missing}:\n{runner.stdout.read()[-4000:]}"
    return results
