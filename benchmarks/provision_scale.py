"""Provision and tear down many jobs at once against the local OCI API, with 429s injected.

Prints wall time, API calls per job, injected faults, failures and leaks (live tagged resources
left after every teardown). Goal: every job succeeds, 0 leaks.

  .venv/bin/python benchmarks/provision_scale.py --jobs 50 --throttle 0.2
  .venv/bin/python benchmarks/provision_scale.py --jobs 4 --via playbook

``--via module_utils`` (default) runs, per job in a thread, the same module_utils functions the
modules call (network, failover ladder, wait, address, teardown by tag) through the real SDK;
``--via playbook`` runs ``playbooks/provision.yml`` and ``playbooks/teardown.yml`` with
ansible-playbook per job (a process each: keep ``--jobs`` small on a small machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / ".collections")]

import oci  # noqa: E402
from ansible_collections.faceswap_oci.core.plugins.module_utils import (  # noqa: E402
    oci_common,
    oci_launch,
    oci_network,
)

from tests.ociapi.fixtures import COMPARTMENT, TENANCY, write_test_config  # noqa: E402
from tests.ociapi.server import OciApiServer, OciApiState  # noqa: E402


@dataclass
class JobResult:
    name: str
    ok: bool = False
    error: str = ""
    provision_s: float = 0.0
    teardown_s: float = 0.0
    attempts: int = 0
    shape: str = ""
    extras: dict[str, object] = field(default_factory=dict)


def run_job_module_utils(
    name: str, api_url: str, config_file: Path, shapes: list[str]
) -> JobResult:
    res = JobResult(name)
    params = {
        "config_file": str(config_file),
        "profile": "DEFAULT",
        "region": None,
        "service_endpoint": api_url,
        "compartment_id": COMPARTMENT,
        "auth_type": "api_key",
    }
    try:
        _, compute, vn, identity = oci_common.clients_from_params(
            params,
            oci.core.ComputeClient,
            oci.core.VirtualNetworkClient,
            oci.identity.IdentityClient,
        )
        t0 = time.monotonic()
        spec = oci_network.NetworkSpec(
            COMPARTMENT, name, oci_common.job_tags(name), "198.51.100.7/32"
        )
        net = oci_network.ensure_network(vn, spec, check_mode=False, wait=True, wait_timeout=300)
        ads = [a.name for a in oci_common.list_all(identity.list_availability_domains, COMPARTMENT)]
        hints = oci_launch.capacity_hints(compute, TENANCY, ads, shapes)
        rungs = oci_launch.ladder(shapes, ads, False, False, hints)
        launch = oci_launch.LaunchSpec(
            COMPARTMENT,
            name,
            oci_common.job_tags(name),
            net.ids["subnet"] or "",
            "ssh-ed25519 AAAA b",
            100,
            name,
        )
        images = oci_launch.ImageCache(compute, COMPARTMENT, "Oracle Linux 9")
        inst, attempts = oci_launch.run_ladder(compute, launch, rungs, images, hints)
        inst = oci_common.wait_for(
            compute, compute.get_instance, inst.id, ["RUNNING"], 300, fail_states=["TERMINATED"]
        )
        oci_launch.primary_address(compute, vn, COMPARTMENT, inst.id, 300)
        res.provision_s = time.monotonic() - t0
        res.attempts, res.shape = len(attempts), inst.shape
        t1 = time.monotonic()
        owned = oci_network.find_job_resources(compute, vn, COMPARTMENT, name)
        oci_network.remove(compute, vn, owned, check_mode=False, wait_timeout=300)
        res.teardown_s = time.monotonic() - t1
        res.ok = True
    except Exception as exc:  # a benchmark reports every failure and goes on
        res.error = f"{type(exc).__name__}: {exc}"[:300]
    return res


def run_job_playbook(name: str, api_url: str, cfg: object, workdir: Path) -> JobResult:
    from tests.oci.playbook import fake_sshd, job_vars, run_playbook
    from tests.ociapi.fixtures import OciApi

    class _Api:  # the attributes job_vars reads
        url = api_url

    api = _Api()
    api.cfg = cfg  # type: ignore[attr-defined]
    res = JobResult(name)
    state = workdir / name / "state"
    with fake_sshd() as port:
        t0 = time.monotonic()
        up = run_playbook(
            "playbooks/provision.yml",
            job_vars(api, name, state),  # type: ignore[arg-type]
            workdir / name / "up",
            "-e",
            f"oci_instance_ssh_port={port}",
            timeout=600,
        )
        res.provision_s = time.monotonic() - t0
    t1 = time.monotonic()
    down = run_playbook(
        "playbooks/teardown.yml", job_vars(api, name, state), workdir / name / "down", timeout=600
    )  # type: ignore[arg-type]
    res.teardown_s = time.monotonic() - t1
    res.ok = up.rc == 0 and down.rc == 0
    if not res.ok:
        res.error = (up.stdout if up.rc else down.stdout)[-300:]
    del OciApi
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--throttle", type=float, default=0.2, help="probability of a 429 per request")
    ap.add_argument(
        "--no-capacity-ad1", action="store_true", help="first shape has no capacity in AD-1"
    )
    ap.add_argument("--via", choices=["module_utils", "playbook"], default="module_utils")
    ap.add_argument("--workers", type=int, default=0, help="concurrent jobs (default: all at once)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fsoci-bench-") as tmp:
        cfg = write_test_config(Path(tmp) / "oci")
        state = OciApiState(
            tenancy=cfg.tenancy,
            key_id=cfg.key_id,
            public_key=cfg.public_key,
            compartments=[COMPARTMENT],
        )
        state.set_public_ip("127.0.0.1")
        state.faults.provision_s = 0.5
        state.faults.terminate_s = 0.5
        if args.throttle > 0:
            state.faults.throttle(probability=args.throttle)
        shapes = ["VM.GPU.A10.1", "VM.GPU3.1"]
        if args.no_capacity_ad1:
            state.faults.no_capacity(state.availability_domains[0], shapes[0])
        server = OciApiServer(state).start()
        names = [f"bench-{i:03d}" for i in range(args.jobs)]
        started = time.monotonic()
        workers = args.workers or args.jobs
        with ThreadPoolExecutor(max_workers=workers) as pool:
            if args.via == "module_utils":
                futures = [
                    pool.submit(run_job_module_utils, n, server.url, cfg.config_file, shapes)
                    for n in names
                ]
            else:
                futures = [
                    pool.submit(run_job_playbook, n, server.url, cfg, Path(tmp)) for n in names
                ]
            results = [f.result() for f in futures]
        wall = time.monotonic() - started
        leaks = state.live_tagged()
        server.stop()

    calls = sum(state.calls.values())
    ok = [r for r in results if r.ok]
    print(
        f"jobs: {args.jobs} via {args.via}, concurrent: {workers}, 429 probability: {args.throttle}"
    )
    print(f"wall time: {wall:.1f} s")
    if ok:
        print(
            f"provision per job: median {statistics.median(r.provision_s for r in ok):.1f} s, "
            f"max {max(r.provision_s for r in ok):.1f} s; teardown median "
            f"{statistics.median(r.teardown_s for r in ok):.1f} s"
        )
    print(f"API calls: {calls} total, {calls / max(1, args.jobs):.1f} per job (with retries)")
    top = Counter(state.calls).most_common(6)
    print("busiest operations: " + ", ".join(f"{op} {n}" for op, n in top))
    print(
        "faults injected: "
        + (", ".join(f"{s} {c}: {n}" for (s, c), n in state.faults_fired.items()) or "none")
    )
    print(f"signature failures: {state.auth_failures}")
    print(f"succeeded: {len(ok)}/{len(results)}")
    for r in results:
        if not r.ok:
            print(f"  FAILED {r.name}: {r.error}")
    print(f"leaks (live tagged resources after teardown): {len(leaks)}")
    for leak in leaks[:10]:
        print(f"  {leak}")
    return 0 if len(ok) == len(results) and not leaks else 1


if __name__ == "__main__":
    sys.exit(main())
