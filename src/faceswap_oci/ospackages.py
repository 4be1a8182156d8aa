"""The OS packages a `local` (or any Debian/Ubuntu) target needs: which are missing, and
installing them when this process may (root, or ``sudo -n``), else one message naming every
missing package and the one command that installs them all.

Standard library only, so that it also runs with a bare ``python3`` on a fresh host
(``python3 ospackages.py PACKAGE...``: exit 0 when all are there or were installed, 3 with the
message otherwise); tests/test_ospackages.py does that on fresh test-bed hosts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


class PackagesMissing(Exception):
    """Packages are missing and this process can neither install them nor use ``sudo -n``."""


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        found[key.strip()] = value.strip().strip('"')
    return found


def vars_file_names() -> list[str]:
    """host_prepare's vars files for this OS, most specific first (its own first_found
    order); [] when this is no Debian or Ubuntu with dpkg."""
    release = os_release()
    distro, version = release.get("ID", ""), release.get("VERSION_ID", "").split(".")[0]
    if shutil.which("dpkg-query") is None:
        return []
    return {"debian": ["Debian.yml"], "ubuntu": [f"Ubuntu-{version}.yml"]}.get(distro, [])


def missing_packages(packages: list[str]) -> list[str]:
    """Those of ``packages`` dpkg does not have installed."""
    missing = []
    for package in packages:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or done.stdout.strip() != "installed":
            missing.append(package)
    return missing


def install_command(packages: list[str]) -> list[str]:
    return ["apt-get", "install", "-y", "--no-install-recommends", *packages]


def can_install() -> str | None:
    """How this process may install packages: "root", "sudo" (``sudo -n`` works), or None."""
    if os.geteuid() == 0:
        return "root"
    sudo = shutil.which("sudo")
    if sudo is None:
        return None
    done = subprocess.run(
        [sudo, "-n", "true"], capture_output=True, timeout=10, check=False, stdin=subprocess.DEVNULL
    )
    return "sudo" if done.returncode == 0 else None


def _lists_fresh(lists: Path = Path("/var/lib/apt/lists"), max_age_s: float = 3600.0) -> bool:
    """apt's package lists were updated within the hour (a fresh image has none, or old
    ones: then ``apt-get update`` runs first)."""
    import time

    try:
        stamps = [p.stat().st_mtime for p in lists.iterdir() if p.name.endswith("_Packages")]
    except OSError:
        return False
    return bool(stamps) and time.time() - max(stamps) < max_age_s


def ensure(packages: list[str], note: Callable[[str], None] | None = None) -> list[str]:
    """Install the missing ones of ``packages`` (root or ``sudo -n``), returning them; raise
    :class:`PackagesMissing` naming all of them and the one command otherwise."""
    missing = missing_packages(packages)
    if not missing:
        return []
    command = install_command(missing)
    how = can_install()
    if how is None:
        raise PackagesMissing(
            f"faceswap-oci needs the OS package(s) {', '.join(missing)} on this host, which "
            "are not installed, and this user can neither install them (not root) nor use "
            "`sudo -n`; "
            f"install them all with: sudo {' '.join(command)}"
        )
    prefix = [] if how == "root" else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if note is not None:
        note(f"installing the OS package(s) {', '.join(missing)} ({how})")
    steps = [command] if _lists_fresh() else [["apt-get", "update", "-q"], command]
    for step in steps:
        done = subprocess.run(
            [*prefix, *step], capture_output=True, text=True, env=env, check=False, timeout=900
        )
        if done.returncode != 0 and step is command:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise PackagesMissing(
                f"installing {', '.join(missing)} failed ({tail}); install them with: "
                f"sudo {' '.join(command)}"
            )
    return missing


def main(argv: list[str]) -> int:
    """``PACKAGE...``, or ``--for-os JSON``: {vars file name: packages}, this host's picked as
    host_prepare picks it (nothing to do on an OS without one)."""
    if argv[:1] == ["--for-os"]:
        import json

        lists = json.loads(argv[1])
        names = [n for n in vars_file_names() if n in lists]
        argv = list(lists[names[0]]) if names else []
    try:
        installed = ensure(argv, lambda text: print(text, flush=True))
    except PackagesMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"installed: {' '.join(installed) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
