"""Test-bed hosts that look like the OCI images where it matters, made from a normal booted host.

Oracle Linux 9's `/usr/bin/python3` is 3.9 and Ubuntu 22.04's is 3.10, both older than
Faceswap 3 accepts, with a supported `python3.1x` installed beside them. :func:`old_system_python`
gives a booted Debian 12 host that shape: a real CPython 3.9 (or 3.10) from the machine image's
pyenv builds (/root/.pyenv/versions, part of every machine of this kind:
/work/.library/env/machines/python.md), installed the way `make altinstall` lays it out under
/usr/local, with `/usr/bin/python3` pointing at it, and Debian's own python3.11 left beside it.
Nothing of the host's boot or of tests/testbed/core.py changes: it is done over SSH, once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

PYENV = Path("/root/.pyenv/versions")
# Only the interpreter, its shared library and its standard library travel (about 30 MB).
_EXCLUDES = ("test", "__pycache__", "site-packages", "idlelib", "lib2to3/tests", "config-*")


def pyenv_build(minor: str) -> Path:
    """The newest pyenv build of ``minor`` (e.g. "3.9") on this machine."""
    builds = sorted(PYENV.glob(f"{minor}.*"), key=lambda p: [int(x) for x in p.name.split(".")])
    if not builds:
        raise AssertionError(
            f"no pyenv build of Python {minor} under {PYENV}: the machine image carries 3.9 and "
            "3.10 (see /work/.library/env/machines/python.md); on another machine, build one "
            f"with `pyenv install {minor}`"
        )
    return builds[-1]


def old_system_python(host: Any, minor: str = "3.9") -> str:
    """Make ``/usr/bin/python3`` on ``host`` a real Python ``minor``; return its version line."""
    build = pyenv_build(minor)
    lib = f"lib/python{minor}"
    tar = ["tar", "-C", str(build), "-c"]
    tar += [f"--exclude={lib}/{e}" for e in _EXCLUDES]
    tar += [f"bin/python{minor}", f"lib/libpython{minor}.so.1.0", lib]
    # Real images ship their package manager's Python bindings for the system's own Python
    # (python3-dnf on Oracle Linux, python3-apt on Ubuntu), which Ansible's dnf/apt modules
    # import. Here those are Debian's, for python3.11: installed first, while apt's
    # maintainer scripts still find python3.11 at /usr/bin/python3.
    remote = (
        "set -e; DEBIAN_FRONTEND=noninteractive apt-get -qq update </dev/null >/dev/null; "
        "DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends "
        "python3-apt </dev/null >/dev/null; "
        "tar -x -C /usr/local; ldconfig; "
        f"ln -sfn /usr/local/bin/python{minor} /usr/bin/python3; "
        "/usr/bin/python3 -c 'import sys, hashlib, json, pwd; print(sys.version.split()[0])'"
    )
    with subprocess.Popen(tar, stdout=subprocess.PIPE) as packer:
        done = subprocess.run(
            host.ssh_command(remote),
            stdin=packer.stdout,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    if packer.wait() or done.returncode:
        raise AssertionError(
            f"could not install Python {minor} on {host.name}: {done.stderr.strip()}"
        )
    version = done.stdout.strip().splitlines()[-1]
    if not version.startswith(f"{minor}."):
        raise AssertionError(f"/usr/bin/python3 on {host.name} is {version}, not {minor}")
    return version
