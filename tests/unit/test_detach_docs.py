"""The detached flow's docs keep up with the code: the README shows it in four commands or
fewer, each a real command with real options; docs/detach.md carries the policy text that
`check` prints."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from typer.testing import CliRunner

from faceswap_oci import cli
from faceswap_oci.runner import collections_path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_shows_the_detached_flow_in_four_commands_or_fewer() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A detached job", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    commands = [shlex.split(line.split("#", 1)[0]) for line in block.strip().splitlines()]
    assert 1 <= len(commands) <= 4
    assert any("--detach" in c for c in commands) and any(c[1] == "attach" for c in commands)
    for argv in commands:
        assert argv[0] == ".venv/bin/faceswap-oci"
        usage = CliRunner().invoke(cli.app, [argv[1], "--help"], terminal_width=200)
        assert usage.exit_code == 0, usage.output
        for option in (a for a in argv[2:] if a.startswith("-")):
            assert option in usage.output, (argv, option)


def test_docs_detach_carries_the_policy_text_check_prints() -> None:
    path = str(collections_path())
    if path not in sys.path:
        sys.path.append(path)
    from ansible_collections.faceswap_oci.core.plugins.module_utils import oci_detach

    text = oci_detach.policy_text("<compartment OCID>").render()
    doc = (ROOT / "docs/detach.md").read_text()
    for line in text.splitlines():
        assert line in doc, line
