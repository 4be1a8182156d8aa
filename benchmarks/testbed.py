"""Figures for the test bed: rootfs build, host up/down, one Molecule scenario.

Run as root from the repository root:

    .venv/bin/python benchmarks/testbed.py          # cached rootfs, up/down x5, molecule
    .venv/bin/python benchmarks/testbed.py --cold   # also a cold rootfs build (~1.5 min)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.testbed import Testbed, TestbedError  # noqa: E402


def _fmt(seconds: list[float]) -> str:
    return (
        f"median {statistics.median(seconds):.2f} s "
        f"(min {min(seconds):.2f}, max {max(seconds):.2f}, n={len(seconds)})"
    )


def cold_build() -> None:
    with tempfile.TemporaryDirectory(prefix="fsoci-bench-", dir="/var/tmp") as tmp:
        bed = Testbed(Path(tmp))
        path, seconds = bed.build()
        size = path.stat().st_size / 1e6
        print(f"rootfs cold build (debootstrap + pack): {seconds:.1f} s, tarball {size:.0f} MB")


def cached_build(bed: Testbed) -> None:
    started = time.monotonic()
    path, seconds = bed.build()
    if seconds is None:
        took = time.monotonic() - started
        size = path.stat().st_size / 1e6
        print(f"rootfs: cached ({path.name}, {size:.0f} MB; lookup {took:.2f} s; --cold to time)")
    else:
        print(f"rootfs: was missing, built in {seconds:.1f} s")


def up_down(bed: Testbed, runs: int) -> None:
    name = f"bench-{os.getpid()}"
    ups, downs, ssh = [], [], []
    for _ in range(runs):
        t0 = time.monotonic()
        (host,) = bed.up([name])
        t1 = time.monotonic()
        host.ssh("true")
        t2 = time.monotonic()
        bed.down([name])
        t3 = time.monotonic()
        ups.append(t1 - t0)
        ssh.append(t2 - t1)
        downs.append(t3 - t2)
    print(f"host up (until sshd answers): {_fmt(ups)}")
    print(f"first ssh command:            {_fmt(ssh)}")
    print(f"host down:                    {_fmt(downs)}")
    names = [f"{name}-{i}" for i in range(3)]
    t0 = time.monotonic()
    bed.up(names)
    t1 = time.monotonic()
    bed.down(names)
    t2 = time.monotonic()
    print(f"3 hosts at once: up {t1 - t0:.2f} s, down {t2 - t1:.2f} s")


def molecule(scenario: str) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}"
    started = time.monotonic()
    proc = subprocess.run(
        ["molecule", "test", "-s", scenario],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.monotonic() - started
    status = "passed" if proc.returncode == 0 else f"FAILED (rc {proc.returncode})"
    print(f"molecule test -s {scenario}: {took:.1f} s, {status}")
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also time a cold rootfs build")
    parser.add_argument("--runs", type=int, default=5, help="up/down repetitions (default 5)")
    parser.add_argument("--scenario", default="testbed_smoke", help="Molecule scenario to time")
    parser.add_argument("--no-molecule", action="store_true", help="skip the Molecule timing")
    args = parser.parse_args()
    bed = Testbed()
    try:
        bed.require()
        print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        if args.cold:
            cold_build()
        cached_build(bed)
        up_down(bed, args.runs)
        if not args.no_molecule:
            molecule(args.scenario)
    except TestbedError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
