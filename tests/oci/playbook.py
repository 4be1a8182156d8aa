"""Run the project's playbooks with ansible-playbook against the local OCI API."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.ociapi.fixtures import OciApi

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    events: list[dict[str, Any]]

    @property
    def changed(self) -> int:
        found = re.findall(r"^\S+\s*:\s*ok=\d+\s+changed=(\d+)", self.stdout, re.MULTILINE)
        assert found, self.stdout[-3000:]
        return sum(int(n) for n in found)

    def event(self, kind: str) -> dict[str, Any]:
        found = [e for e in self.events if e.get("kind") == kind]
        assert found, f"no fsoci_event {kind}: {self.events}"
        return found[-1]


def job_vars(api: OciApi, name: str, state_dir: Path, **oci: Any) -> dict[str, Any]:
    section = {
        "profile": api.cfg.profile,
        "config_file": str(api.cfg.config_file),
        "compartment": api.cfg.compartment,
        "region": api.cfg.region,
        "shapes": ["VM.GPU.A10.1"],
        "availability_domains": None,
        "preemptible": False,
        "preemptible_fallback": False,
        "image": None,
        "os": "Oracle Linux 9",
        "boot_volume_gb": 100,
        "ssh_ingress_cidr": "198.51.100.7/32",
        "ssh_user": None,
        "subnet": None,
        "max_hours": 2.0,
        "service_endpoint": api.url,
    }
    section.update(oci)
    return {
        "fsoci": {"name": name, "target": {"kind": "oci", "oci": section}},
        "fsoci_state_dir": str(state_dir),
    }


def run_playbook(
    playbook: str,
    extravars: dict[str, Any],
    tmp_path: Path,
    *extra_args: str,
    timeout: int = 240,
    inventory: Path | None = None,
) -> PlaybookRun:
    tmp_path.mkdir(parents=True, exist_ok=True)
    vars_file = tmp_path / "extravars.json"
    vars_file.write_text(json.dumps(extravars))
    if inventory is None:
        inventory = tmp_path / "empty-inventory.ini"
        inventory.write_text("")
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "PATH": f"{BIN}:{env.get('PATH', '')}",
        }
    )
    proc = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            str(ROOT / playbook),
            "-e",
            f"@{vars_file}",
            *extra_args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, _events(proc.stdout))


def _events(stdout: str) -> list[dict[str, Any]]:
    out = []
    decoder = json.JSONDecoder()
    for m in re.finditer(r'"fsoci_event":', stdout):
        try:
            value, _ = decoder.raw_decode(stdout[m.end() :].lstrip())
        except json.JSONDecodeError:
            continue
        out.append(value)
    return out


@contextmanager
def fake_sshd() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that greets like sshd, for the provision's SSH wait."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6 fake\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        srv.close()
