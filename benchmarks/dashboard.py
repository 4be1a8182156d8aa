"""Load time of the dashboard's job page for a job with 100,000 iterations of loss history.

Builds a job state folder like a real run's (spec, status, the events of a 6-hour training
with one Progress event every 30 s, and a TensorBoard event file shaped like Faceswap's:
11 scalars per iteration), starts `faceswap-oci dashboard` on it with a fresh cache folder and
times, over HTTP, everything the job page loads (the page, its scripts and styles, the job and
its loss history):
  * cold: the dashboard's first read of the event file;
  * warm: the same dashboard again (median of --repeats);
  * restarted: a new dashboard process, the loss history read from its disk cache;
and, where Debian's chromium and chromium-driver are installed, the time a headless browser
takes from navigation to the loss chart holding every point (restarted and warm).
Goal: the job page loads in under 1 s.

  .venv/bin/python benchmarks/dashboard.py [--steps 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.dashboard.conftest import start_dashboard, stop_dashboard  # noqa: E402
from tests.dashboard.tbfiles import write_session  # noqa: E402

NAME = "bench-100k"


def make_state(root: Path, steps: int) -> None:
    job = root / NAME
    job.mkdir(parents=True)
    spec = {
        "name": NAME,
        "target": {"kind": "local"},
        "output": str(root / "out"),
        "train": {"stop": {"iterations": steps}},
    }
    (job / "spec.json").write_text(json.dumps({"source": str(root / "job.yml"), "spec": spec}))
    (job / "status.json").write_text(
        json.dumps({"state": "finished", "phase": "fetch", "updated": time.time()})
    )
    t0 = time.time() - 6 * 3600
    lines = [{"event": "PhaseStarted", "phase": "train", "playbook": "train.yml", "at": t0}]
    polls = 6 * 3600 // 30
    for n in range(polls):
        data = {"iteration": steps * (n + 1) // polls, "target": steps, "loss_a": 0.05,
                "loss_b": 0.06, "it_per_s": 4.6, "phase": "train", "state": "running"}  # fmt: skip
        lines.append({"event": "Progress", "phase": "train", "data": data, "at": t0 + 30 * n})
    lines.append({"event": "PhaseFinished", "phase": "train", "status": "successful",
                  "changed": 1, "failed": 0, "duration_s": 21600.0, "at": t0 + 21600})  # fmt: skip
    (job / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    write_session(job / "tensorboard" / "original_logs" / "session_1" / "train", 1, steps, start=t0)


def page_load(url: str) -> tuple[float, int]:
    """Seconds to fetch everything the job page loads; the loss points received."""
    started = time.perf_counter()
    for path in (
        f"job/{NAME}",
        "static/app.js",
        "static/app.css",
        "static/uPlot.iife.min.js",
        "static/uPlot.min.css",
        f"api/jobs/{NAME}",
    ):
        with urllib.request.urlopen(url + path) as response:
            response.read()
    with urllib.request.urlopen(f"{url}api/jobs/{NAME}/losses.bin") as response:
        points = int.from_bytes(response.read()[:4], "little")
    return time.perf_counter() - started, points


def browser_load(url: str, steps: int, profile: Path) -> float | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        browser.get("about:blank")
        started = time.perf_counter()
        browser.get(f"{url}job/{NAME}")
        while time.perf_counter() - started < 60:
            points = browser.execute_script(
                "return window.fsociCharts ? window.fsociCharts.loss.data[0].length : 0"
            )
            if points == steps:
                return time.perf_counter() - started
            time.sleep(0.01)
        return None
    finally:
        browser.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="iterations of loss history")
    parser.add_argument("--repeats", type=int, default=5, help="timed warm loads")
    parser.add_argument(
        "--keep", type=Path, help="make the job state here once and reuse it on later runs"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsoci-bench-dashboard-") as tmp:
        base = Path(tmp)
        os.environ["XDG_CACHE_HOME"] = str(base / "cache")
        os.environ.pop("FSOCI_CACHE_DIR", None)
        started = time.perf_counter()
        if args.keep is None:
            make_state(base / "state", args.steps)
        else:
            if not (args.keep / NAME / "spec.json").is_file():
                make_state(args.keep, args.steps)
            (base / "state").symlink_to(args.keep.resolve())
        size = sum(p.stat().st_size for p in (base / "state" / NAME).rglob("events.out.tfevents.*"))
        print(f"state with {args.steps} iterations ({size / 1e6:.1f} MB of TensorBoard events) "
              f"made in {time.perf_counter() - started:.1f} s")  # fmt: skip

        dashboard = start_dashboard(base / "state", "--port", "0", stderr=base / "err1")
        try:
            cold, points = page_load(dashboard.url)
            assert points == args.steps, points
            warm = [page_load(dashboard.url)[0] for _ in range(args.repeats)]
        finally:
            stop_dashboard(dashboard)
        dashboard = start_dashboard(base / "state", "--port", "0", stderr=base / "err2")
        try:
            restarted, _ = page_load(dashboard.url)
        finally:
            stop_dashboard(dashboard)
        dashboard = start_dashboard(base / "state", "--port", "0", stderr=base / "err3")
        try:
            browser_restarted = browser_load(dashboard.url, args.steps, base / "profile1")
            browser_warm = browser_load(dashboard.url, args.steps, base / "profile2")
        finally:
            stop_dashboard(dashboard)
    print(f"job page over HTTP, cold (first read of the event file): {cold:.3f} s")
    print(f"job page over HTTP, warm (median of {args.repeats}): {statistics.median(warm):.3f} s")
    print(f"job page over HTTP, restarted dashboard (disk cache): {restarted:.3f} s")
    if browser_restarted is None:
        print("browser: chromium/chromium-driver not installed; not measured")
    else:
        print(f"browser, navigation to a chart of {args.steps} points, restarted dashboard: "
              f"{browser_restarted:.3f} s; warm: {browser_warm or float('nan'):.3f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
