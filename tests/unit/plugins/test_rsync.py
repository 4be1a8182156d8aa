"""The one rsync builder (module_utils/rsync.py): the argv of push, pull and local copies, and
check mode as a real rsync dry run that moves nothing."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.faceswap_oci.core.plugins.action import media_push
from ansible_collections.faceswap_oci.core.plugins.filter.rsync_argv import rsync_argv as flt
from ansible_collections.faceswap_oci.core.plugins.module_utils.rsync import (
    Remote,
    remote_from,
    rsync_argv,
)

HOST = Remote(host="gpu-1", port=2222, user="opc", key="/k/id", ssh_args="-C -o X=1")
SSH = "ssh -o BatchMode=yes -o Compression=no -p 2222 -i /k/id -o X=1"


def test_push_makes_the_folder_as_the_job_user_in_the_same_round_trip() -> None:
    remote = Remote(**{**HOST.__dict__, "become_user": "face swap"})
    got = rsync_argv(["--times"], ["/stage/"], "/opt/j/in/", remote=remote, make_dest=True)
    assert got == [
        "rsync",
        "--times",
        "-e",
        SSH,
        "--rsync-path=sudo -n -u 'face swap' mkdir -p /opt/j/in/ && sudo -n -u 'face swap' rsync",
        "/stage/",
        "opc@gpu-1:/opt/j/in/",
    ]


def test_pull_names_more_sources_of_the_same_host_with_a_colon() -> None:
    got = rsync_argv(["--stats"], ["/o/a.mp4", "/o/a.json"], "/out/", remote=HOST, pull=True)
    assert got == ["rsync", "--stats", "-e", SSH, "opc@gpu-1:/o/a.mp4", ":/o/a.json", "/out/"]


def test_ipv6_host_in_brackets_and_own_connection() -> None:
    remote = Remote(host="2001:db8::1", own_connection=True)
    got = rsync_argv([], ["/w/"], "/h/", remote=remote, timeout=30, check=True)
    assert got == [
        "rsync",
        "--timeout=30",
        "--dry-run",
        "-e",
        "ssh -o BatchMode=yes -o Compression=no -o ControlMaster=no -o ControlPath=none -p 22",
        "/w/",
        "[2001:db8::1]:/h/",
    ]


def test_local_copy_runs_rsync_as_the_job_user() -> None:
    got = rsync_argv(["-a"], ["/s/"], "/d/", remote=Remote(become_user="fs"), extra=["--x"])
    assert got == ["sudo", "-n", "-u", "fs", "rsync", "-a", "--x", "/s/", "/d/"]


def test_the_filter_takes_the_remote_as_a_mapping() -> None:
    got = flt(["--times"], "/o/v.mp4", "/out/", remote={"host": "h", "port": "2200"}, pull="yes")
    assert got[-2:] == ["h:/o/v.mp4", "/out/"] and "-p 2200" in got[3]
    with pytest.raises(ValueError, match=r"remote: unknown keys \['hots'\]"):
        remote_from({"hots": "h"})


def _action(**task_args: Any) -> Any:
    """media_push's action with only what _command reads (no Ansible task around it)."""
    action = object.__new__(media_push.ActionModule)
    defaults = {"become_user": "", "local": True, "io_timeout": 30, "rsync_args": []}
    return action, {**defaults, **task_args}


def test_media_push_check_mode_is_a_dry_run_that_moves_nothing(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    (stage / "a").mkdir(parents=True)
    (stage / "a" / "a.mp4").write_bytes(b"video")
    dest = tmp_path / "host" / "inputs"
    action, args = _action(dest=str(dest))
    argv = action._command(args, str(stage), True)
    assert "--dry-run" in argv
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert media_push.parse_sent(proc.stdout) == {"a/a.mp4": 0}  # named; a dry run sends 0
    assert not (tmp_path / "host").exists()
    # the real run copies it
    proc = subprocess.run(action._command(args, str(stage), False), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (dest / "a" / "a.mp4").read_bytes() == b"video"


def test_media_push_remote_command_keeps_its_transport() -> None:
    action, args = _action(
        dest="/opt/j/inputs",
        local=False,
        become_user="faceswap",
        ssh_host="h",
        ssh_port=22,
        ssh_user="root",
        ssh_key="",
        ssh_args="",
    )
    argv = action._command(args, "/stage", False)
    assert argv[argv.index("-e") + 1] == "ssh -o BatchMode=yes -o Compression=no -p 22"
    rsync_path = next(a for a in argv if a.startswith("--rsync-path="))
    assert shlex.split(rsync_path.split("=", 1)[1])[:6] == [
        "sudo", "-n", "-u", "faceswap", "mkdir", "-p",
    ]  # fmt: skip
    assert argv[-2:] == ["/stage/", "root@h:/opt/j/inputs/"]
    assert "--dry-run" not in argv
    checked = action._command(args, "/stage", True)
    assert "--dry-run" in checked
    assert "mkdir" not in next(a for a in checked if a.startswith("--rsync-path="))
