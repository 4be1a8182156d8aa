"""The faceswap role's failures on a real test-bed host: each names its cause and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceswap_oci import cache
from tests.faceswap.conftest import RoleRunner
from tests.testbed import BRIDGE_ADDRESS, Host

pytestmark = [pytest.mark.testbed, pytest.mark.faceswap]


def test_commit_missing_from_the_source_cache(
    prepared_host: Host, run_role: RoleRunner, faceswap_commit: str
) -> None:
    result = run_role(prepared_host.ansible_inventory(), faceswap_commit="0" * 40)
    assert result.rc != 0
    repo = cache.source_dir()
    assert result.failures == [
        f"faceswap_commit {'0' * 40} is not in the Faceswap source cache at {repo}; run "
        "`faceswap-oci source add <path-or-url>` with a clone that has it, or pick a commit/tag "
        f"from `git -C {repo} tag`."
    ]


def test_commit_must_be_a_full_sha(prepared_host: Host, run_role: RoleRunner) -> None:
    result = run_role(prepared_host.ansible_inventory(), faceswap_commit="master")
    assert result.rc != 0
    assert "faceswap_commit must be a full 40-hex commit sha (got 'master')" in " ".join(
        result.failures
    )


def test_unreachable_git_source(
    prepared_host: Host, run_role: RoleRunner, faceswap_commit: str
) -> None:
    # The test bed's bridge address on the controller: nothing listens on port 9 (discard).
    url = f"http://{BRIDGE_ADDRESS}:9/faceswap.git"
    result = run_role(
        prepared_host.ansible_inventory(),
        faceswap_commit=faceswap_commit,
        faceswap_root="/opt/fsoci-clone",
        faceswap_source_mode="clone",
        faceswap_git_url=url,
        faceswap_git_timeout=10,
    )
    assert result.rc != 0
    (message,) = result.failures
    assert message.startswith(f"{prepared_host.name} cannot reach faceswap_git_url {url} (")
    assert "use faceswap_source_mode bundle" in message


def test_pip_failure_names_the_cause_and_the_log(
    prepared_host: Host, run_role: RoleRunner, faceswap_commit: str, tmp_path: Path
) -> None:
    wheels = tmp_path / "broken-wheelset"
    wheels.mkdir()
    (wheels / "requirements.txt").write_text("fsoci-no-such-package==1.0\n")
    result = run_role(
        prepared_host.ansible_inventory(),
        faceswap_commit=faceswap_commit,
        faceswap_root="/opt/fsoci-pipfail",
        faceswap_wheel_dir=str(wheels),
    )
    assert result.rc != 0
    (message,) = result.failures
    assert message.startswith(
        f"pip could not install the cpu requirements of Faceswap {faceswap_commit[:12]} on "
        f"{prepared_host.name} (exit code 1, from the wheel set broken-wheelset with --no-index);"
        " read /opt/fsoci-pipfail/logs/pip-install.log on the host."
    )
    assert "fsoci-no-such-package" in message
    log = prepared_host.ssh("cat /opt/fsoci-pipfail/logs/pip-install.log").stdout
    assert "No matching distribution found for fsoci-no-such-package" in log


def test_unsupported_python(
    prepared_host: Host, run_role: RoleRunner, faceswap_commit: str
) -> None:
    result = run_role(
        prepared_host.ansible_inventory(),
        faceswap_commit=faceswap_commit,
        faceswap_python="/usr/bin/python3.9",
    )
    assert result.rc != 0
    (message,) = result.failures
    assert message.startswith("faceswap_python '/usr/bin/python3.9' cannot run:")
    assert "\n" not in message.split("Last lines")[0]
    assert "Faceswap needs Python 3.11, 3.12, 3.13" in message


def test_missing_user(prepared_host: Host, run_role: RoleRunner, faceswap_commit: str) -> None:
    result = run_role(
        prepared_host.ansible_inventory(),
        faceswap_commit=faceswap_commit,
        faceswap_user="nobody-here",
    )
    assert result.rc != 0
    assert result.failures == [
        f"faceswap_user 'nobody-here' does not exist on {prepared_host.name}; run the "
        "host_prepare role first (it creates the user) or set faceswap_user to an existing user."
    ]


def test_missing_weights_fail_before_the_install(
    prepared_host: Host, run_role: RoleRunner, faceswap_commit: str
) -> None:
    result = run_role(
        prepared_host.ansible_inventory(),
        faceswap_commit=faceswap_commit,
        faceswap_root="/opt/fsoci-weights",
        faceswap_weights_plugins=["detect.s3fd", "align.fan", "mask.components"],
        faceswap_weights_required=True,
    )
    assert result.rc != 0
    (message,) = result.failures
    assert message.startswith(
        "Faceswap would download face-alignment-network_2d4_v4.pth, s3fd_torch_v3.pth from "
        "GitHub at run time (plugins detect.s3fd, align.fan, mask.components)"
    )
    assert "/opt/fsoci-weights/faceswap/.fs_cache" in message
    assert prepared_host.ssh("test -e /opt/fsoci-weights/venv", check=False).returncode != 0


def test_seeded_weights_satisfy_the_check(
    prepared_host: Host, run_role: RoleRunner, faceswap_commit: str, tmp_path: Path
) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "s3fd_torch_v3.pth").write_bytes(b"w")
    broken = tmp_path / "broken-wheelset"
    broken.mkdir()
    (broken / "requirements.txt").write_text("fsoci-no-such-package==1.0\n")
    result = run_role(
        prepared_host.ansible_inventory(),
        faceswap_commit=faceswap_commit,
        faceswap_root="/opt/fsoci-weights2",
        faceswap_weights_plugins=["detect.s3fd"],
        faceswap_weights_required=True,
        faceswap_weights_dir=str(weights),
        faceswap_wheel_dir=str(broken),
    )
    # The weights check passed: the run got as far as pip (stopped there by the broken set).
    (message,) = result.failures
    assert message.startswith("pip could not install")


def test_unknown_plugin_is_named(
    prepared_host: Host, run_role: RoleRunner, faceswap_commit: str
) -> None:
    result = run_role(
        prepared_host.ansible_inventory(),
        faceswap_commit=faceswap_commit,
        faceswap_weights_plugins=["detect.s3fd", "detect.dlib"],
    )
    (message,) = result.failures
    assert message.startswith("faceswap_weights_plugins has unknown plugin(s) detect.dlib; known:")


def test_check_mode_on_a_fresh_root_predicts_without_writing(
    prepared_host: Host, run_role: RoleRunner, faceswap_commit: str, cpu_wheels: cache.WheelSet
) -> None:
    result = run_role(
        prepared_host.ansible_inventory(),
        check=True,
        faceswap_commit=faceswap_commit,
        faceswap_root="/opt/fsoci-checkmode",
        faceswap_wheel_dir=str(cpu_wheels.path),
        faceswap_ini={"train": {"model.original": {"lowmem": True}}},
    )
    assert result.rc == 0, result.output[-3000:]
    assert result.changed[prepared_host.name] > 0
    assert prepared_host.ssh("test -e /opt/fsoci-checkmode", check=False).returncode != 0
