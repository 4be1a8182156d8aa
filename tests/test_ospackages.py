"""Issue 17, a first run on a fresh machine, at the preflight level: on a fresh test-bed host
(Debian bookworm minbase: no git, python3-tk, python3-venv, libgl1 ...), the `local` target's
package step (src/faceswap_oci/ospackages.py, standard library only, run there with the host's
bare python3) installs what is missing as root and as a user whose `sudo -n` works, and for a
user without sudo says in one message, within seconds, every missing package and the one
command that installs them all. One host for the three users (apt's cache is shared).

Left for later (issue 17's last acceptance item): the README's first command word for word in
such a host (a pip install of faceswap-oci, a Faceswap install and the demo: many minutes)."""

from __future__ import annotations

import base64
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from faceswap_oci import api, spec
from faceswap_oci.errors import StateError
from faceswap_oci.spec import Job
from tests.media import write_pair
from tests.testbed import Host
from tests.testbed.fixtures import SessionTestbed

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "src" / "faceswap_oci" / "ospackages.py"
# the packages the local target needs on Debian: host_prepare's own list, less acl
PACKAGES = [
    p
    for p in yaml.safe_load((ROOT / "roles/host_prepare/vars/Debian.yml").read_text())[
        "_host_prepare_packages"
    ]
    if p != "acl"
]


@pytest.fixture
def fresh_host(testbed: SessionTestbed) -> Iterator[Host]:
    (host,) = testbed.up(1)
    try:
        payload = base64.b64encode(SCRIPT.read_bytes()).decode()
        host.ssh(
            f"echo {payload} | base64 -d > /usr/local/bin/fsoci-packages.py && "
            "useradd -m nosudo && useradd -m sudoer && "
            "echo 'sudoer ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/sudoer && "
            "mkdir -p ~nosudo/.ssh && cp /root/.ssh/authorized_keys ~nosudo/.ssh/ && "
            "chown -R nosudo: ~nosudo/.ssh"
        )
        yield host
    finally:
        testbed.down([host])


def as_user(host: Host, user: str, packages: list[str]) -> tuple[int, str, float]:
    command = ["python3", "/usr/local/bin/fsoci-packages.py", *packages]
    if user != "root":
        command = ["runuser", "-u", user, "--", *command]
    started = time.monotonic()
    done = host.ssh(shlex.join(command), check=False, timeout=900)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def installed(host: Host, package: str) -> bool:
    done = host.ssh(f"dpkg-query -W -f='${{db:Status-Status}}' {package}", check=False)
    return done.stdout.strip() == "installed"


def ssh_job(host: Host, user: str, folder: Path) -> Job:
    write_pair(folder)
    data = {
        "name": "fresh",
        "consent": spec.CONSENT_TEXT,
        "target": {"kind": "ssh", "ssh": {"host": host.address, "user": user, "port": host.port,
                                          "key": host.key_path, "host_key_checking": "off"}},
        "inputs": {"a": "a.mp4", "b": "b.mp4"},
    }  # fmt: skip
    return spec.validate(data, base_dir=folder)


def test_packages_on_a_fresh_host_as_root_sudo_user_and_plain_user(
    fresh_host: Host, tmp_path: Path
) -> None:
    missing = [p for p in PACKAGES if not installed(fresh_host, p)]
    assert {"git", "python3-tk", "python3-venv"} <= set(missing)  # a fresh machine indeed

    code, text, took = as_user(fresh_host, "nosudo", PACKAGES)
    assert code == 3, text
    assert took < 10, took  # seconds, before anything slow
    assert text.count("error:") == 1  # ONE message, naming every missing package
    assert f"faceswap-oci needs the OS package(s) {', '.join(missing)} on this host" in text
    assert f"sudo apt-get install -y --no-install-recommends {' '.join(missing)}" in text

    # the same through the wrapper, for an ssh target whose user has no sudo: one message
    # naming the host, before anything slow
    # (an ssh host's list keeps acl: become to the unprivileged faceswap user needs it)
    missing = ["acl", *missing]
    started = time.monotonic()
    with pytest.raises(StateError) as info:
        api.ensure_host_packages(ssh_job(fresh_host, "nosudo", tmp_path), tmp_path / "state")
    assert time.monotonic() - started < 10
    assert str(info.value).startswith(
        f"target.ssh.host {fresh_host.address}: faceswap-oci needs the OS package(s) "
        f"{', '.join(missing)} on this host"
    )
    assert f"sudo apt-get install -y --no-install-recommends {' '.join(missing)}" in str(info.value)

    # the install paths, each with one small package of the list (the whole list is many MB)
    code, text, _ = as_user(fresh_host, "sudoer", ["python3-venv"])
    assert code == 0, text
    assert "installing the OS package(s) python3-venv (sudo)" in text
    assert installed(fresh_host, "python3-venv")

    code, text, _ = as_user(fresh_host, "root", ["python3-venv", "acl"])
    assert code == 0, text
    assert "installing the OS package(s) acl (root)" in text  # only what is missing
    assert installed(fresh_host, "acl")
    code, text, _ = as_user(fresh_host, "nosudo", ["python3-venv", "acl"])
    assert code == 0 and "installed: -" in text  # nothing left to ask for
