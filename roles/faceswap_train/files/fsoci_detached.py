#!/usr/bin/env python3
"""The end of a detached job on its VM (stdlib only): after the stop criteria, convert, put
the results in the job bucket with checksums, write the ``done`` (or ``failed``) marker, then
end the instance's billing. The steps are injected, so the sequence is tested without a
process or a VM (tests/unit/test_detached_agent.py); the marker and the results go through the
job's PAR (fsoci_snapshot.ParStore), and the end of billing is fsoci_terminate.py, installed
by the oci_watchdog role.

The bucket, under the job's prefix, after a detached job:

- ``results/<file>``: the video, its manifest and the final model's snapshot pointer's files
  (``results/model/...``), each verified against the MD5 Object Storage stored;
- ``results.json``: every file's size, sha256 and MD5 (what ``run``/``attach`` verify after
  the fetch);
- ``done.json``: ``{"state": "done"|"trained"|"failed", "step", "reason", "iteration",
  "time"}``, written last: ``done`` means every result above is complete; ``trained`` means
  the training reached its stop criterion and its final snapshot is in the bucket, but the VM
  did not convert (the convert phase does not run on the VM yet: the controller's next
  ``run``/``attach`` provisions again, restores and converts).

Whatever fails, the marker says so and billing is still ended: an agent that stops halfway
must not leave a GPU billing until ``max_hours``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MARKER = "done.json"
RESULTS = "results.json"
STEPS = ("convert", "results", "marker", "end")


class StepFailed(Exception):
    """A step of the end sequence failed; the message says why (never a credential)."""


class _Trained(Exception):
    """No convert on the VM: the sequence ends with the ``trained`` marker."""


def marker(state: str, iteration: int, step: str | None = None, reason: str = "") -> dict[str, Any]:
    """The ``done.json`` body: ``done``, ``trained``, or ``failed`` naming the step and the
    reason."""
    if state not in ("done", "trained", "failed"):
        raise ValueError(f"marker state {state!r}: use done, trained or failed")
    body: dict[str, Any] = {"state": state, "iteration": int(iteration), "time": time.time()}
    if state == "failed":
        body.update(step=step, reason=reason)
    return body


def put_results(
    store: Any, files: Mapping[str, Path], helper: Any, journal_dir: Path
) -> dict[str, Any]:
    """Upload each ``name -> path`` as ``results/<name>``, check the stored MD5 of each, then
    write ``results.json``; returns it. ``helper`` is fsoci_snapshot (its verified upload);
    raises StepFailed naming the file that did not verify."""
    listed: dict[str, Any] = {}
    for name, path in sorted(files.items()):
        if not path.is_file():
            raise StepFailed(f"results: {name} is missing ({path})")
        journal = journal_dir / f"result-{name.replace('/', '_')}.json"
        try:
            listed[name] = helper.put_verified(store, f"results/{name}", path, journal)
        except helper.SnapshotError as exc:
            raise StepFailed(f"results: the stored results/{name} does not match {path}") from exc
    manifest = {"files": listed, "time": time.time()}
    store.put_bytes(RESULTS, json.dumps(manifest, sort_keys=True).encode())
    return manifest


def finish(
    convert: Callable[[], None] | None,
    results: Callable[[], dict[str, Any]],
    put_marker: Callable[[dict[str, Any]], None],
    end_billing: Callable[[], dict[str, Any]],
    iteration: int,
    log: Callable[[str], None] = print,
    failure: str | None = None,
) -> dict[str, Any]:
    """Run the end sequence; returns ``{"marker": ..., "end": ...}``. ``failure`` (the
    training failed) writes a ``failed`` marker for ``train``; ``convert`` None writes
    ``trained`` (nothing converted, no results); a failed convert or results step writes a
    ``failed`` marker naming it; a marker that cannot be written is logged; billing is ended
    in every case (``end_billing`` last)."""
    outcome: dict[str, Any] = {}
    body: dict[str, Any]
    try:
        if failure is not None:
            raise StepFailed(f"train: {failure}")
        if convert is None:
            body = marker("trained", iteration)
            raise _Trained
        try:
            convert()
        except Exception as exc:
            raise StepFailed(f"convert: {exc}") from exc
        outcome["results"] = results()
        body = marker("done", iteration)
    except _Trained:
        pass
    except StepFailed as exc:
        step = str(exc).split(":", 1)[0]
        body = marker("failed", iteration, step, str(exc))
    except Exception as exc:
        body = marker("failed", iteration, "results", f"results: {type(exc).__name__}: {exc}")
    try:
        put_marker(body)
    except Exception as exc:
        log(f"[fsoci] the {body['state']} marker could not be written: {exc}")
        body = {**body, "written": False}
    outcome["marker"] = body
    try:
        outcome["end"] = end_billing()
    except Exception as exc:
        outcome["end"] = {"action": "none", "reason": f"{type(exc).__name__}: {exc}"}
        log(f"[fsoci] ending the instance's billing failed: {exc}")
    return outcome
