"""Wall time of a second `run` of a finished job on a test-bed host, and of a forced re-run.

Boots (or reuses) a test-bed host and runs one whole job on it through the Python API (the
`ssh` target, setup from the controller's caches, the demo clips, a few CPU iterations), as
tests/e2e does. Then, --repeats times each:
  * `run` again: what `faceswap-oci run job.yml` does for a finished job (the phases' stamps
    are current and the fetched video still matches its manifest, so no playbook runs);
  * `run --from setup`: every phase playbook again against the host, which must report 0
    changed tasks and transfer no file.
Prints each wall time, the per-phase split of the forced re-run and the changed count
(goal: a second run < 15 s, 0 changed).

  sudo .venv/bin/python benchmarks/rerun.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import faceswap_oci  # noqa: E402
from faceswap_oci import cache  # noqa: E402
from faceswap_oci import events as ev  # noqa: E402
from faceswap_oci.spec import DEFAULT_FACESWAP_REF  # noqa: E402
from tests.pipeline.jobs import e2e_job_spec  # noqa: E402
from tests.testbed.core import Testbed, TestbedError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed re-runs of each kind")
    parser.add_argument("--host", default="bench-rerun", help="test-bed host name")
    parser.add_argument("--iterations", type=int, default=6)
    args = parser.parse_args()
    try:
        cache.resolve_ref(DEFAULT_FACESWAP_REF)
    except cache.CacheError as exc:
        print(f"skipped: Faceswap source cache lacks the pinned commit: {exc}")
        return 0
    try:
        host = Testbed().up([args.host])[0]
    except TestbedError as exc:
        print(f"skipped: test bed unavailable: {exc}")
        return 0
    with tempfile.TemporaryDirectory(prefix="fsoci-rerun-") as tmp:
        folder = Path(tmp)
        job_file = folder / "job.yml"
        spec = e2e_job_spec("bench-rerun", host.job_target(), args.iterations)
        job_file.write_text(yaml.safe_dump(spec, sort_keys=False))
        job = faceswap_oci.load_job(job_file)
        state = folder / "state"
        start = time.monotonic()
        first = faceswap_oci.run(job, state_root=state)
        if not first.ok:
            print(f"the first run failed: {first.error}")
            return 1
        print(f"first run: {time.monotonic() - start:.0f} s ({', '.join(first.phases_run)})")
        video = job.output_dir / "bench-rerun.mp4"
        mtime = video.stat().st_mtime_ns

        plain: list[float] = []
        for n in range(args.repeats):
            start = time.monotonic()
            again = faceswap_oci.run(job, state_root=state)
            plain.append(time.monotonic() - start)
            print(
                f"run again {n + 1}: {plain[-1] * 1000:.0f} ms, "
                f"phases run {list(again.phases_run)}, {again.changed} changed"
            )
            if not again.ok or again.phases_run:
                print(f"a second run of a finished job ran {again.phases_run}: {again.error}")
                return 1

        forced: list[float] = []
        work: list[float] = []
        for n in range(args.repeats):
            seen: list[ev.Event] = []
            start = time.monotonic()
            again = faceswap_oci.run(
                job, state_root=state, from_phase="setup", on_event=seen.append
            )
            forced.append(time.monotonic() - start)
            if not again.ok:
                print(f"the forced re-run failed: {again.error}")
                return 1
            moved = [
                e.data.get("files_transferred")
                for e in seen
                if isinstance(e, ev.Report) and e.report in {"upload", "results"}
            ]
            split = ", ".join(f"{p} {s:.1f}s" for p, s in again.durations.items())
            work.append(sum(s for p, s in again.durations.items() if p != "setup"))
            print(
                f"run --from setup {n + 1}: {forced[-1]:.1f} s, {again.changed} changed, "
                f"upload files transferred {moved[0]} ({split})"
            )
        assert video.stat().st_mtime_ns == mtime, "the output video was written again"
        print(
            f"second run of a finished job: median {statistics.median(plain) * 1000:.0f} ms"
            "   goal < 15 s"
        )
        print(f"forced re-run of every phase (0 changed): median {statistics.median(forced):.1f} s")
    Testbed().down([args.host])
    return 0


if __name__ == "__main__":
    sys.exit(main())
