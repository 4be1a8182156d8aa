"""Figures for the `faceswap` role: fresh install on a new test-bed host, then its re-runs.

Boots one fresh test-bed host (root, network namespaces; see docs/testing.md), runs
`host_prepare` (OS packages through the test bed's apt proxy; timed apart), then the `faceswap`
role with the CPU backend from the controller's caches (source archive + wheel set, so the
network does not dominate), then the unchanged re-run N times. Prints wall times, bytes
shipped, the venv size and the wheel set's size, and removes the host.

    .venv/bin/python benchmarks/setup.py [--reruns 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from faceswap_oci import cache  # noqa: E402
from tests.faceswap.playbook import PREPARE_PLAY, ROLE_PLAY, run_playbook  # noqa: E402
from tests.testbed import Testbed  # noqa: E402

ROOT = "/opt/faceswap-oci"


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the host running")
    parser.add_argument("--ref", default=os.environ.get("FSOCI_FACESWAP_REF") or "master")
    args = parser.parse_args()

    commit = cache.resolve_ref(args.ref)
    started = time.monotonic()
    wheels = cache.ensure_wheels(commit, "cpu", "3.11", "manylinux_2_28_x86_64")
    wheel_s = time.monotonic() - started
    print(
        f"wheel set {wheels.key}: {wheels.files} wheels, {_gib(wheels.bytes)}; "
        f"{'cached' if wheels.reused else 'downloaded'} "
        f"(pip download took {wheels.download_seconds:.1f} s when made; now {wheel_s:.1f} s)"
    )

    bed = Testbed()
    bed.require()
    name = f"bench-setup-{os.getpid()}"
    started = time.monotonic()
    (host,) = bed.up([name])
    boot_s = time.monotonic() - started
    figures: dict[str, object] = {"commit": commit, "wheel_set_bytes": wheels.bytes}
    try:
        with tempfile.TemporaryDirectory(prefix="fsoci-bench-setup-") as tmp:
            work = Path(tmp)
            inventory = host.ansible_inventory()
            started = time.monotonic()
            prep = run_playbook(PREPARE_PLAY, inventory, work / "prepare")
            prepare_s = time.monotonic() - started
            if prep.rc != 0:
                print(prep.output[-3000:])
                return 1
            role_vars = {
                "faceswap_root": ROOT,
                "faceswap_commit": commit,
                "faceswap_cache_dir": str(cache.cache_root()),
                "faceswap_backend": "cpu",
                "faceswap_wheel_dir": str(wheels.path),
            }
            started = time.monotonic()
            fresh = run_playbook(ROLE_PLAY, inventory, work / "fresh", role_vars)
            fresh_s = time.monotonic() - started
            if fresh.rc != 0:
                print(fresh.output[-3000:])
                return 1
            slowest = sorted(fresh.durations.items(), key=lambda kv: -kv[1])[:6]
            reruns: list[float] = []
            changed: list[int] = []
            for i in range(args.reruns):
                started = time.monotonic()
                again = run_playbook(ROLE_PLAY, inventory, work / f"rerun{i}", role_vars)
                reruns.append(time.monotonic() - started)
                changed.append(sum(again.changed.values()))
                if again.rc != 0:
                    print(again.output[-3000:])
                    return 1
        du = host.ssh(
            f"du -sb {ROOT}/venv {ROOT}/faceswap {ROOT}/wheels && "
            f"cat {ROOT}/logs/pip-install.log | tail -n 1"
        ).stdout.splitlines()
        sizes = {Path(line.split()[1]).name: int(line.split()[0]) for line in du[:3]}
        archive = cache.cache_root() / "archives" / f"faceswap-{commit}.tar.gz"
        shipped = archive.stat().st_size + _size(wheels.path)
        figures.update(
            {
                "host_boot_s": round(boot_s, 1),
                "host_prepare_s": round(prepare_s, 1),
                "role_fresh_s": round(fresh_s, 1),
                "role_rerun_s": [round(s, 2) for s in reruns],
                "role_rerun_median_s": round(statistics.median(reruns), 2) if reruns else None,
                "rerun_changed": changed,
                "bytes_shipped": shipped,
                "source_archive_bytes": archive.stat().st_size,
                "venv_bytes": sizes.get("venv"),
                "faceswap_tree_bytes": sizes.get("faceswap"),
                "host_wheels_bytes": sizes.get("wheels"),
                "fresh_slowest_tasks_s": {task: round(s, 1) for task, s in slowest},
            }
        )
    finally:
        if not args.keep:
            bed.down([name])
    print(f"host boot                {boot_s:6.1f} s")
    print(f"host_prepare (apt)       {prepare_s:6.1f} s")
    print(f"faceswap role, fresh     {fresh_s:6.1f} s  (CPU backend from the local caches)")
    for task, seconds in slowest:
        print(f"  {seconds:6.1f} s  {task}")
    print(f"faceswap role, re-run    {figures['role_rerun_median_s']} s median of {reruns}")
    print(f"  changed per re-run     {changed}")
    print(f"bytes shipped            {_gib(shipped)} (wheel set + source archive)")
    print(f"venv on the host         {_gib(int(figures['venv_bytes'] or 0))}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
