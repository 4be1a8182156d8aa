"""The upload phase vs plain rsync of the same 1 GiB file over the same SSH link, and resume.

Boots (or reuses) a test-bed host, prepares it (host_prepare: the faceswap user and the job
folders), then, interleaved for --rounds rounds, times a plain `rsync` of a random file to the
host and the `upload` phase playbook (rsync run by the role, sha256 verified on both sides) to
a fresh job. Prints both median throughputs and their ratio (goal >= 0.9): on the raw link (a
veth, where 1 GiB takes ~3.5 s and ssh's cipher on 2 cores is the limit) and on the same link
limited with `tc` to --rate (default 400 Mbit/s, a fast WAN uplink to a cloud VM), plus the
phase's fixed cost in seconds, so the ratio for any link speed follows. Then interrupts an
upload half-way (the controller is killed), runs the phase again and prints how many bytes the
resume sent beyond the missing part (goal < 10 % of the file).

  sudo .venv/bin/python benchmarks/upload.py --size-mib 1024
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.pipeline.jobs import PhaseRun  # noqa: E402
from tests.testbed.core import Host, Testbed, TestbedError  # noqa: E402

HOST_ROOT = "/opt/faceswap-oci"


def playbook(inventory: Path, play: str, extra: dict[str, Any], work: Path) -> list[str]:
    vars_file = work / f"vars-{time.monotonic_ns()}.yml"
    vars_file.write_text(yaml.safe_dump(extra))
    return [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        str(inventory),
        play,
        "-e",
        f"@{vars_file}",
    ]


def env() -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def job_vars(name: str, big: Path, small: Path) -> dict[str, Any]:
    return {
        "fsoci": {"name": name, "inputs": {"a": str(big), "b": str(small)}},
        "fsoci_host_root": HOST_ROOT,
        "fsoci_user": "faceswap",
        "fsoci_become": True,
        "fsoci_job_dir": f"{HOST_ROOT}/jobs/{name}",
    }


def prepare(host: Host, inventory: Path, work: Path) -> None:
    play = work / "prepare.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Prepare the host",
                    "hosts": "fsoci_target",
                    "gather_facts": True,
                    "roles": [
                        {
                            "role": "faceswap_oci.core.host_prepare",
                            "vars": {"host_prepare_root": HOST_ROOT},
                        }
                    ],
                }
            ]
        )
    )
    proc = subprocess.run(
        playbook(inventory, str(play), {}, work),
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"host_prepare failed:\n{proc.stdout[-3000:]}")


def plain_rsync(host: Host, big: Path, dest: str) -> float:
    host.ssh(f"rm -rf {dest} && mkdir -p {dest}")
    ssh = " ".join(shlex.quote(a) for a in host.ssh_command()[:-1])
    start = time.monotonic()
    subprocess.run(
        [
            "rsync",
            "--partial",
            "--times",
            "-e",
            ssh,
            str(big),
            f"{host.user}@{host.address}:{dest}/",
        ],
        check=True,
    )
    return time.monotonic() - start


def upload_phase(inventory: Path, work: Path, extra: dict[str, Any]) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(
        playbook(inventory, str(ROOT / "playbooks" / "upload.yml"), extra, work),
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
    )
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"upload phase failed:\n{proc.stdout[-3000:]}")
    return took, proc.stdout


def upload_event(output: str) -> dict[str, Any]:
    (event,) = PhaseRun("upload", 0, output).events("upload")
    return event


def kill_rsync(marker: str) -> None:
    """SIGKILL the controller's rsync (and its ssh) of this upload: a dropped link."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and ("rsync" in cmdline or "ssh" in cmdline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def partial_size(host: Host, dest: str) -> int:
    out = host.ssh(f"find {dest} -name '*big.bin*' -printf '%s\\n' 2>/dev/null", check=False)
    sizes = [int(s) for s in out.stdout.split()]
    return max(sizes, default=0)


def shape(link: str, rate: str | None) -> None:
    """Limit the controller-to-host direction of the link to *rate* (None: no limit)."""
    if rate is None:
        subprocess.run(["tc", "qdisc", "del", "dev", link, "root"], check=False)
        return
    tbf = ["tbf", "rate", rate, "burst", "1mb", "latency", "100ms"]
    subprocess.run(["tc", "qdisc", "replace", "dev", link, "root", *tbf], check=True)


def compare(
    host: Host, inventory: Path, work: Path, big: Path, small: Path, rounds: int, rate: str
) -> None:
    """Interleaved rounds of plain rsync and the upload phase; prints the medians' ratio."""
    size = big.stat().st_size
    plain: list[float] = []
    phase: list[float] = []
    transfer: list[float] = []
    for n in range(rounds):
        plain.append(size / plain_rsync(host, big, "/tmp/plain-rsync") / 1e6)
        name = f"bench-up-{n}"
        host.ssh(f"rm -rf {HOST_ROOT}/jobs/{name}")
        took, output = upload_phase(inventory, work, job_vars(name, big, small))
        phase.append(size / took / 1e6)
        transfer.append(size / upload_event(output)["rsync_seconds"] / 1e6)
        print(
            f"[{rate}] round {n + 1}: plain rsync {plain[-1]:.1f} MB/s, upload phase "
            f"{phase[-1]:.1f} MB/s ({took:.2f} s; its rsync alone {transfer[-1]:.1f} MB/s)"
        )
    m_plain, m_phase = statistics.median(plain), statistics.median(phase)
    m_transfer = statistics.median(transfer)
    fixed = size / 1e6 / m_phase - size / 1e6 / m_transfer
    print(f"[{rate}] median MB/s: plain rsync {m_plain:.1f}, upload phase {m_phase:.1f}")
    print(f"[{rate}] ratio (upload phase / plain rsync): {m_phase / m_plain:.3f}   goal >= 0.9")
    print(
        f"[{rate}] ratio (the phase's rsync alone / plain rsync): {m_transfer / m_plain:.3f}; "
        f"the phase's fixed cost (Ansible's start, the host's sha256): {fixed:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--host", default="bench-upload", help="test-bed host name")
    parser.add_argument(
        "--rate",
        default="400mbit",
        help="also compare on the link limited to this tc rate (a WAN uplink); '' skips it",
    )
    args = parser.parse_args()
    try:
        host = Testbed().up([args.host])[0]
    except TestbedError as exc:
        print(f"skipped: test bed unavailable: {exc}")
        return 0
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="fsoci-upload-") as tmp:
        work = Path(tmp)
        inventory = work / "inventory.yml"
        inventory.write_text(yaml.safe_dump(host.ansible_inventory("fsoci_target")))
        prepare(host, inventory, work)
        big, small = work / "big.bin", work / "small.bin"
        with open(big, "wb") as handle:
            for _ in range(args.size_mib):
                handle.write(os.urandom(1024 * 1024))
        small.write_bytes(b"b" * 1024)
        link = Testbed().link_of(host.name)
        for rate in ["unshaped", *([args.rate] if args.rate else [])]:
            if rate != "unshaped":
                shape(link, rate)
            try:
                compare(host, inventory, work, big, small, args.rounds, rate)
            finally:
                if rate != "unshaped":
                    shape(link, None)

        name = "bench-up-resume"
        dest = f"{HOST_ROOT}/jobs/{name}/inputs/a"
        host.ssh(f"rm -rf {HOST_ROOT}/jobs/{name}")
        extra = job_vars(name, big, small)
        proc = subprocess.Popen(
            playbook(inventory, str(ROOT / "playbooks" / "upload.yml"), extra, work),
            cwd=ROOT,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        while partial_size(host, dest) < size // 2 and proc.poll() is None:
            time.sleep(0.2)
        kill_rsync(f"/jobs/{name}/inputs")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(2)
        kept = partial_size(host, dest)
        _, output = upload_phase(inventory, work, extra)
        sent = upload_event(output)["sides"]["a"]["bytes_sent"]
        resent = max(0, sent - (size - kept))
        print(
            f"interrupted at {kept / size:.0%}: partial kept {kept} bytes; "
            f"resume sent {sent} bytes, "
            f"{resent} beyond the missing part = {resent / size:.1%} of the file   goal < 10 %"
        )
        host.ssh(f"rm -rf {HOST_ROOT}/jobs/bench-up-* /tmp/plain-rsync", check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
