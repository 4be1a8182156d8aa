"""Paths and values reach ssh as quoted arguments: a state folder with spaces, quotes, `$(...)`,
`%` and newlines is one UserKnownHostsFile to ssh itself (checked with `ssh -G`, which parses
the options as a connection would and connects nowhere), and no path adds an option."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from faceswap_oci import spec
from faceswap_oci.runner import Runner, env_allowed, ssh_config_quote
from tests.media import write_pair

NASTY = [
    "state with spaces",
    'it\'s "quoted"',
    "$(touch INJECTED)`touch INJECTED`",
    "new\nline",
    "100% %h %d",
    'x" -o ProxyCommand="touch INJECTED',
    "back\\slash",
]


def ssh_g(args: list[str]) -> dict[str, str]:
    """What ssh makes of these options for a connection to example.invalid."""
    proc = subprocess.run(
        ["ssh", "-G", *args, "-p", "2222", "root@example.invalid"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    found: dict[str, str] = {}
    for line in proc.stdout.split("\n"):
        key, _, value = line.partition(" ")
        found.setdefault(key, value)
    return found


def runner_for(tmp_path: Path, state_root: Path) -> Runner:
    write_pair(tmp_path)
    data = {
        "name": "quoting",
        "consent": spec.CONSENT_TEXT,
        "target": {"kind": "ssh", "ssh": {"host": "example.invalid", "port": 2222}},
        "inputs": {"a": "a.mp4", "b": "b.mp4"},
    }
    (tmp_path / "job.yml").write_text(yaml.safe_dump(data))
    return Runner(spec.load_job(tmp_path / "job.yml"), state_root=state_root)


@pytest.mark.parametrize("name", NASTY, ids=range(len(NASTY)))
def test_ssh_sees_the_state_folder_as_one_known_hosts_file(tmp_path: Path, name: str) -> None:
    runner = runner_for(tmp_path, tmp_path / name)
    host = runner.inventory()["all"]["children"]["fsoci_target"]["hosts"]["target"]
    args = shlex.split(host["ansible_ssh_common_args"])  # as Ansible's ssh plugin splits it
    assert args[::2] == ["-o", "-o", "-o"]
    seen = ssh_g(args)
    known = str(runner.state.path / "known_hosts")
    if "\n" in known:  # -G prints one option per line: compare up to the newline
        assert seen["userknownhostsfile"] == known.split("\n")[0]
    else:
        assert seen["userknownhostsfile"] == known
    assert seen["stricthostkeychecking"] == "accept-new"
    assert "proxycommand" not in seen
    assert not list(tmp_path.rglob("INJECTED"))


def test_results_role_splits_the_options_as_ansible_does() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "shlex_split.py"
    module_spec = importlib.util.spec_from_file_location("shlex_split", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    args = shlex.join(["-o", f"UserKnownHostsFile={ssh_config_quote('/a b/k h')}"])
    assert module.FilterModule().filters()["shlex_split"](args) == [
        "-o",
        'UserKnownHostsFile="/a b/k h"',
    ]


def test_ssh_config_quote_escapes_what_ssh_parses() -> None:
    assert ssh_config_quote('/a "b"\\c%d') == '"/a \\"b\\"\\\\c%%d"'


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("PATH", True),
        ("HOME", True),
        ("LANG", True),
        ("LC_ALL", True),
        ("ANSIBLE_ROLES_PATH", True),
        ("FSOCI_CACHE_DIR", True),
        ("SSH_AUTH_SOCK", True),
        ("AWS_SECRET_ACCESS_KEY", False),
        ("GITHUB_TOKEN", False),
        ("OCI_CLI_KEY_CONTENT", False),
        ("PS1", False),
        ("DATABASE_URL", False),
    ],
)
def test_environment_allow_list(name: str, allowed: bool) -> None:
    assert env_allowed(name) is allowed
