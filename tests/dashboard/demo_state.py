"""A job state made by a real run: the demo job (`examples/local-cpu.yml`) on this machine's CPU.

Everything lands under one folder: the job file and its demo clips, the state root, the output
and the host root (XDG_DATA_HOME), so nothing is written into the checkout or the user's home.
About 5 minutes on 2 cores (the setup phase installs Faceswap into the fresh host root).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOB_NAME = "local-cpu-demo"


def run_demo(base: Path) -> tuple[Path, str, Path]:
    """Run the demo job under ``base``; return (state_dir, job_name, output_dir)."""
    import faceswap_oci

    base.mkdir(parents=True, exist_ok=True)
    job_file = base / "local-cpu.yml"
    shutil.copyfile(ROOT / "examples" / "local-cpu.yml", job_file)
    previous = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(base / "data")
    try:
        result = faceswap_oci.run(job_file, state_root=base / "state")
    finally:
        if previous is None:
            os.environ.pop("XDG_DATA_HOME", None)
        else:
            os.environ["XDG_DATA_HOME"] = previous
    if not result.ok:
        raise RuntimeError(f"the demo job failed: {result.error}")
    return result.state_dir, result.name, result.output_dir


if __name__ == "__main__":
    print(run_demo(Path(sys.argv[1])))
