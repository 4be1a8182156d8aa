"""OpenMP's wait policy and the CPU time of torch's training on the CPU backend.

The faceswap_* roles run Faceswap on the ``cpu`` backend with ``OMP_WAIT_POLICY=PASSIVE``
(``plugins/module_utils/faceswap_cli.py`` ``faceswap_env``). This prints why: the same training
loop as Faceswap's lean CPU jobs (a conv autoencoder, 64 px, batch 4, Adam), run by --procs
processes at once, first with OpenMP's default policy and then with PASSIVE, each process's CPU
seconds (user + system) and wall time, and the ratios PASSIVE/default. With one process it is
the cost on an idle machine; with several it is a machine that has other work (the ``local``
target is the user's own machine; a test run has several jobs at once).

  .venv/bin/python benchmarks/cpu_wait.py --python /var/tmp/fsdev/venv/bin/python --procs 3
  (any Python with torch: an installed Faceswap's venv, FSOCI_FACESWAP_ROOT/venv/bin/python)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOP = r"""
import json, resource, sys, time
import torch, torch.nn as nn
torch.manual_seed(0)
act = lambda: nn.LeakyReLU(0.1)
enc = nn.Sequential(nn.Conv2d(3, 64, 5, 2, 2), act(), nn.Conv2d(64, 128, 5, 2, 2), act(),
                    nn.Conv2d(128, 256, 5, 2, 2), act(), nn.Conv2d(256, 512, 5, 2, 2), act(),
                    nn.Flatten(), nn.Linear(512 * 16, 512), nn.Linear(512, 512 * 16),
                    nn.Unflatten(1, (512, 4, 4)))
dec = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, 2, 1), act(),
                    nn.ConvTranspose2d(256, 128, 4, 2, 1), act(),
                    nn.ConvTranspose2d(128, 64, 4, 2, 1), act(),
                    nn.ConvTranspose2d(64, 3, 4, 2, 1), nn.Sigmoid())
model = nn.Sequential(enc, dec)
opt = torch.optim.Adam(model.parameters(), 5e-5)
x = torch.rand(4, 3, 64, 64)
start = time.monotonic()
for _ in range(int(sys.argv[1])):
    opt.zero_grad()
    loss = ((model(x) - x) ** 2).mean()
    loss.backward()
    opt.step()
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": time.monotonic() - start, "cpu": use.ru_utime + use.ru_stime,
                  "threads": torch.get_num_threads()}))
"""


def batch(python: str, procs: int, iterations: int, policy: str | None) -> list[dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(LOOP)
    try:
        running = [
            subprocess.Popen(
                [python, fh.name, str(iterations)], env=env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(procs)
        ]
        return [json.loads(p.communicate()[0]) for p in running]
    finally:
        Path(fh.name).unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("FSOCI_FACESWAP_ROOT", "/var/tmp/fsdev")) / "venv/bin/python"
    parser.add_argument("--python", default=str(default), help="a Python with torch")
    parser.add_argument("--procs", type=int, default=3, help="processes at once")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if not Path(args.python).exists():
        print(f"no Python at {args.python}: give --python (a venv with torch)", file=sys.stderr)
        return 2
    print(f"{os.cpu_count()} cores, {args.procs} process(es) at once, {args.iterations} iterations")
    figures: dict[str, list[dict[str, float]]] = {"default": [], "PASSIVE": []}
    for _ in range(args.rounds):
        for name in figures:
            began = time.monotonic()
            policy = None if name == "default" else name
            runs = batch(args.python, args.procs, args.iterations, policy)
            figures[name] += runs
            cpu = statistics.median(r["cpu"] for r in runs)
            wall = statistics.median(r["wall"] for r in runs)
            print(
                f"  {name:8} {runs[0]['threads']:.0f} threads: median {cpu:6.1f} CPU s, "
                f"{wall:6.1f} s wall per process ({time.monotonic() - began:.0f} s in all)"
            )
    med = {
        n: (statistics.median(r["cpu"] for r in v), statistics.median(r["wall"] for r in v))
        for n, v in figures.items()
    }
    print(
        f"PASSIVE/default: CPU time {med['PASSIVE'][0] / med['default'][0]:.2f}x, "
        f"wall time {med['PASSIVE'][1] / med['default'][1]:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
