"""The "Faceswap installed" host image: one real `setup` per test run, shared by every test
that needs an installed host.

The image is a test-bed layer (:meth:`tests.testbed.Testbed.capture`): a plain test-bed host
is first shaped like the default OCI image where Python is concerned (``/usr/bin/python3`` a
real CPython 3.9 with Debian's python3.11 beside it, as on Oracle Linux 9:
:func:`tests.testbed.variants.old_system_python`), then gets the project's own `setup` phase
through the Python API (``faceswap_oci.run(job, only="setup")``, an ``ssh`` target:
host_prepare, nvidia_driver, the controller's source and wheel caches, the faceswap role with
its smoke check, no ``faceswap_python`` anywhere), then it is powered off and its changes are
kept. Hosts booted on the layer start with Faceswap installed at ``/opt/faceswap-oci`` for
the user ``faceswap`` (the ``ssh``/``oci`` layout of docs/contracts.md), so their own `setup`
is the idempotent re-run (about 10 s instead of a few minutes).

The layer is named after what it was made from: the Faceswap commit, the backend's
requirements, the roles and playbook that install it and the test bed's rootfs (its folder).
Without ``FSOCI_TESTBED_REUSE_LAYERS`` it is built once per test run (a layer left by an earlier
run is rebuilt). ``FSOCI_TESTBED_REUSE_LAYERS=1`` keeps a matching layer: ``scripts/test.sh``
(and so CI) sets it, since the name changes with everything the image is made from, so a change
to any of it makes the image again; the local install (tests/faceswap/local.py) still installs
Faceswap for real in every run. Parallel sessions build it once between them (a file lock).

``python -m tests.hostimage ensure`` prints the layer's name, building it only if no matching
layer exists (Molecule's create playbook calls it for scenarios that start from the image, unless
``$FSOCI_TESTBED_LAYER`` already names it, as ``tests/test_molecule.py`` does).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
REUSE_ENV = "FSOCI_TESTBED_REUSE_LAYERS"
LAYER_ENV = "FSOCI_TESTBED_LAYER"
JOB_NAME = "hostimage"
# What installs Faceswap on the host: a change to any of these makes a new image.
RECIPE = (
    "playbooks/setup.yml",
    "playbooks/job_context.yml",
    "playbooks/vars",
    "roles/host_prepare",
    "roles/nvidia_driver",
    "roles/faceswap",
    "src/faceswap_oci/cache.py",
    "tests/testbed/variants.py",
)


@dataclass(frozen=True)
class Image:
    """A built image: its layer name and the record of the setup run that made it."""

    layer: str
    record: dict[str, Any]


def _tree_digest(paths: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for rel in paths:
        base = ROOT / rel
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in files:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def image_key(commit: str, backend: str = "cpu") -> str:
    from faceswap_oci import cache

    requirements = cache.requirements_for(commit, backend).text
    recipe = json.dumps(
        {
            "commit": commit,
            "backend": backend,
            "requirements": requirements,
            "roles": _tree_digest(RECIPE),
        },
        sort_keys=True,
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def pinned_commit() -> str:
    """The pinned Faceswap commit from the source cache; a missing cache fails loudly."""
    from faceswap_oci import cache
    from faceswap_oci.spec import DEFAULT_FACESWAP_REF

    try:
        return cache.resolve_ref(DEFAULT_FACESWAP_REF)
    except cache.CacheError as exc:
        raise RuntimeError(
            f"the Faceswap source cache lacks the pinned commit {DEFAULT_FACESWAP_REF}: {exc}\n"
            "Fill it from a clone: faceswap-oci source add /path/to/faceswap"
        ) from exc


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _record_path(testbed: Any, layer: str) -> Path:
    return Path(testbed.layers_dir) / f"{layer}.json"


def reuse_wanted() -> bool:
    return os.environ.get(REUSE_ENV, "") not in ("", "0", "false", "no")


def ensure_image(session: Any, *, since: float | None = None) -> Image:
    """The installed-host layer, built on *session* (a ``SessionTestbed``) unless one of the
    same key exists that was built at or after *since* (the run's start; None: any age)."""
    testbed = session.testbed
    commit = pinned_commit()
    layer = f"fs-{image_key(commit)}"
    with _build_lock(Path(testbed.layers_dir)):
        record_file = _record_path(testbed, layer)
        if layer in testbed.layers() and record_file.is_file():
            record = json.loads(record_file.read_text())
            fresh = since is None or record.get("built_at", 0) >= since
            in_use = any(
                h.get("layer") == layer for h in testbed.status()["hosts"] if h.get("layer")
            )
            if fresh or in_use:
                return Image(layer, record)
        for stale in testbed.layers():
            if stale.startswith("fs-"):
                with contextlib.suppress(Exception):
                    testbed.drop_layer(stale)
                    _record_path(testbed, stale).unlink(missing_ok=True)
        record = _build(session, commit)
        host = record.pop("_host")
        session.capture(host, layer)
        record_file.write_text(json.dumps(record, indent=2))
        return Image(layer, record)


def _build(session: Any, commit: str) -> dict[str, Any]:
    import faceswap_oci
    from faceswap_oci import events as ev
    from tests.pipeline.jobs import e2e_job_spec
    from tests.testbed.variants import old_system_python

    host = session.up(1)[0]
    started = time.monotonic()
    system_python = old_system_python(host, "3.9")
    with tempfile.TemporaryDirectory(prefix="fsoci-hostimage-") as tmp:
        folder = Path(tmp)
        job_file = folder / "job.yml"
        spec = e2e_job_spec(JOB_NAME, host.job_target(), 1)
        spec["faceswap"]["ref"] = commit
        job_file.write_text(yaml.safe_dump(spec, sort_keys=False))
        job = faceswap_oci.load_job(job_file)
        seen: list[ev.Event] = []
        result = faceswap_oci.run(
            job, only="setup", state_root=folder / "state", on_event=seen.append
        )
        if not result.ok:
            session.down([host])
            raise RuntimeError(f"building the installed-host image failed: {result.error}")
        smoke = host.ssh("cat /opt/faceswap-oci/.fsoci-smoke.json", check=True).stdout
        on_host = host.ssh(
            "readlink -f /opt/faceswap-oci/venv/bin/python; cd /opt/faceswap-oci/faceswap && "
            "runuser -u faceswap -- env $(grep -v '^#' ../faceswap.env | xargs) "
            "../venv/bin/python faceswap.py -h </dev/null | grep -m1 '^usage:'",
            check=True,
        ).stdout.splitlines()
        # The image carries the install, not the builder's job.
        host.ssh(f"rm -rf /opt/faceswap-oci/jobs/{JOB_NAME}", check=True)
        return {
            "_host": host,
            "built_at": time.time(),
            "seconds": round(time.monotonic() - started, 1),
            "commit": commit,
            "phases_run": list(result.phases_run),
            "changed": result.changed,
            "smoke": json.loads(smoke),
            "system_python": system_python,
            "venv_python": on_host[0],
            "faceswap_usage": on_host[1],
            "reports": {
                e.report: e.data
                for e in seen
                if isinstance(e, ev.Report) and e.report in ("faceswap_python", "faceswap_ready")
            },
            "tasks_changed": [
                e.task
                for e in seen
                if isinstance(e, ev.TaskDone) and e.status is ev.TaskStatus.CHANGED
            ],
        }


def main(argv: list[str]) -> int:
    from tests.testbed.core import Testbed
    from tests.testbed.fixtures import SessionTestbed

    if argv != ["ensure"]:
        print("usage: python -m tests.hostimage ensure", file=sys.stderr)
        return 2
    session = SessionTestbed(Testbed())
    try:
        image = ensure_image(session)
    finally:
        session.close()
    print(image.layer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
