"""Wrapper overhead: the same play run by raw `ansible-playbook` and by `faceswap_oci.run`.

Brings up one test-bed host (root, network namespaces; see docs/testing.md), converges the
`setup` phase once (warm-up: installs Faceswap from the controller's caches), then runs the
idempotent `setup` phase N times each way, interleaved, with the very inventory, extra vars and
environment the wrapper writes, and prints the medians and their ratio (goal: <= 1.05).

    sudo .venv/bin/python benchmarks/wrapper_overhead.py [--runs 5] [--phase setup]
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import faceswap_oci  # noqa: E402
from faceswap_oci.runner import Runner, playbook_path  # noqa: E402
from faceswap_oci.spec import CONSENT_TEXT  # noqa: E402
from tests.media import write_pair  # noqa: E402
from tests.testbed.core import Testbed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--phase", default="setup")
    args = parser.parse_args()

    bed = Testbed()
    bed.require(build=not bed.rootfs_tarball().exists())
    (host,) = bed.up(["bench-wrap"])
    work = Path(tempfile.mkdtemp(prefix="fsoci-bench-"))
    try:
        write_pair(work)  # real clips: `run` probes its inputs before upload
        job_yml = work / "job.yml"
        job_yml.write_text(
            yaml.safe_dump(
                {
                    "name": "bench-wrap",
                    "consent": CONSENT_TEXT,
                    "target": host.job_target(),
                    "inputs": {"a": "a.mp4", "b": "b.mp4"},
                    "faceswap": {"backend": "cpu"},
                }
            )
        )
        state_root = work / "state"
        job = faceswap_oci.load_job(job_yml)
        started = time.monotonic()
        warm = faceswap_oci.run(job, state_root=state_root, only=args.phase)
        print(f"warm-up ({args.phase}, converging the host): {time.monotonic() - started:.1f} s")
        if not warm.ok:
            raise SystemExit(f"warm-up failed: {warm.error}")

        runner = Runner(job, state_root=state_root)
        pdd = runner.state.runner_dir
        env = dict(os.environ, **runner.envvars())
        raw_cmd = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(pdd / "inventory" / "hosts.json"),
            "-e",
            f"@{pdd / 'env' / 'extravars'}",
            str(playbook_path(args.phase)),
        ]
        raw_times: list[float] = []
        wrapped_times: list[float] = []
        for i in range(args.runs):
            t0 = time.monotonic()
            subprocess.run(raw_cmd, env=env, check=True, capture_output=True)
            raw_times.append(time.monotonic() - t0)
            t0 = time.monotonic()
            result = faceswap_oci.run(job, state_root=state_root, only=args.phase)
            wrapped_times.append(time.monotonic() - t0)
            assert result.ok and result.changed == 0, result
            print(
                f"run {i + 1}: ansible-playbook {raw_times[-1]:.2f} s, "
                f"faceswap_oci.run {wrapped_times[-1]:.2f} s"
            )
        raw_median = statistics.median(raw_times)
        wrapped_median = statistics.median(wrapped_times)
        print(f"phase {args.phase!r} on a test-bed host, {args.runs} interleaved runs each")
        print(f"median ansible-playbook:  {raw_median:.2f} s")
        print(f"median faceswap_oci.run: {wrapped_median:.2f} s")
        print(f"ratio (wrapper / raw):   {wrapped_median / raw_median:.3f}  (goal <= 1.05)")
    finally:
        bed.down(["bench-wrap"])


if __name__ == "__main__":
    main()
