"""Wall time of a second `run` of a finished job: every phase playbook again, nothing to do.

Makes a job on the local target (synthetic inputs, a few iterations), runs upload, extract,
train, convert and fetch once, then times each phase's re-run and prints the changed-task
count (must be 0) and the total (goal < 15 s).

  .venv/bin/python benchmarks/rerun.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from faceswap_oci.demo import make_demo_inputs  # noqa: E402
from tests.pipeline.jobs import PHASES, missing_faceswap, new_job  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="host root with Faceswap")
    parser.add_argument("--repeats", type=int, default=3, help="timed re-runs")
    args = parser.parse_args()
    root, why = missing_faceswap(args.root)
    if why is not None:
        print(f"skipped: {why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="fsoci-rerun-") as tmp:
        work = Path(tmp)
        make_demo_inputs(work / "inputs", frames=32)
        job = new_job(root, work / "job", work / "inputs", "rerun", 3)
        try:
            for phase in PHASES:
                run = job.run(phase)
                if run.rc != 0:
                    print(f"{phase} failed:\n{run.output[-3000:]}")
                    return 1
            totals = []
            for n in range(args.repeats):
                total = 0.0
                parts = []
                for phase in PHASES:
                    start = time.monotonic()
                    run = job.run(phase)
                    took = time.monotonic() - start
                    total += took
                    parts.append(f"{phase} {took:.1f}s/{run.changed} changed")
                    if run.rc != 0:
                        print(f"{phase} failed on re-run:\n{run.output[-3000:]}")
                        return 1
                totals.append(total)
                print(f"re-run {n + 1}: {total:.1f} s  ({', '.join(parts)})")
        finally:
            job.cleanup()
    print(f"best re-run of a finished job: {min(totals):.1f} s   goal < 15 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
