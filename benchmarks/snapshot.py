"""Snapshots to the job bucket: push and restore time of a 500 MB model over a 400 Mbit/s link,
and Faceswap's training speed with snapshots on against off.

1. Starts the local OCI API double (tests/ociapi) with its link shaped to --mbit Mbit/s (the
   double reads request bodies and writes response bodies at that pace), makes the job bucket
   and its PAR through the real SDK, and times `fsoci_snapshot.push_snapshot` of a model folder
   of --mb MB (one weights file, multipart above 128 MiB, plus the state file and a preview),
   then `restore_snapshot` of it into an empty folder (every file's sha256 checked). Prints
   both times and the effective rates next to the link's own time for the bytes.
2. With an installed Faceswap (as benchmarks/train_overhead.py finds one), runs the train phase
   on the local target, interleaved for --rounds rounds, with snapshots on (a save every
   --save-every iterations, each pushed through the PAR) and off, measures iterations/s from
   the loss lines as train_overhead.py does, and prints the ratio (goal >= 0.97). Without an
   installed Faceswap it says so and prints no ratio.

  .venv/bin/python benchmarks/snapshot.py [--mb 500] [--mbit 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.ociapi.fixtures import job_bucket_par, start_ociapi, write_test_config  # noqa: E402
from tests.ociapi.server import OciApiServer  # noqa: E402

PREFIX = "jobs/bench/"


def _snapshot_module() -> ModuleType:
    from tests.unit.test_train_supervisor import load_helper

    return load_helper("fsoci_snapshot.py")


def start_double(work: Path, mbit: float) -> tuple[OciApiServer, str]:
    """The double with its link shaped to ``mbit``; (server, the PAR URL on the job prefix)."""
    api = start_ociapi(write_test_config(work / "oci"))
    url = job_bucket_par(api, "fsoci-bench", PREFIX, hours=2)
    api.state.faults.bandwidth_bps = mbit * 1e6
    return api.server, url


def push_and_restore(work: Path, mb: int, mbit: float) -> dict[str, Any]:
    snap = _snapshot_module()
    server, url = start_double(work, mbit)
    try:
        staged = work / "staged"
        (staged / "model").mkdir(parents=True)
        weights = staged / "model" / "original.keras"
        with open(weights, "wb") as fh:
            for _ in range(mb):
                fh.write(os.urandom(1_000_000))
        (staged / "model" / "original_state.json").write_text('{"iterations": 1000}')
        (staged / "preview.png").write_bytes(os.urandom(300_000))
        size = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
        store = snap.ParStore(url, PREFIX)
        started = time.monotonic()
        snap.push_snapshot(store, staged, 1000, work / "journal")
        push_s = time.monotonic() - started
        started = time.monotonic()
        snap.restore_snapshot(store, work / "restored")
        restore_s = time.monotonic() - started
    finally:
        server.stop()
    return {
        "bytes": size,
        "push_s": push_s,
        "restore_s": restore_s,
        "link_s": size * 8 / (mbit * 1e6),
    }


def training_ratio(work: Path, rounds: int, iterations: int, save_every: int, mbit: float) -> str:
    """it/s with snapshots on / off on the local target, or why it cannot be measured here."""
    from faceswap_oci.demo import make_demo_inputs
    from tests.pipeline.jobs import missing_faceswap, new_job

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_overhead import under_oci

    root, why = missing_faceswap(None)
    if why is not None:
        return f"training ratio not measured: {why}"
    server, url = start_double(work / "double", mbit)
    par_file = work / "storage.par"
    par_file.write_text(url + "\n")
    par_file.chmod(0o600)
    inputs = work / "inputs"
    make_demo_inputs(inputs, frames=64)
    job = new_job(root, work / "job", inputs, "snapshot", iterations)
    job.spec["train"]["save_every"] = save_every
    on: list[float] = []
    off: list[float] = []
    try:
        for phase in ("upload", "extract"):
            run = job.run(phase)
            if run.rc != 0:
                return f"training ratio not measured: {phase} failed: {run.output[-2000:]}"
        for n in range(rounds):
            job.extra.pop("faceswap_train_snapshot_par_src", None)
            off.append(under_oci(job, iterations, 3))
            job.extra["faceswap_train_snapshot_par_src"] = str(par_file)
            # a prefix a round: on a fresh model the train phase restores the job's latest
            # snapshot, so a round on the previous round's prefix would start at its target
            job.extra["faceswap_train_snapshot_prefix"] = f"{PREFIX}round{n + 1}/"
            on.append(under_oci(job, iterations, 3))
            print(f"round {n + 1}: snapshots on {on[-1]:.4f} it/s, off {off[-1]:.4f} it/s")
    finally:
        job.cleanup()
        server.stop()
    ratio = statistics.median(on) / statistics.median(off)
    return f"training it/s, snapshots on / off: {ratio:.3f}   goal >= 0.97"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=500, help="model size in MB")
    parser.add_argument("--mbit", type=float, default=400.0, help="link speed in Mbit/s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--save-every", type=int, default=5)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsoci-bench-snap-") as tmp:
        out = push_and_restore(Path(tmp) / "io", args.mb, args.mbit)
        mb = out["bytes"] / 1e6
        link, push, back = out["link_s"], out["push_s"], out["restore_s"]
        print(f"model: {mb:.1f} MB, link {args.mbit:.0f} Mbit/s (the bytes alone: {link:.1f} s)")
        print(f"snapshot (push, verify, pointer): {push:.1f} s ({mb * 8 / push:.0f} Mbit/s)")
        print(f"restore (download, sha256 check): {back:.1f} s ({mb * 8 / back:.0f} Mbit/s)")
        if not args.skip_training:
            print(
                training_ratio(
                    Path(tmp) / "train", args.rounds, args.iterations, args.save_every, args.mbit
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
