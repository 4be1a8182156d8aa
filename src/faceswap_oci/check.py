"""`faceswap-oci check`: what a job needs, checked before it runs, one line per item.

Local tools, the OS packages the `local` target needs (installed by ``run`` when it may: as
root or with ``sudo -n``), the OCI config and signer, one read-only API call per service, the
compartment, the GPU limits per availability domain (``plugins/module_utils/oci_preflight.py``:
OCI calls stay in module_utils), the ssh host, the Faceswap source cache and the disk space.
No item's text holds a secret (key, pass phrase, fingerprint).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from faceswap_oci.errors import StateError
from faceswap_oci.ospackages import can_install, install_command, missing_packages
from faceswap_oci.spec import Job, OciTarget, oci_settings
from faceswap_oci.state import default_cache_dir, default_data_dir, default_state_root

LEVELS = ("ok", "warn", "fail")

GiB = 1 << 30
# What a job keeps on the controller beyond its inputs (state, fetched video, preview); the
# `local` target also holds the Faceswap venv (~5 GiB of wheels, measured: docs/performance.md)
# and its job folder (faces, model) there.
CONTROLLER_BASE_BYTES = 1 * GiB
LOCAL_INSTALL_BYTES = 6 * GiB


@dataclass(frozen=True)
class CheckItem:
    name: str
    level: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.level:<4}  {self.name:<22} {self.detail}"
        return f"{text}; fix: {self.fix}" if self.fix else text


# --- the items -------------------------------------------------------------------------------


def _tools(job: Job | None) -> list[CheckItem]:
    items = []
    needed = {
        "git": "the Faceswap source cache",
        "ssh": "ssh and oci targets",
        "rsync": "upload and fetch",
        "ffprobe": "checks the input videos",
        "ffmpeg": "the demo clips",
    }
    kind = job.spec.target.kind if job else None
    for tool, why in needed.items():
        found = shutil.which(tool)
        if tool in ("ffmpeg", "ffprobe") and found is None:
            found = _bundled_ffmpeg(tool)
        if found:
            items.append(CheckItem(f"tool {tool}", "ok", found))
            continue
        hard = tool in ("git", "rsync") or (tool == "ssh" and kind in ("ssh", "oci"))
        package = {"ssh": "openssh-client", "ffprobe": "ffmpeg"}.get(tool, tool)
        items.append(
            CheckItem(
                f"tool {tool}",
                "fail" if hard else "warn",
                f"not found on PATH (needed for {why})",
                f"sudo apt-get install {package}",
            )
        )
    return items


def _bundled_ffmpeg(tool: str) -> str | None:
    if tool != "ffmpeg":
        return None
    from faceswap_oci.demo import _bundled_ffmpeg as bundled

    return bundled()


def local_package_list() -> list[str] | None:
    """The packages host_prepare installs on this machine's OS (its own vars file, so the
    list has one home), less ``acl`` (only for become, which `local` does not use); None when
    this is no Debian or Ubuntu (the role's own command check then applies)."""
    from faceswap_oci.content import content_root
    from faceswap_oci.ospackages import vars_file_names

    for name in vars_file_names():
        path = content_root() / "roles" / "host_prepare" / "vars" / name
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            return [p for p in data.get("_host_prepare_packages", []) if p != "acl"]
    return None


def package_lists() -> dict[str, list[str]]:
    """host_prepare's package list of every Debian/Ubuntu vars file, by file name."""
    from faceswap_oci.content import content_root

    found = {}
    for path in sorted((content_root() / "roles" / "host_prepare" / "vars").glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        if path.name.startswith(("Debian", "Ubuntu")) and "_host_prepare_packages" in data:
            found[path.name] = list(data["_host_prepare_packages"])
    return found


def ensure_local_packages(note: Any = None) -> list[str]:
    """Before a `local` run: install the OS packages it needs when root or ``sudo -n`` may,
    else raise :class:`StateError` (exit 3) listing every missing one and the one command that
    installs them all. Returns what was installed. Takes a second, before anything slow."""
    from faceswap_oci import ospackages

    wanted = local_package_list()
    if not wanted:
        return []
    try:
        return ospackages.ensure(wanted, note)
    except ospackages.PackagesMissing as exc:
        raise StateError(str(exc)) from None


def _packages() -> list[CheckItem]:
    wanted = local_package_list()
    if wanted is None:
        return [CheckItem("os packages", "warn", "not Debian/Ubuntu: the setup checks commands")]
    missing = missing_packages(wanted)
    if not missing:
        return [CheckItem("os packages", "ok", f"{len(wanted)} installed ({', '.join(wanted)})")]
    how = can_install()
    command = f"sudo {' '.join(install_command(missing))}"
    if how:
        return [
            CheckItem(
                "os packages", "warn", f"missing {', '.join(missing)}; run installs them ({how})"
            )
        ]
    return [CheckItem("os packages", "fail", f"missing {', '.join(missing)}", command)]


def _source_cache(job: Job | None) -> list[CheckItem]:
    from faceswap_oci import cache

    repo = cache.source_dir()
    if not (repo / "HEAD").is_file():
        return [
            CheckItem(
                "faceswap source",
                "warn",
                f"{repo} is empty; setup fetches it from GitHub",
                "without GitHub access: faceswap-oci source add /path/to/faceswap",
            )
        ]
    ref = job.spec.faceswap.ref if job else None
    if ref:
        try:
            commit = cache.resolve_ref(ref)
        except cache.CacheError as exc:
            return [CheckItem("faceswap source", "fail", str(exc))]
        return [CheckItem("faceswap source", "ok", f"{repo} has {ref} ({commit[:12]})")]
    return [CheckItem("faceswap source", "ok", str(repo))]


def _ssh(job: Job) -> list[CheckItem]:
    ssh = job.spec.target.ssh
    if job.spec.target.kind != "ssh" or ssh is None:
        return []
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=8", "-p", str(ssh.port)]
    argv += [
        "-o",
        "StrictHostKeyChecking=accept-new"
        if ssh.host_key_checking != "off"
        else "StrictHostKeyChecking=no",
    ]
    if ssh.key:
        key = Path(os.path.expanduser(ssh.key))
        argv += ["-i", str(key if key.is_absolute() else job.source.parent / key)]
    argv += ["--", f"{ssh.user}@{ssh.host}", "true"]
    where = f"{ssh.user}@{ssh.host}:{ssh.port}"
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=20, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [CheckItem("ssh host", "fail", f"{where}: {exc}", "check target.ssh")]
    if done.returncode == 0:
        return [CheckItem("ssh host", "ok", f"{where} answers")]
    reason = (done.stderr.strip().splitlines() or [f"ssh exit {done.returncode}"])[-1]
    return [
        CheckItem(
            "ssh host",
            "fail",
            f"{where}: {reason}",
            "check target.ssh.host/port/user/key and that the host's sshd accepts the key",
        )
    ]


def _disk(job: Job | None, state_root: Path) -> list[CheckItem]:
    need = CONTROLLER_BASE_BYTES
    if job is not None:
        for path in (job.input_a, job.input_b):
            with contextlib.suppress(OSError):  # the fetched video and what the state keeps
                need += path.stat().st_size * 2
    where = state_root
    while not where.exists() and where != where.parent:
        where = where.parent
    items = []
    targets = [("state", where, need)]
    if job is not None and job.spec.target.kind == "local":
        data = default_data_dir()
        while not data.exists() and data != data.parent:
            data = data.parent
        targets.append(("local install", data, LOCAL_INSTALL_BYTES))
    for label, path, bytes_needed in targets:
        free = shutil.disk_usage(path).free
        level = "ok" if free >= bytes_needed else "fail"
        items.append(
            CheckItem(
                f"disk {label}",
                level,
                f"{free / GiB:.1f} GiB free at {path}, the job needs about "
                f"{bytes_needed / GiB:.1f} GiB",
                "" if level == "ok" else f"free space at {path} or choose another --state-dir",
            )
        )
    return items


def preflight_module(oci: OciTarget) -> tuple[Any, dict[str, Any]]:
    """``plugins/module_utils/oci_preflight.py`` (OCI calls live in module_utils; imported
    from the collection path) and the module options for the job's OCI target."""
    from faceswap_oci.runner import collections_path

    path = str(collections_path())
    if path not in sys.path:
        sys.path.append(path)
    from ansible_collections.faceswap_oci.core.plugins.module_utils import (
        oci_preflight,
    )

    settings = oci_settings(oci)
    params = {
        "config_file": settings["config_file"],
        "profile": settings["profile"],
        "auth_type": settings["auth"],
        "region": oci.region,
        "compartment_id": oci.compartment,
        "service_endpoint": oci.service_endpoint,
    }
    return oci_preflight, params


def _oci(job: Job) -> list[CheckItem]:
    oci = job.spec.target.oci
    if job.spec.target.kind != "oci" or oci is None:
        return []
    oci_preflight, params = preflight_module(oci)
    items = [
        CheckItem(i.name, i.level, i.detail, i.fix)
        for i in oci_preflight.check_account(params, list(oci.shapes))
    ]
    if oci.detach:
        items.append(_detach_policy(job))
    return items


def _detach_policy(job: Job) -> CheckItem:
    """A detached job: can its instance end its own billing (docs/detach.md)?"""
    from faceswap_oci import detach

    decision = detach.decide(job)
    assert decision is not None
    level = {"terminate": "ok", "poweroff": "warn"}.get(decision.mode, "fail")
    fix = "" if level == "ok" else f"create the dynamic group and policy:\n{decision.policy}"
    return CheckItem("detach policy", level, " ".join(decision.lines()), fix)


def check(job: Job | None = None, *, state_root: Path | None = None) -> list[CheckItem]:
    """Every check for ``job`` (or, without one, this machine's tools, packages and caches)."""
    root = state_root or default_state_root()
    items = _tools(job)
    if job is None or job.spec.target.kind == "local":
        items += _packages()
    items += _source_cache(job)
    if job is not None:
        items += _ssh(job)
        items += _oci(job)
    items += _disk(job, root)
    if not default_cache_dir().parent.exists():
        items.append(CheckItem("cache", "warn", f"{default_cache_dir()} will be created"))
    return items
