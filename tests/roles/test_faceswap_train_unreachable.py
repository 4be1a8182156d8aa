"""The train poll tolerates unreachable polls in a row (issue 14: "let the train poll tolerate
several unreachable polls in a row"): roles/faceswap_train/tasks/poll.yml against a host whose
SSH port refuses every connection. It counts them, pauses between them, and only after
faceswap_train_unreachable_polls of them fails with a `train_unreachable` report (which makes
the runner ask the OCI API about the instance; tests/unit/test_durability.py)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from tests.oci.playbook import run_playbook

PLAY = """\
- name: Follow a training on a host that cannot be reached
  hosts: fsoci_target
  gather_facts: false
  tasks:
    - name: Poll
      ansible.builtin.include_role:
        name: faceswap_oci.core.faceswap_train
        tasks_from: poll
      vars:
        faceswap_train_job_dir: /opt/faceswap-oci/jobs/demo
        faceswap_train_become: false
        faceswap_train_poll_delay: 1
        faceswap_train_unreachable_polls: 3
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: refused


def test_unreachable_polls_are_counted_then_reported(tmp_path: Path) -> None:
    play = tmp_path / "poll.yml"
    play.write_text(PLAY)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[fsoci_target]\n"
        f"target ansible_host=127.0.0.1 ansible_port={_closed_port()} ansible_user=nobody"
        f" ansible_python_interpreter={sys.executable}\n"
    )
    run = run_playbook(str(play), {}, tmp_path / "run", inventory=inventory, timeout=120)
    assert run.rc != 0
    # Three polls, each unreachable and ignored, two pauses between them, then the report.
    assert run.stdout.count("TASK [faceswap_oci.core.faceswap_train : Poll the training]") == 3
    assert run.stdout.count("Wait before polling the unreachable host again") == 2
    assert int(run.event("train_unreachable")["polls"]) == 3
    assert "unreachable for 3 training polls in a row" in run.stdout
    assert "faceswap_train_unreachable_polls" in run.stdout  # the fix is named
