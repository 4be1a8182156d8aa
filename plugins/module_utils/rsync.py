# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one rsync command builder: upload (media_push), fetch (results) and the wheel and
weights shipping (faceswap) all run rsync on the controller with the argv built here.

The transport is the same for all: ssh in batch mode, uncompressed (the media, models and wheels
are compressed already; Ansible's default ``-C`` is dropped), its own connection unless the
caller's ssh options say otherwise, the host's rsync run as the job's user through ``sudo -n -u``
when asked, and ``--dry-run`` in check mode, so a checked run reports what would move and moves
nothing. Each use keeps its own transfer options (what to preserve, what to report).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Remote:
    """How rsync reaches the host (``host`` empty: the host is this machine)."""

    host: str = ""
    port: int = 22
    user: str = ""
    key: str = ""
    ssh_args: str = ""
    """Extra ssh options, shell-quoted (Ansible's ssh_args and ansible_ssh_*_args)."""
    become_user: str = ""
    """Run the host's rsync as this user (``sudo -n -u``); empty: as the login user."""
    own_connection: bool = False
    """Open a connection of its own instead of a shared ControlMaster."""

    def where(self) -> str:
        """``[user@]host`` as rsync wants it (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"{self.user}@" if self.user else "") + host


def remote_from(data: dict[str, object]) -> Remote:
    """A :class:`Remote` from a task's mapping (the ``rsync_argv`` filter's ``remote=``)."""
    unknown = set(data) - set(Remote.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"remote: unknown keys {sorted(unknown)}; use {sorted(Remote.__dataclass_fields__)}"
        )
    port = data.get("port") or 22
    return Remote(
        host=str(data.get("host") or ""),
        port=int(port) if isinstance(port, (int, str)) else 22,
        user=str(data.get("user") or ""),
        key=str(data.get("key") or ""),
        ssh_args=str(data.get("ssh_args") or ""),
        become_user=str(data.get("become_user") or ""),
        own_connection=bool(data.get("own_connection")),
    )


def ssh_command(remote: Remote) -> list[str]:
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", "Compression=no"]
    if remote.own_connection:
        ssh += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    ssh += ["-p", str(remote.port)]
    if remote.key:
        ssh += ["-i", remote.key]
    return ssh + [a for a in shlex.split(remote.ssh_args) if a != "-C"]


def rsync_argv(
    options: Sequence[str],
    sources: Sequence[str],
    dest: str,
    *,
    remote: Remote | None = None,
    pull: bool = False,
    make_dest: bool = False,
    timeout: int = 0,
    check: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """rsync's argv: push *sources* (controller paths) to the host's *dest*, or with ``pull``
    bring the host's *sources* to the controller's *dest*. ``make_dest`` creates the host's
    folder in the same round trip (push only). Without a remote host both ends are local."""
    argv = ["rsync", *options]
    if timeout:
        argv.append(f"--timeout={timeout}")
    if check:
        argv.append("--dry-run")
    user = remote.become_user if remote is not None else ""
    run_as = f"sudo -n -u {shlex.quote(user)} " if user else ""
    if remote is None or not remote.host:
        if run_as:
            argv = [*shlex.split(run_as), *argv]
        return [*argv, *extra, *sources, dest]
    argv += ["-e", shlex.join(ssh_command(remote))]
    mkdir = f"{run_as}mkdir -p {shlex.quote(dest)} && " if make_dest and not pull else ""
    if run_as or mkdir:
        argv.append(f"--rsync-path={mkdir}{run_as}rsync")
    argv += extra
    if pull:
        first, *more = sources
        return [*argv, f"{remote.where()}:{first}", *(f":{s}" for s in more), dest]
    return [*argv, *sources, f"{remote.where()}:{dest}"]
