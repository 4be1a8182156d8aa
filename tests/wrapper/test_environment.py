"""No secret of the user's environment lands on disk: after a real phase (upload on the local
target), every file under the job's state folder holds no variable off the allow-list, by
name or by value, and the artifacts' `command` file lists only allowed names."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import faceswap_oci
from faceswap_oci.runner import env_allowed


def test_only_allowed_variables_reach_the_state_folder(
    xdg: Path, job_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "AWS_SECRET_ACCESS_KEY": f"aws-{uuid.uuid4().hex}",
        "GITHUB_TOKEN": f"ghp_{uuid.uuid4().hex}",
        "OCI_CLI_KEY_CONTENT": f"oci-{uuid.uuid4().hex}",
        "MY_APP_PASSWORD": f"pw-{uuid.uuid4().hex}",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    result = faceswap_oci.run(job_file("envcheck"), only="upload")
    assert result.ok, result.error
    files = [p for p in result.state_dir.rglob("*") if p.is_file()]
    commands = [p for p in files if p.name == "command" and p.parent.parent.name == "artifacts"]
    assert commands, "no ansible-runner artifacts were written"
    for command in commands:
        env = json.loads(command.read_text())["env"]
        assert [k for k in env if not env_allowed(k)] == []
        assert env["FSOCI_RUN_TOKEN"]
    off_list = [k for k in os.environ if not env_allowed(k)]
    assert set(secrets) <= set(off_list)
    for path in files:
        data = path.read_bytes()
        for value in secrets.values():
            assert value.encode() not in data, f"{path} holds a secret's value"
        for name in off_list:
            for form in (f'"{name}":', f"{name}="):
                assert form.encode() not in data, f"{path} names {name}"
