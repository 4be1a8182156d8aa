"""Verify host_prepare: the unprivileged user, its directories and the OS packages."""

import pytest

JOB = "/opt/faceswap-oci/jobs/molecule"


def test_faceswap_user_is_unprivileged_system_user(host):
    user = host.user("faceswap")
    assert user.exists
    assert user.uid < 1000
    assert user.uid != 0
    assert user.home == "/opt/faceswap-oci"
    assert user.shell == "/usr/sbin/nologin"
    assert "sudo" not in user.groups


@pytest.mark.parametrize(
    "path", ["/opt/faceswap-oci", "/opt/faceswap-oci/jobs", JOB, f"{JOB}/inputs", f"{JOB}/logs"]
)
def test_directories_belong_to_the_user(host, path):
    folder = host.file(path)
    assert folder.is_directory
    assert folder.user == "faceswap"


def test_job_directory_is_private(host):
    assert host.file(JOB).mode == 0o750


@pytest.mark.parametrize(
    "package", ["git", "libgl1", "libglib2.0-0", "python3-tk", "python3-venv", "rsync", "acl"]
)
def test_packages_installed(host, package):
    assert host.package(package).is_installed


def test_tkinter_imports_for_the_user(host):
    cmd = host.run("runuser -u faceswap -- python3 -c 'import tkinter, venv'")
    assert cmd.rc == 0, cmd.stderr
