# Copyright: faceswap-oci developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job bucket in OCI Object Storage: typed, pure helpers over ``ObjectStorageClient``.

Each OCI job keeps its snapshots (model, state, preview) and its extracted faces in a private
bucket tagged with the job, or under the job's prefix of a bucket the user names. The VM writes
there through a pre-authenticated request (PAR) scoped to that prefix, never with the user's
key. The PAR's URL is a credential: it is written to a 0600 file for the controller to ship, and
never returned, logged or put in an event.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final

try:
    import oci

    HAS_OCI = True
except ImportError:  # pragma: no cover - reported by the modules
    HAS_OCI = False

from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_common import (
    JOB_TAG,
    job_tags,
    list_all,
)

# Bucket names: letters, numbers, hyphens, underscores and periods, 1 to 256 characters
# (docs.oracle.com/iaas/Content/Object/Tasks/managingbuckets.htm, bucket naming).
BUCKET_NAME_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,256}")
# Object Storage namespaces are lower-case letters and digits (GetNamespace's answer, e.g.
# "axaxnpcrorw5"); the exact rule is not documented, this is what the service hands out.
NAMESPACE_RE: Final = re.compile(r"[a-z0-9]{1,64}")
PAR_PREFIX: Final = "fsoci-"
# The PAR outlives the VM's own watchdog (target.oci.max_hours) by this much, so a job that
# runs to its limit can still push its final snapshot.
PAR_MARGIN_HOURS: Final = 2.0


class StorageInputError(ValueError):
    """A bad option, found before any call; the message names the option and the fix."""


@dataclass(frozen=True)
class JobBucket:
    namespace: str
    bucket: str
    prefix: str
    owned: bool  # created for the job (deleted with it) or the user's own (only the prefix)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_bucket_name(job: str) -> str:
    """The job's own bucket: ``fsoci-<job>``."""
    return f"fsoci-{job}"


def job_prefix(job: str) -> str:
    """Where the job's objects live inside the bucket."""
    return f"jobs/{job}/"


def check_bucket_name(name: str, option: str = "bucket") -> str:
    if not BUCKET_NAME_RE.fullmatch(name):
        raise StorageInputError(
            f"{option}: {name!r} is not a valid bucket name; use 1 to 256 letters, numbers, "
            "hyphens, underscores and periods (e.g. fsoci-demo), or leave it out to let the job "
            "make its own bucket"
        )
    return name


def check_namespace(name: str, option: str = "namespace") -> str:
    if not NAMESPACE_RE.fullmatch(name):
        raise StorageInputError(
            f"{option}: {name!r} is not an Object Storage namespace; leave it out (the "
            "namespace is asked of the service) or copy it from `oci os ns get`"
        )
    return name


def par_expiry(max_hours: float, now: dt.datetime | None = None) -> dt.datetime:
    """When the job's PAR expires: ``max_hours`` plus the margin from now."""
    start = now or dt.datetime.now(dt.UTC)
    return start + dt.timedelta(hours=max_hours + PAR_MARGIN_HOURS)


def par_name(job: str) -> str:
    return f"{PAR_PREFIX}{job}"


def get_namespace(client: Any, namespace: str | None) -> str:
    """The tenancy's namespace: the one given (checked), else asked of the service."""
    if namespace:
        return check_namespace(namespace)
    return str(client.get_namespace(retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY).data)


def ensure_bucket(
    client: Any,
    namespace: str,
    compartment_id: str,
    job: str,
    bucket: str | None,
    check_mode: bool = False,
) -> tuple[JobBucket, bool]:
    """The job's bucket (created private and tagged when the job owns it); (bucket, changed).

    A bucket the user names must exist; then only the job's prefix is touched.
    """
    name = check_bucket_name(bucket) if bucket else default_bucket_name(job)
    found = find_job_bucket(client, namespace, job, bucket)
    if found is not None:
        return found, False
    if bucket:
        raise StorageInputError(
            f"storage.bucket: bucket {bucket!r} was not found in namespace {namespace!r}; "
            "create it first (oci os bucket create --name ...), or leave storage.bucket out to "
            "let the job make its own"
        )
    if not check_mode:
        retry = oci.retry.DEFAULT_RETRY_STRATEGY
        client.create_bucket(
            namespace,
            oci.object_storage.models.CreateBucketDetails(
                name=name,
                compartment_id=compartment_id,
                public_access_type="NoPublicAccess",
                freeform_tags=job_tags(job),
            ),
            retry_strategy=retry,
        )
    return JobBucket(namespace, name, job_prefix(job), True), True


def find_job_bucket(client: Any, namespace: str, job: str, bucket: str | None) -> JobBucket | None:
    """The job's bucket (its own, or the user's ``bucket`` with the job's prefix); None when
    it does not exist."""
    name = bucket or default_bucket_name(job)
    try:
        found = client.get_bucket(
            namespace, name, retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY
        ).data
    except oci.exceptions.ServiceError as exc:
        if exc.status != 404:
            raise
        return None
    owned = (found.freeform_tags or {}).get(JOB_TAG) == job
    return JobBucket(namespace, name, job_prefix(job), owned)


def create_par(client: Any, jb: JobBucket, job: str, expires: dt.datetime) -> tuple[str, str]:
    """A read/write PAR on the job's prefix; (PAR id, full URL). The URL is a credential."""
    par = client.create_preauthenticated_request(
        jb.namespace,
        jb.bucket,
        oci.object_storage.models.CreatePreauthenticatedRequestDetails(
            name=par_name(job),
            object_name=jb.prefix,
            access_type="AnyObjectReadWrite",
            time_expires=expires,
        ),
        retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY,
    ).data
    return str(par.id), str(par.access_uri)


def write_secret(path: str, text: str) -> None:
    """``text`` into ``path``, created 0600 (never readable by others, not even briefly)."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def job_pars(client: Any, jb: JobBucket, job: str) -> list[Any]:
    return [
        p
        for p in list_all(client.list_preauthenticated_requests, jb.namespace, jb.bucket)
        if p.name == par_name(job)
    ]


def delete_pars(client: Any, jb: JobBucket, pars: Iterable[Any]) -> list[str]:
    gone = []
    for p in pars:
        try:
            client.delete_preauthenticated_request(
                jb.namespace, jb.bucket, p.id, retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY
            )
        except oci.exceptions.ServiceError as exc:
            if exc.status != 404:
                raise
        gone.append(str(p.id))
    return gone


def object_names(client: Any, jb: JobBucket) -> list[str]:
    """Every object under the job's prefix (``oci.pagination`` follows nextStartWith)."""
    result = oci.pagination.list_call_get_all_results(
        client.list_objects,
        jb.namespace,
        jb.bucket,
        prefix=jb.prefix,
        retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY,
    ).data
    return [o.name for o in result.objects]


def empty_prefix(client: Any, jb: JobBucket) -> int:
    """Delete every object and uncommitted upload under the job's prefix; how many objects."""
    retry = oci.retry.DEFAULT_RETRY_STRATEGY
    names = object_names(client, jb)
    for name in names:
        try:
            client.delete_object(jb.namespace, jb.bucket, name, retry_strategy=retry)
        except oci.exceptions.ServiceError as exc:
            if exc.status != 404:
                raise
    for up in list_all(client.list_multipart_uploads, jb.namespace, jb.bucket):
        if up.object.startswith(jb.prefix):
            client.abort_multipart_upload(
                jb.namespace, jb.bucket, up.object, up.upload_id, retry_strategy=retry
            )
    return len(names)


def remove_job_storage(
    client: Any, jb: JobBucket, job: str, keep: bool, check_mode: bool = False
) -> dict[str, Any]:
    """Teardown of the job's storage: its PARs always; its objects and (if owned) its bucket
    unless ``keep``, or when the prefix holds nothing (nothing to keep: a job stopped before
    its first snapshot leaves no empty bucket behind). Returns what was (or would be) removed."""
    pars = job_pars(client, jb, job)
    names = object_names(client, jb)
    if not names:
        keep = False
    removed: dict[str, Any] = {"pars": len(pars), "objects": 0, "bucket": None}
    if check_mode:
        removed.update(objects=0 if keep else len(names), bucket=None if keep else jb.bucket)
        return removed
    delete_pars(client, jb, pars)
    if keep:
        return removed
    removed["objects"] = empty_prefix(client, jb)
    if jb.owned:
        client.delete_bucket(
            jb.namespace, jb.bucket, retry_strategy=oci.retry.DEFAULT_RETRY_STRATEGY
        )
        removed["bucket"] = jb.bucket
    return removed


def find_job_buckets(
    client: Any, namespace: str, compartment_id: str, job: str | None
) -> list[dict[str, Any]]:
    """The buckets tagged with ``job`` (any job when None), as sweep lists them."""
    out = []
    for b in list_all(client.list_buckets, namespace, compartment_id, fields=["tags"]):
        tags = b.freeform_tags or {}
        if JOB_TAG in tags and (job is None or tags[JOB_TAG] == job):
            out.append(
                {
                    "kind": "bucket",
                    "id": f"{namespace}/{b.name}",
                    "display_name": b.name,
                    "lifecycle_state": "AVAILABLE",
                    "job": tags[JOB_TAG],
                }
            )
    return out
