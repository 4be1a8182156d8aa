"""Object Storage for the local OCI API double (tests/ociapi/server.py).

The slice of Object Storage that the job bucket uses, answered to the real `oci` SDK's
`ObjectStorageClient` (paths and headers as oci/object_storage/object_storage_client.py sends
them: no version prefix, `/n/{namespaceName}/b/{bucketName}/...`) and to plain HTTP clients
holding a pre-authenticated request (the `/p/{token}/n/{namespace}/b/{bucket}/o/{object}` form,
docs.oracle.com/iaas/Content/Object/Tasks/usingpreauthenticatedrequests.htm).

Faithful where our code depends on it, each with its source at the code:
- the namespace call (GetNamespace answers a bare JSON string);
- buckets: create (private: `NoPublicAccess` unless asked), get, list (tags only with
  `fields=tags`), delete (409 while it still holds objects, uncommitted uploads or PARs);
- objects: put, get, head, list by prefix (`start`/`nextStartWith` pagination, `fields`),
  delete, with ETag, `if-match`/`if-none-match` and the Content-MD5 integrity check;
- multipart uploads: create, upload part, list parts, commit (`opc-multipart-md5`), abort;
- PARs: create (the access URI is shown once, never listed), get, list, delete, expiry and
  access type enforced on every use, multipart through the PAR (`opc-multipart: true`).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import re
import secrets
import uuid
from typing import Any, ClassVar
from urllib.parse import unquote

import oci

OS = oci.object_storage.models

# Bucket names: "letters (upper or lower case), numbers, hyphens, underscores, and periods", at
# most 256 characters (docs.oracle.com/iaas/Content/Object/Tasks/managingbuckets.htm, Bucket
# naming). The service's error body for a bad name is not documented; this double answers 400
# InvalidParameter naming the field.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9._-]{1,256}")

# Access types a PAR may carry (PreauthenticatedRequest.access_type's allowed values in
# oci/object_storage/models/preauthenticated_request.py).
_READ = {"ObjectRead", "ObjectReadWrite", "AnyObjectRead", "AnyObjectReadWrite"}
_WRITE = {"ObjectWrite", "ObjectReadWrite", "AnyObjectWrite", "AnyObjectReadWrite"}
_ANY = {"AnyObjectRead", "AnyObjectWrite", "AnyObjectReadWrite"}


class OsError(Exception):
    """An Object Storage error answer: status, service code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _http_date(when: dt.datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


@dataclasses.dataclass
class StoredObject:
    data: bytes
    etag: str
    md5: str | None  # Content-MD5 of a single-part object
    multipart_md5: str | None  # opc-multipart-md5 of a committed multipart upload
    time_created: dt.datetime
    content_type: str
    metadata: dict[str, str]


@dataclasses.dataclass
class Upload:
    model: Any  # OS.MultipartUpload
    parts: dict[int, tuple[bytes, str, str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Par:
    model: Any  # OS.PreauthenticatedRequest (with access_uri)
    token: str
    bucket: str


@dataclasses.dataclass
class Bucket:
    model: Any  # OS.Bucket
    objects: dict[str, StoredObject] = dataclasses.field(default_factory=dict)
    uploads: dict[str, Upload] = dataclasses.field(default_factory=dict)
    pars: dict[str, Par] = dataclasses.field(default_factory=dict)


def _bucket_not_found(name: str) -> OsError:
    # The service's code for a missing bucket (ServiceError.code "BucketNotFound", as the OCI
    # CLI shows it: "Either the bucket named '<name>' does not exist in the namespace ... or you
    # are not authorized to access it").
    return OsError(
        404,
        "BucketNotFound",
        f"Either the bucket named '{name}' does not exist in the namespace or you are not "
        "authorized to access it",
    )


def _object_not_found(bucket: str, name: str) -> OsError:
    return OsError(
        404, "ObjectNotFound", f"The object '{name}' was not found in the bucket '{bucket}'"
    )


def _par_not_found() -> OsError:
    # Using a PAR that expired, was deleted or does not grant the operation: the service does
    # not say which (the exact answer is not documented); this double answers 404
    # NotAuthorizedOrNotFound, the code the API error table gives for "not authorized or not
    # found" (docs.oracle.com/iaas/Content/API/References/apierrors.htm).
    return OsError(
        404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found."
    )


class ObjectStorageState:
    """Every bucket of the fake tenancy's namespace. Called with the API state's lock held."""

    def __init__(self, namespace: str, region: str, compartments: set[str]) -> None:
        self.namespace = namespace
        self.region = region
        self.compartments = compartments
        self.buckets: dict[str, Bucket] = {}
        self.page_size = 1000  # ListObjects' maximum `limit`

    # --- helpers for tests --------------------------------------------------------------
    def object_names(self, bucket: str, prefix: str = "") -> list[str]:
        b = self.buckets.get(bucket)
        return sorted(n for n in (b.objects if b else {}) if n.startswith(prefix))

    def live_tagged(self, tag: str, job: str | None) -> list[dict[str, str]]:
        out = []
        for name, b in self.buckets.items():
            tags = b.model.freeform_tags or {}
            if tag in tags and (job is None or tags[tag] == job):
                out.append(
                    {
                        "id": b.model.id,
                        "kind": "bucket",
                        "state": "AVAILABLE",
                        "job": tags[tag],
                        "name": name,
                    }
                )
        return out

    # --- lookups ------------------------------------------------------------------------------
    def ns(self, namespace: str) -> None:
        if namespace != self.namespace:
            # The code for an unknown namespace is not documented; the service answers 404 for
            # it (as for any name the caller may not see), here with "NamespaceNotFound".
            raise OsError(
                404,
                "NamespaceNotFound",
                f"You do not have authorization to perform this request, or the requested "
                f"resource could not be found (namespace '{namespace}').",
            )

    def bucket(self, namespace: str, name: str) -> Bucket:
        self.ns(namespace)
        b = self.buckets.get(name)
        if b is None:
            raise _bucket_not_found(name)
        return b


class ObjectStorageApi:
    """One request's operations (the API state's lock is held by the caller)."""

    def __init__(
        self,
        st: ObjectStorageState,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Any,
        body: bytes,
        base_url: str,
    ) -> None:
        self.st = st
        self.method = method
        self.path = path
        self.q = query
        self.h = headers
        self.body = body
        self.base_url = base_url

    # Routes: (method, path regex, operation name). Object names may hold '/', sent %-encoded
    # by the SDK and raw by curl; both are decoded.
    ROUTES: ClassVar[list[tuple[str, str, str]]] = [
        ("GET", r"/n/?", "GetNamespace"),
        ("POST", r"/n/(?P<ns>[^/]+)/b/?", "CreateBucket"),
        ("GET", r"/n/(?P<ns>[^/]+)/b/?", "ListBuckets"),
        ("GET", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/?", "GetBucket"),
        ("HEAD", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/?", "HeadBucket"),
        ("DELETE", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/?", "DeleteBucket"),
        ("GET", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/o/?", "ListObjects"),
        ("PUT", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/o/(?P<o>.+)", "PutObject"),
        ("GET", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/o/(?P<o>.+)", "GetObject"),
        ("HEAD", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/o/(?P<o>.+)", "HeadObject"),
        ("DELETE", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/o/(?P<o>.+)", "DeleteObject"),
        ("POST", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/u/?", "CreateMultipartUpload"),
        ("GET", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/u/?", "ListMultipartUploads"),
        ("PUT", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/u/(?P<o>.+)", "UploadPart"),
        ("GET", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/u/(?P<o>.+)", "ListMultipartUploadParts"),
        ("POST", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/u/(?P<o>.+)", "CommitMultipartUpload"),
        ("DELETE", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/u/(?P<o>.+)", "AbortMultipartUpload"),
        ("POST", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/p/?", "CreatePreauthenticatedRequest"),
        ("GET", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/p/?", "ListPreauthenticatedRequests"),
        ("GET", r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/p/(?P<par>.+)", "GetPreauthenticatedRequest"),
        (
            "DELETE",
            r"/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)/p/(?P<par>.+)",
            "DeletePreauthenticatedRequest",
        ),
    ]
    # Through a PAR (no signature): /p/{token}/n/{ns}/b/{bucket}/...
    PAR_ROUTES: ClassVar[list[tuple[str, str, str]]] = [
        ("GET", r"/o/?", "ParListObjects"),
        ("PUT", r"/o/(?P<o>.+)", "ParPutObject"),
        ("GET", r"/o/(?P<o>.+)", "ParGetObject"),
        ("HEAD", r"/o/(?P<o>.+)", "ParHeadObject"),
        ("PUT", r"/u/(?P<o>.+)/id/(?P<up>[^/]+)/(?P<part>\d+)", "ParUploadPart"),
        ("POST", r"/u/(?P<o>.+)/id/(?P<up>[^/]+)/?", "ParCommitMultipartUpload"),
        ("DELETE", r"/u/(?P<o>.+)/id/(?P<up>[^/]+)/?", "ParAbortMultipartUpload"),
    ]

    @classmethod
    def route(cls, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """The operation name and path parameters of a request, or None."""
        if path.startswith("/p/"):
            m = re.fullmatch(r"/p/(?P<tok>[^/]+)/n/(?P<ns>[^/]+)/b/(?P<b>[^/]+)(?P<rest>/.*)", path)
            if m is None:
                return None
            for verb, pattern, op in cls.PAR_ROUTES:
                if verb == method and (r := re.fullmatch(pattern, m["rest"])):
                    params = {k: v for k, v in m.groupdict().items() if k != "rest"}
                    params.update(r.groupdict())
                    return op, {k: unquote(v) for k, v in params.items()}
            return None
        for verb, pattern, op in cls.ROUTES:
            if verb == method and (m := re.fullmatch(pattern, path)):
                return op, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def call(self, op: str, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """(status, body, headers): body is JSON-able, bytes (object data) or None."""
        name = re.sub(r"(?<!^)([A-Z])", r"_\1", op).lower()
        handler = getattr(self, "op_" + name)
        result: tuple[int, Any, dict[str, str]] = handler(p)
        return result

    # --- namespace, buckets ---------------------------------------------------------------------
    def op_get_namespace(self, _p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        # GetNamespace: response_type "str" (ObjectStorageClient.get_namespace): a JSON string.
        return 200, self.st.namespace, {}

    def op_create_bucket(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        self.st.ns(p["ns"])
        d = _from_wire(self.body, "CreateBucketDetails")
        if not d.name or not _BUCKET_NAME.fullmatch(d.name):
            raise OsError(
                400,
                "InvalidParameter",
                f"Invalid bucket name '{d.name}': use 1 to 256 letters, numbers, hyphens, "
                "underscores and periods.",
            )
        if d.compartment_id not in self.st.compartments:
            raise OsError(
                404,
                "NotAuthorizedOrNotFound",
                "Authorization failed or requested resource not found.",
            )
        if d.name in self.st.buckets:
            raise OsError(
                409,
                "BucketAlreadyExists",
                f"Either the bucket '{d.name}' in namespace "
                f"'{self.st.namespace}' already exists or you are not authorized to create it",
            )
        bucket = OS.Bucket(
            namespace=self.st.namespace,
            name=d.name,
            compartment_id=d.compartment_id,
            metadata=d.metadata or {},
            created_by="ocid1.user.oc1..test",
            time_created=_now(),
            etag=uuid.uuid4().hex,
            # CreateBucketDetails.public_access_type defaults to NoPublicAccess.
            public_access_type=d.public_access_type or "NoPublicAccess",
            storage_tier=d.storage_tier or "Standard",
            object_events_enabled=bool(d.object_events_enabled),
            freeform_tags=d.freeform_tags or {},
            defined_tags=d.defined_tags or {},
            versioning="Disabled",
            id=f"ocid1.bucket.oc1.{self.st.region}.{uuid.uuid4().hex}",
            approximate_count=None,
            approximate_size=None,
        )
        self.st.buckets[d.name] = Bucket(bucket)
        return 200, _to_wire(bucket), {"etag": bucket.etag, "location": f"/n/{p['ns']}/b/{d.name}"}

    def op_list_buckets(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        self.st.ns(p["ns"])
        comp = self.q.get("compartmentId")
        if comp not in self.st.compartments:
            raise OsError(
                404,
                "NotAuthorizedOrNotFound",
                "Authorization failed or requested resource not found.",
            )
        # ListBuckets' `fields`: "Bucket summary in list of buckets includes the 'namespace',
        # 'name', 'compartmentId', 'createdBy', 'timeCreated', and 'etag' fields. This
        # parameter can also include 'tags'" (ObjectStorageClient.list_buckets).
        with_tags = "tags" in (self.q.get("fields") or "").split(",")
        names = sorted(n for n, b in self.st.buckets.items() if b.model.compartment_id == comp)
        limit = min(int(self.q.get("limit") or 1000), 1000)
        start = names.index(self.q["page"]) if self.q.get("page") in names else 0
        chunk = names[start : start + limit]
        headers = {}
        if start + limit < len(names):
            headers["opc-next-page"] = names[start + limit]
        out = []
        for n in chunk:
            m = self.st.buckets[n].model
            out.append(
                OS.BucketSummary(
                    namespace=m.namespace,
                    name=m.name,
                    compartment_id=m.compartment_id,
                    created_by=m.created_by,
                    time_created=m.time_created,
                    etag=m.etag,
                    freeform_tags=m.freeform_tags if with_tags else None,
                    defined_tags=m.defined_tags if with_tags else None,
                )
            )
        return 200, _to_wire(out), headers

    def op_get_bucket(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        fields = (self.q.get("fields") or "").split(",")
        b.model.approximate_count = len(b.objects) if "approximateCount" in fields else None
        b.model.approximate_size = (
            sum(len(o.data) for o in b.objects.values()) if "approximateSize" in fields else None
        )
        return 200, _to_wire(b.model), {"etag": b.model.etag}

    def op_head_bucket(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        return 200, None, {"etag": b.model.etag}

    def op_delete_bucket(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        # "Before you can delete a bucket, it must be empty: delete its objects, uncommitted
        # multipart uploads and pre-authenticated requests" (managingbuckets.htm, Deleting a
        # Bucket); the service answers 409 BucketNotEmpty.
        if b.objects or b.uploads or b.pars:
            what = ", ".join(
                f"{len(v)} {k}"
                for k, v in (
                    ("objects", b.objects),
                    ("uncommitted uploads", b.uploads),
                    ("PARs", b.pars),
                )
                if v
            )
            raise OsError(
                409,
                "BucketNotEmpty",
                f"Bucket named '{p['b']}' is not empty ({what}). Delete all objects first.",
            )
        del self.st.buckets[p["b"]]
        return 204, None, {}

    # --- objects ----------------------------------------------------------------------------------
    def _check_md5(self, data: bytes) -> str:
        md5 = _md5_b64(data)
        sent = self.h.get("content-md5")
        if sent is not None and sent != md5:
            # PutObject / UploadPart's content_md5: "If the two hashes do not match, the object
            # is rejected and an HTTP-400 Unmatched Content MD5 error is returned with the
            # message: 'The computed MD5 of the request body (ACTUAL_MD5) does not match the
            # Content-MD5 header (HEADER_MD5)'" (ObjectStorageClient.put_object).
            raise OsError(
                400,
                "UnmatchedContentMD5",
                f"The computed MD5 of the request body ({md5}) does not match the Content-MD5 "
                f"header ({sent})",
            )
        return md5

    def _check_conditions(self, b: Bucket, name: str) -> None:
        current = b.objects.get(name)
        if_match = self.h.get("if-match")
        if_none = self.h.get("if-none-match")
        if if_match is not None and (current is None or current.etag != if_match):
            raise OsError(
                412,
                "IfMatchFailed",
                f"The If-Match header value '{if_match}' does "
                f"not match the ETag of object '{name}'",
            )
        if if_none == "*" and current is not None:
            raise OsError(412, "IfNoneMatchFailed", f"The object '{name}' already exists")

    def _store(self, b: Bucket, name: str, data: bytes) -> dict[str, str]:
        md5 = self._check_md5(data)
        self._check_conditions(b, name)
        meta = {k[9:]: v for k, v in self.h.items() if k.lower().startswith("opc-meta-")}
        obj = StoredObject(
            data=data,
            etag=str(uuid.uuid4()),
            md5=md5,
            multipart_md5=None,
            time_created=_now(),
            content_type=self.h.get("content-type") or "application/octet-stream",
            metadata=meta,
        )
        b.objects[name] = obj
        return {"etag": obj.etag, "content-md5": md5, "last-modified": _http_date(obj.time_created)}

    def _object_headers(self, o: StoredObject) -> dict[str, str]:
        headers = {
            "etag": o.etag,
            "last-modified": _http_date(o.time_created),
            "content-type": o.content_type,
            "content-length": str(len(o.data)),
            "archival-state": "Available",
        }
        if o.md5 is not None:
            headers["content-md5"] = o.md5
        if o.multipart_md5 is not None:
            headers["opc-multipart-md5"] = o.multipart_md5
        for k, v in o.metadata.items():
            headers[f"opc-meta-{k}"] = v
        return headers

    def _get_object(self, b: Bucket, name: str, head: bool) -> tuple[int, Any, dict[str, str]]:
        o = b.objects.get(name)
        if o is None:
            raise _object_not_found(b.model.name, name)
        if_none = self.h.get("if-none-match")
        if if_none is not None and if_none == o.etag:
            return 304, None, {"etag": o.etag}
        return 200, None if head else o.data, self._object_headers(o)

    def op_put_object(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        return 200, None, self._store(b, p["o"], self.body)

    def op_get_object(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return self._get_object(self.st.bucket(p["ns"], p["b"]), p["o"], head=False)

    def op_head_object(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return self._get_object(self.st.bucket(p["ns"], p["b"]), p["o"], head=True)

    def op_delete_object(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        o = b.objects.get(p["o"])
        if o is None:
            raise _object_not_found(p["b"], p["o"])
        if_match = self.h.get("if-match")
        if if_match is not None and if_match != o.etag:
            raise OsError(
                412,
                "IfMatchFailed",
                f"The If-Match header value '{if_match}' does "
                f"not match the ETag of object '{p['o']}'",
            )
        del b.objects[p["o"]]
        return 204, None, {"last-modified": _http_date(_now())}

    def _list_objects(self, b: Bucket) -> tuple[int, Any, dict[str, str]]:
        prefix = self.q.get("prefix") or ""
        start = self.q.get("start")
        end = self.q.get("end")
        delimiter = self.q.get("delimiter")
        # ListObjects' `limit` is at most 1000 (ObjectStorageClient.list_objects).
        limit = min(int(self.q.get("limit") or self.st.page_size), self.st.page_size, 1000)
        # `fields`: "name is always included"; size, etag, md5, timeCreated only when asked.
        fields = set((self.q.get("fields") or "name").split(","))
        names = sorted(n for n in b.objects if n.startswith(prefix))
        names = [n for n in names if (start is None or n >= start) and (end is None or n < end)]
        objects, prefixes = [], set()
        for n in names:
            if delimiter:
                rest = n[len(prefix) :]
                if delimiter in rest:
                    prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
                    continue
            objects.append(n)
        page, more = objects[:limit], objects[limit:]
        out = []
        for n in page:
            o = b.objects[n]
            out.append(
                OS.ObjectSummary(
                    name=n,
                    size=len(o.data) if "size" in fields else None,
                    etag=o.etag if "etag" in fields else None,
                    md5=(o.md5 or o.multipart_md5) if "md5" in fields else None,
                    time_created=o.time_created if "timeCreated" in fields else None,
                )
            )
        result = OS.ListObjects(
            objects=out,
            prefixes=sorted(prefixes) or None,
            next_start_with=more[0] if more else None,
        )
        return 200, _to_wire(result), {}

    def op_list_objects(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return self._list_objects(self.st.bucket(p["ns"], p["b"]))

    # --- multipart ---------------------------------------------------------------------------
    def _upload(self, b: Bucket, name: str, upload_id: str | None) -> Upload:
        up = b.uploads.get(upload_id or "")
        if up is None or up.model.object != name:
            raise OsError(
                404,
                "NoSuchUpload",
                f"The upload ID '{upload_id}' for object '{name}' in bucket '{b.model.name}' "
                "was not found",
            )
        return up

    def _new_upload(self, b: Bucket, name: str) -> Upload:
        up = Upload(
            OS.MultipartUpload(
                namespace=self.st.namespace,
                bucket=b.model.name,
                object=name,
                upload_id=str(uuid.uuid4()),
                time_created=_now(),
                storage_tier="Standard",
            )
        )
        b.uploads[up.model.upload_id] = up
        return up

    def op_create_multipart_upload(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        d = _from_wire(self.body, "CreateMultipartUploadDetails")
        up = self._new_upload(b, d.object)
        return 200, _to_wire(up.model), {"location": f"/n/{p['ns']}/b/{p['b']}/u/{d.object}"}

    def op_list_multipart_uploads(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        return 200, _to_wire([u.model for u in b.uploads.values()]), {}

    def _put_part(self, up: Upload, num: int) -> dict[str, str]:
        # upload_part_num: "Part numbers can be from 1 to 10,000" (ObjectStorageClient.upload_part).
        if not 1 <= num <= 10000:
            raise OsError(400, "InvalidParameter", f"uploadPartNum {num} is not in 1..10000")
        md5 = self._check_md5(self.body)
        etag = str(uuid.uuid4())
        up.parts[num] = (self.body, etag, md5)
        return {"etag": etag, "opc-content-md5": md5}

    def op_upload_part(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        up = self._upload(b, p["o"], self.q.get("uploadId"))
        return 200, None, self._put_part(up, int(self.q.get("uploadPartNum") or 0))

    def op_list_multipart_upload_parts(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        up = self._upload(b, p["o"], self.q.get("uploadId"))
        nums = sorted(up.parts)
        limit = min(int(self.q.get("limit") or 1000), 1000)
        start = int(self.q.get("page") or 0)
        chunk = nums[start : start + limit]
        headers = {}
        if start + limit < len(nums):
            headers["opc-next-page"] = str(start + limit)
        out = [
            OS.MultipartUploadPartSummary(
                etag=up.parts[n][1], md5=up.parts[n][2], size=len(up.parts[n][0]), part_number=n
            )
            for n in chunk
        ]
        return 200, _to_wire(out), headers

    def _commit(self, b: Bucket, up: Upload, parts: list[tuple[int, str]]) -> dict[str, str]:
        if not parts:
            raise OsError(400, "InvalidParameter", "partsToCommit must name at least one part")
        data = []
        digests = b""
        for num, etag in sorted(parts):
            have = up.parts.get(num)
            if have is None or have[1] != etag:
                raise OsError(
                    400,
                    "InvalidParameter",
                    f"Part {num} with ETag '{etag}' was not uploaded to upload "
                    f"'{up.model.upload_id}'",
                )
            data.append(have[0])
            digests += base64.b64decode(have[2])
        name = up.model.object
        self._check_conditions(b, name)
        # opc-multipart-md5: "the base64-encoded MD5 hash of the concatenated MD5 hashes of the
        # parts, followed by '-' and the number of parts" (GetObject's response headers in
        # ObjectStorageClient.get_object / HeadObject).
        multi = f"{_md5_b64(digests)}-{len(parts)}"
        obj = StoredObject(
            data=b"".join(data),
            etag=str(uuid.uuid4()),
            md5=None,
            multipart_md5=multi,
            time_created=_now(),
            content_type="application/octet-stream",
            metadata={},
        )
        b.objects[name] = obj
        del b.uploads[up.model.upload_id]
        return {
            "etag": obj.etag,
            "opc-multipart-md5": multi,
            "last-modified": _http_date(obj.time_created),
        }

    def op_commit_multipart_upload(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        up = self._upload(b, p["o"], self.q.get("uploadId"))
        d = _from_wire(self.body, "CommitMultipartUploadDetails")
        parts = [(x.part_num, x.etag) for x in d.parts_to_commit or []]
        return 200, None, self._commit(b, up, parts)

    def op_abort_multipart_upload(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        up = self._upload(b, p["o"], self.q.get("uploadId"))
        del b.uploads[up.model.upload_id]
        return 204, None, {}

    # --- pre-authenticated requests ---------------------------------------------------------------
    def op_create_preauthenticated_request(
        self, p: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        d = _from_wire(self.body, "CreatePreauthenticatedRequestDetails")
        if d.access_type not in _READ | _WRITE:
            raise OsError(400, "InvalidParameter", f"Invalid accessType '{d.access_type}'")
        if d.time_expires is None or d.time_expires <= _now():
            raise OsError(
                400, "InvalidParameter", "timeExpires must be a time in the future (RFC 3339)."
            )
        if d.access_type not in _ANY and not d.object_name:
            raise OsError(
                400, "InvalidParameter", f"accessType {d.access_type} needs an objectName."
            )
        if d.bucket_listing_action == "ListObjects" and d.access_type not in (
            "AnyObjectRead",
            "AnyObjectReadWrite",
        ):
            # bucketListingAction ListObjects is allowed with AnyObjectRead or AnyObjectReadWrite
            # only (usingpreauthenticatedrequests.htm).
            raise OsError(
                400,
                "InvalidParameter",
                "bucketListingAction ListObjects needs accessType AnyObjectRead or "
                "AnyObjectReadWrite.",
            )
        token = secrets.token_urlsafe(48)
        par_id = base64.b64encode(secrets.token_bytes(48)).decode()
        obj = "" if d.access_type in _ANY else d.object_name
        access_uri = f"/p/{token}/n/{self.st.namespace}/b/{b.model.name}/o/{obj}"
        model = OS.PreauthenticatedRequest(
            id=par_id,
            name=d.name,
            access_uri=access_uri,
            object_name=d.object_name,
            bucket_listing_action=d.bucket_listing_action or "Deny",
            access_type=d.access_type,
            time_expires=d.time_expires,
            time_created=_now(),
            full_path=self.base_url + access_uri,
        )
        b.pars[par_id] = Par(model, token, b.model.name)
        return 200, _to_wire(model), {}

    def _summary(self, par: Par) -> Any:
        m = par.model
        # The access URI is "displayed only at the time of creation" (usingpreauthenticated
        # requests.htm): Get and List answer the summary, without it.
        return OS.PreauthenticatedRequestSummary(
            id=m.id,
            name=m.name,
            object_name=m.object_name,
            bucket_listing_action=m.bucket_listing_action,
            access_type=m.access_type,
            time_expires=m.time_expires,
            time_created=m.time_created,
        )

    def op_list_preauthenticated_requests(
        self, p: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        prefix = self.q.get("objectNamePrefix") or ""
        out = [
            self._summary(x)
            for x in b.pars.values()
            if (x.model.object_name or "").startswith(prefix)
        ]
        return 200, _to_wire(out), {}

    def _par(self, b: Bucket, par_id: str) -> Par:
        par = b.pars.get(par_id)
        if par is None:
            raise OsError(
                404,
                "NotAuthorizedOrNotFound",
                f"The pre-authenticated request '{par_id}' was not found",
            )
        return par

    def op_get_preauthenticated_request(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        return 200, _to_wire(self._summary(self._par(b, p["par"]))), {}

    def op_delete_preauthenticated_request(
        self, p: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        b = self.st.bucket(p["ns"], p["b"])
        del b.pars[self._par(b, p["par"]).model.id]
        return 204, None, {}

    # --- through a PAR -----------------------------------------------------------------------
    def _authorize(self, p: dict[str, str], need: set[str], obj: str | None) -> Bucket:
        """The PAR's bucket when the token is live and grants ``need`` on ``obj``."""
        b = self.st.buckets.get(p["b"])
        if b is None or p["ns"] != self.st.namespace:
            raise _par_not_found()
        par = next((x for x in b.pars.values() if x.token == p["tok"]), None)
        if par is None or par.model.time_expires <= _now():
            raise _par_not_found()
        if par.model.access_type not in need:
            raise _par_not_found()
        scope = par.model.object_name
        if par.model.access_type not in _ANY and obj != scope:
            raise _par_not_found()
        # An Any* PAR with an object name grants "all the objects within the bucket starting
        # with that prefix" (CreatePreauthenticatedRequestDetails.object_name).
        if (
            par.model.access_type in _ANY
            and scope
            and obj is not None
            and not obj.startswith(scope)
        ):
            raise _par_not_found()
        return b

    def op_par_list_objects(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self._authorize(p, _READ, None)
        par = next(x for x in b.pars.values() if x.token == p["tok"])
        if par.model.bucket_listing_action != "ListObjects":
            # "Listing objects in a bucket is denied by default" (usingpreauthenticated
            # requests.htm); the answer for a denied listing is not documented.
            raise _par_not_found()
        scope = par.model.object_name or ""
        if not (self.q.get("prefix") or "").startswith(scope):
            raise _par_not_found()
        return self._list_objects(b)

    def op_par_put_object(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self._authorize(p, _WRITE, p["o"])
        if (self.h.get("opc-multipart") or "").lower() == "true":
            # A multipart upload through a PAR: "PUT ... with the opc-multipart header set to
            # true" answers the upload's own access URI, to which parts are PUT as
            # <accessUri><partNum>, then POST commits and DELETE aborts
            # (usingpreauthenticatedrequests.htm, Uploading large objects using a PAR).
            up = self._new_upload(b, p["o"])
            access_uri = (
                f"/p/{p['tok']}/n/{self.st.namespace}/b/{b.model.name}/u/{p['o']}"
                f"/id/{up.model.upload_id}/"
            )
            body = {
                "namespace": self.st.namespace,
                "bucket": b.model.name,
                "object": p["o"],
                "uploadId": up.model.upload_id,
                "timeCreated": up.model.time_created.isoformat(),
                "storageTier": "Standard",
                "accessUri": access_uri,
            }
            return 200, body, {}
        return 200, None, self._store(b, p["o"], self.body)

    def op_par_get_object(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return self._get_object(self._authorize(p, _READ, p["o"]), p["o"], head=False)

    def op_par_head_object(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return self._get_object(self._authorize(p, _READ, p["o"]), p["o"], head=True)

    def op_par_upload_part(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self._authorize(p, _WRITE, p["o"])
        up = self._upload(b, p["o"], p["up"])
        return 200, None, self._put_part(up, int(p["part"]))

    def op_par_commit_multipart_upload(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self._authorize(p, _WRITE, p["o"])
        up = self._upload(b, p["o"], p["up"])
        # Committing through a PAR takes no body: every uploaded part, in part-number order.
        parts = [(n, up.parts[n][1]) for n in sorted(up.parts)]
        return 200, None, self._commit(b, up, parts)

    def op_par_abort_multipart_upload(self, p: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        b = self._authorize(p, _WRITE, p["o"])
        up = self._upload(b, p["o"], p["up"])
        del b.uploads[up.model.upload_id]
        return 204, None, {}


def _to_wire(obj: Any) -> Any:
    from tests.ociapi.server import to_wire

    return to_wire(obj)


def _from_wire(body: bytes, type_name: str) -> Any:
    from tests.ociapi.server import from_wire

    return from_wire(body, type_name)
