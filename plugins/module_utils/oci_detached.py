# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A detached job seen from the controller: where it stands in the cloud, and its results.

Read-only calls with the user's own credentials (not the job's PAR, which expires at
``max_hours`` plus a margin while the results may be collected days later):
``ComputeClient.get_instance`` (the instance's state), and ``ObjectStorageClient.get_object``
of the job's prefix: ``latest.json`` (the latest complete snapshot, fsoci_snapshot.py),
``done.json`` (the agent's marker, fsoci_detached.py) and ``results.json`` with the
``results/<file>`` objects it lists, each checked against its sha256 and size before it is
written to the output folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (
    HAS_OCI,
    clients_from_params,
    error_text,
)

if HAS_OCI:
    import oci


class ResultsError(Exception):
    """The results in the bucket are missing or do not match results.json."""


def _retry() -> Any:
    return oci.retry.DEFAULT_RETRY_STRATEGY


def _get_json(storage: Any, namespace: str, bucket: str, name: str) -> dict[str, Any] | None:
    try:
        data = storage.get_object(namespace, bucket, name, retry_strategy=_retry()).data.content
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            return None
        raise
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def instance_state(compute: Any, instance_id: str, retry: Any = None) -> str:
    """The instance's lifecycle state (``RUNNING``, ``TERMINATED``, ...), or ``gone (not
    found)`` when GetInstance answers 404: the service lists a terminated instance for a while
    and then forgets it (the time is not documented). Other service errors are raised."""
    try:
        found = compute.get_instance(instance_id, retry_strategy=retry or _retry()).data
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            return "gone (not found)"
        raise
    return str(found.lifecycle_state)


def instance_lifecycle(params: Mapping[str, Any], instance_id: str) -> str | None:
    """:func:`instance_state` with one call and no retry (asked again a minute later by the
    runner's preemption check); None when the API did not answer."""
    try:
        _config, compute = clients_from_params(params, oci.core.ComputeClient)
        return instance_state(compute, instance_id, oci.retry.NoneRetryStrategy())
    except Exception:  # no answer is no evidence: the caller asks again later
        return None


def reconcile(
    params: Mapping[str, Any],
    bucket: str,
    prefix: str,
    namespace: str | None,
    instance_id: str | None,
    job: str | None = None,
) -> dict[str, Any]:
    """``{"instance": state, "latest": pointer|None, "done": marker|None, "namespace"}``; a
    call that fails leaves its key's value as ``"unknown (<why>)"``. Without ``instance_id``
    (a controller without the job's state) the job's newest instance is found by its tag."""
    _config, compute, storage = clients_from_params(
        params, oci.core.ComputeClient, oci.object_storage.ObjectStorageClient
    )
    out: dict[str, Any] = {}
    if not instance_id and job:
        try:
            tagged = [
                i
                for i in oci.pagination.list_call_get_all_results(
                    compute.list_instances, str(params["compartment_id"]), retry_strategy=_retry()
                ).data
                if (i.freeform_tags or {}).get("faceswap-oci-job") == job
            ]
        except oci.exceptions.ServiceError as exc:
            tagged = []
            out["instance"] = f"unknown ({error_text(exc)})"
        if tagged:
            newest = max(tagged, key=lambda i: i.time_created)
            instance_id = newest.id
        elif "instance" not in out:
            out["instance"] = "none (no instance tagged with the job)"
    if instance_id:
        out["instance_id"] = instance_id
        try:
            out["instance"] = instance_state(compute, instance_id)
        except oci.exceptions.ServiceError as exc:
            out["instance"] = f"unknown ({error_text(exc)})"
    try:
        ns = namespace or str(storage.get_namespace(retry_strategy=_retry()).data)
        out["namespace"] = ns
        out["latest"] = _get_json(storage, ns, bucket, f"{prefix}latest.json")
        out["done"] = _get_json(storage, ns, bucket, f"{prefix}done.json")
    except Exception as exc:
        out.setdefault("latest", f"unknown ({error_text(exc)})")
        out["done"] = f"unknown ({error_text(exc)})"
    return out


def fetch_results(
    params: Mapping[str, Any],
    namespace: str,
    bucket: str,
    prefix: str,
    dest: Path,
    names: Mapping[str, str],
) -> dict[str, Path]:
    """Download ``results/<name>`` for each ``name -> local file name`` of ``names`` into
    ``dest``, each verified against ``results.json`` (size and sha256) before it replaces the
    local file; returns the paths. Raises ResultsError naming the object and the fix."""
    _config, storage = clients_from_params(params, oci.object_storage.ObjectStorageClient)
    listed = _get_json(storage, namespace, bucket, f"{prefix}results.json")
    if listed is None or not isinstance(listed.get("files"), dict):
        raise ResultsError(
            f"{bucket}/{prefix}results.json is missing: the agent did not finish putting the "
            "results; see the done marker (faceswap-oci status --refresh)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, local in names.items():
        want = listed["files"].get(name)
        if want is None:
            raise ResultsError(f"{bucket}/{prefix}results.json does not list {name}")
        obj = f"{prefix}results/{name}"
        try:
            resp = storage.get_object(namespace, bucket, obj, retry_strategy=_retry())
        except oci.exceptions.ServiceError as exc:
            raise ResultsError(f"GetObject {bucket}/{obj}: {error_text(exc)}") from exc
        target = dest / local
        partial = target.with_name(f".{target.name}.part")
        digest = hashlib.sha256()
        size = 0
        with open(partial, "wb") as fh:
            for chunk in resp.data.raw.stream(1 << 20, decode_content=False):
                fh.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if digest.hexdigest() != want.get("sha256") or size != want.get("size"):
            partial.unlink(missing_ok=True)
            raise ResultsError(
                f"{bucket}/{obj}: sha256 {digest.hexdigest()} ({size} bytes) does not match "
                f"results.json ({want.get('sha256')}, {want.get('size')} bytes); the bucket is "
                "kept: fetch again, or inspect it in the console"
            )
        os.replace(partial, target)
        out[name] = target
    return out
