"""Faceswap's training speed under faceswap-oci vs the same command run by hand.

Runs, interleaved for --rounds rounds, (1) `faceswap.py train` by hand with the exact command,
environment and settings the faceswap_train role uses (stdout to a file, `-w` preview), and
(2) the `train` phase playbook on the local target (the supervised unit with polling and the
preview pull-back). Each run's iterations/s is measured from the moment each loss line appears
in its output file (a 20 ms file tail, the same for both), after --warmup iterations, so
model build and start-up time are left out. Prints both medians and their ratio (goal >= 0.98).

  .venv/bin/python benchmarks/train_overhead.py --rounds 3 --iterations 20
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from faceswap_oci.content import module_util  # noqa: E402
from faceswap_oci.demo import make_demo_inputs  # noqa: E402
from tests.pipeline.jobs import Job, missing_faceswap, new_job  # noqa: E402

ITER_RE = re.compile(r"\[#(\d+)\] Loss A")


class Tail(threading.Thread):
    """Record when each iteration's loss line first appears in a growing file."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        offset = 0
        buffer = ""
        while not self.stop.is_set():
            try:
                with open(self.path, encoding="utf-8", errors="replace") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                    offset = handle.tell()
            except OSError:
                chunk = ""
            now = time.monotonic()
            if chunk:
                buffer += chunk
                for match in ITER_RE.finditer(buffer):
                    self.seen.setdefault(int(match.group(1)), now)
                buffer = buffer[-200:]
            time.sleep(0.02)

    def rate(self, warmup: int) -> float:
        iters = sorted(self.seen)
        if len(iters) <= warmup + 1:
            raise RuntimeError(f"only {len(iters)} loss lines in {self.path}")
        first, last = iters[warmup], iters[-1]
        return (last - first) / (self.seen[last] - self.seen[first])


def by_hand(job: Job, work: Path, iterations: int, warmup: int) -> float:
    """The same `faceswap.py train` the role runs, started from a shell-like parent."""
    cfg = json.loads((job.job_dir / "config" / "train.json").read_text())
    model = work / "model"
    shutil.rmtree(model, ignore_errors=True)
    model.mkdir(parents=True)
    shutil.copyfile(cfg["ini_src"], work / "train.ini")
    out = work / "train.out"
    out.unlink(missing_ok=True)
    cmd = module_util("faceswap_cli").train_argv(
        cfg["python"],
        f"{cfg['faceswap_dir']}/faceswap.py",
        faces_a=cfg["faces_a"],
        faces_b=cfg["faces_b"],
        model_dir=str(model),
        trainer=cfg["trainer"],
        batch_size=cfg["batch_size"],
        save_every=cfg["save_every"],
        log=str(work / "train.log"),
        ini=str(work / "train.ini"),
        iterations=iterations,
        preview=True,
    )
    env = dict(os.environ, **{k: str(v) for k, v in cfg["env"].items()})
    tail = Tail(out)
    tail.start()
    with open(out, "ab") as handle:
        subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            check=True,
        )
    time.sleep(0.1)
    tail.stop.set()
    return tail.rate(warmup)


def under_oci(job: Job, iterations: int, warmup: int) -> float:
    """The train phase on a fresh model: supervised unit, polling, preview pull-back."""
    for name in ("model", "logs"):
        shutil.rmtree(job.job_dir / name, ignore_errors=True)
    job.spec["train"]["stop"] = {"iterations": iterations, "hours": None, "plateau_saves": None}
    tail = Tail(job.job_dir / "logs" / "train.out")
    tail.start()
    run = job.run("train", timeout=3600)
    tail.stop.set()
    if run.rc != 0:
        raise RuntimeError(run.output[-3000:])
    return tail.rate(warmup)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--poll-delay", type=int, default=30, help="seconds between polls (the role's default)"
    )
    parser.add_argument("--root", type=Path, default=None, help="host root with Faceswap")
    args = parser.parse_args()
    root, why = missing_faceswap(args.root)
    if why is not None:
        print(f"skipped: {why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="fsoci-bench-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs"
        make_demo_inputs(inputs, frames=64)
        job = new_job(root, work / "job", inputs, "overhead", args.iterations)
        job.spec["train"]["save_every"] = max(5, args.iterations // 2)
        job.extra["faceswap_train_poll_delay"] = args.poll_delay
        try:
            for phase in ("upload", "extract"):
                run = job.run(phase)
                if run.rc != 0:
                    print(run.output[-3000:])
                    return 1
            hand: list[float] = []
            oci: list[float] = []
            for n in range(args.rounds):
                oci.append(under_oci(job, args.iterations, args.warmup))
                hand.append(by_hand(job, work / "hand", args.iterations, args.warmup))
                print(
                    f"round {n + 1}: faceswap-oci {oci[-1]:.4f} it/s, by hand {hand[-1]:.4f} it/s"
                )
        finally:
            job.cleanup()
    m_oci, m_hand = statistics.median(oci), statistics.median(hand)
    print(f"median it/s: faceswap-oci {m_oci:.4f}, by hand {m_hand:.4f}")
    print(f"ratio (faceswap-oci / by hand): {m_oci / m_hand:.3f}   goal >= 0.98")
    return 0


if __name__ == "__main__":
    sys.exit(main())
