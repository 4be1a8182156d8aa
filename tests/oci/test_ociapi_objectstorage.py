"""The local OCI API's Object Storage answers the real SDK (and PAR holders) as the service does."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import json
import urllib.error
import urllib.request

import oci
import pytest

from tests.ociapi.fixtures import OciApi

OS = oci.object_storage.models
NO_RETRY = oci.retry.NoneRetryStrategy()
TAGS = {"faceswap-oci-job": "j1"}


def _client(api: OciApi) -> oci.object_storage.ObjectStorageClient:
    config = oci.config.from_file(str(api.cfg.config_file), api.cfg.profile)
    return oci.object_storage.ObjectStorageClient(
        config, service_endpoint=api.url, retry_strategy=NO_RETRY
    )


def _bucket(api: OciApi, os_: oci.object_storage.ObjectStorageClient, name: str = "b1") -> str:
    ns: str = os_.get_namespace().data
    os_.create_bucket(
        ns,
        OS.CreateBucketDetails(name=name, compartment_id=api.cfg.compartment, freeform_tags=TAGS),
    )
    return ns


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_namespace_and_a_private_tagged_bucket(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    assert ns == ociapi.state.object_storage.namespace
    got = os_.get_bucket(ns, "b1").data
    assert isinstance(got, OS.Bucket)
    assert got.public_access_type == "NoPublicAccess"
    assert got.freeform_tags == TAGS
    listed = os_.list_buckets(ns, ociapi.cfg.compartment).data
    assert [b.name for b in listed] == ["b1"]
    assert listed[0].freeform_tags is None  # only with fields=tags
    tagged = os_.list_buckets(ns, ociapi.cfg.compartment, fields=["tags"]).data
    assert tagged[0].freeform_tags == TAGS
    assert [r["kind"] for r in ociapi.state.live_tagged("j1")] == ["bucket"]
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        os_.create_bucket(
            ns, OS.CreateBucketDetails(name="b1", compartment_id=ociapi.cfg.compartment)
        )
    assert (exc.value.status, exc.value.code) == (409, "BucketAlreadyExists")


@pytest.mark.parametrize(
    ("namespace", "name", "status", "code"),
    [
        ("fsocitestns", "bad/name", 400, "InvalidParameter"),
        ("fsocitestns", "x" * 257, 400, "InvalidParameter"),
        ("nosuchns", "ok", 404, "NamespaceNotFound"),
    ],
)
def test_bad_bucket_name_or_namespace(
    ociapi: OciApi, namespace: str, name: str, status: int, code: str
) -> None:
    os_ = _client(ociapi)
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        os_.create_bucket(
            namespace, OS.CreateBucketDetails(name=name, compartment_id=ociapi.cfg.compartment)
        )
    assert (exc.value.status, exc.value.code) == (status, code)
    assert ociapi.state.object_storage.buckets == {}


def test_objects_etag_md5_and_conditions(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    put = os_.put_object(ns, "b1", "snap/1/model.h5", b"weights", content_md5=_md5(b"weights"))
    assert put.headers["content-md5"] == _md5(b"weights")
    got = os_.get_object(ns, "b1", "snap/1/model.h5")
    assert got.data.content == b"weights"
    assert got.headers["etag"] == put.headers["etag"]
    head = os_.head_object(ns, "b1", "snap/1/model.h5")
    assert head.headers["content-length"] == "7"
    assert head.headers["content-md5"] == _md5(b"weights")
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        os_.put_object(ns, "b1", "snap/1/x", b"abc", content_md5=_md5(b"abd"))
    assert (exc.value.status, exc.value.code) == (400, "UnmatchedContentMD5")
    assert "does not match the Content-MD5 header" in exc.value.message
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        os_.put_object(ns, "b1", "snap/1/model.h5", b"other", if_none_match="*")
    assert exc.value.status == 412
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        os_.put_object(ns, "b1", "snap/1/model.h5", b"other", if_match="stale")
    assert exc.value.status == 412
    assert os_.get_object(ns, "b1", "snap/1/model.h5").data.content == b"weights"
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        os_.get_object(ns, "b1", "snap/1/missing")
    assert (exc.value.status, exc.value.code) == (404, "ObjectNotFound")


def test_list_by_prefix_pages_through_the_sdk_paginator(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    ociapi.state.object_storage.page_size = 3
    for i in range(8):
        os_.put_object(ns, "b1", f"snap/{i:02d}", b"x" * i)
    os_.put_object(ns, "b1", "faces/a.png", b"png")
    first = os_.list_objects(ns, "b1", prefix="snap/").data
    assert len(first.objects) == 3 and first.next_start_with == "snap/03"
    assert first.objects[0].size is None  # name only unless `fields` asks
    every = oci.pagination.list_call_get_all_results(
        os_.list_objects, ns, "b1", prefix="snap/", fields="name,size,md5"
    ).data
    assert [o.name for o in every.objects] == [f"snap/{i:02d}" for i in range(8)]
    assert [o.size for o in every.objects] == list(range(8))
    dirs = os_.list_objects(ns, "b1", delimiter="/").data
    assert sorted(dirs.prefixes) == ["faces/", "snap/"]


def test_bucket_delete_is_409_until_empty(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    os_.put_object(ns, "b1", "o", b"1")
    up = os_.create_multipart_upload(ns, "b1", OS.CreateMultipartUploadDetails(object="big")).data
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        os_.delete_bucket(ns, "b1")
    assert (exc.value.status, exc.value.code) == (409, "BucketNotEmpty")
    os_.delete_object(ns, "b1", "o")
    with pytest.raises(oci.exceptions.ServiceError):
        os_.delete_bucket(ns, "b1")  # the uncommitted upload still holds it
    os_.abort_multipart_upload(ns, "b1", "big", up.upload_id)
    os_.delete_bucket(ns, "b1")
    assert ociapi.state.live_tagged("j1") == []


def test_multipart_upload_resumes_from_the_listed_parts(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    parts = [b"a" * 1000, b"b" * 1000, b"c" * 10]
    up = os_.create_multipart_upload(ns, "b1", OS.CreateMultipartUploadDetails(object="m.h5")).data
    os_.upload_part(ns, "b1", "m.h5", up.upload_id, 1, parts[0], content_md5=_md5(parts[0]))
    # The uploader died here; a new one asks which parts arrived and sends only the rest.
    have = os_.list_multipart_upload_parts(ns, "b1", "m.h5", up.upload_id).data
    assert [(p.part_number, p.md5, p.size) for p in have] == [(1, _md5(parts[0]), 1000)]
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        os_.upload_part(ns, "b1", "m.h5", up.upload_id, 2, parts[1], content_md5=_md5(b"no"))
    assert exc.value.code == "UnmatchedContentMD5"
    etags = {1: have[0].etag}
    for n in (2, 3):
        etags[n] = os_.upload_part(ns, "b1", "m.h5", up.upload_id, n, parts[n - 1]).headers["etag"]
    assert os_.list_objects(ns, "b1").data.objects == []  # nothing visible before the commit
    done = os_.commit_multipart_upload(
        ns,
        "b1",
        "m.h5",
        up.upload_id,
        OS.CommitMultipartUploadDetails(
            parts_to_commit=[
                OS.CommitMultipartUploadPartDetails(part_num=n, etag=e) for n, e in etags.items()
            ]
        ),
    )
    digests = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    assert (
        done.headers["opc-multipart-md5"]
        == f"{base64.b64encode(hashlib.md5(digests, usedforsecurity=False).digest()).decode()}-3"
    )
    assert os_.get_object(ns, "b1", "m.h5").data.content == b"".join(parts)
    assert "content-md5" not in os_.head_object(ns, "b1", "m.h5").headers
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        os_.list_multipart_upload_parts(ns, "b1", "m.h5", up.upload_id)
    assert (exc.value.status, exc.value.code) == (404, "NoSuchUpload")


def _par(
    os_: oci.object_storage.ObjectStorageClient, ns: str, **kw: object
) -> OS.PreauthenticatedRequest:
    details = {
        "name": "job",
        "access_type": "AnyObjectReadWrite",
        "time_expires": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        **kw,
    }
    return os_.create_preauthenticated_request(
        ns, "b1", OS.CreatePreauthenticatedRequestDetails(**details)
    ).data


def test_par_reads_and_writes_without_a_signature(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    par = _par(os_, ns, bucket_listing_action="ListObjects")
    assert par.access_uri.startswith("/p/") and par.access_uri.endswith(f"/n/{ns}/b/b1/o/")
    base = ociapi.url + par.access_uri
    status, _, headers = _http("PUT", base + "snap/1/model.h5", b"w1", {"Content-MD5": _md5(b"w1")})
    assert status == 200 and headers["content-md5"] == _md5(b"w1")
    assert os_.get_object(ns, "b1", "snap/1/model.h5").data.content == b"w1"
    assert _http("GET", base + "snap/1/model.h5")[:2] == (200, b"w1")
    status, body, _ = _http("GET", base + "?prefix=snap/&fields=name,md5")
    assert status == 200
    assert json.loads(body)["objects"] == [{"name": "snap/1/model.h5", "md5": _md5(b"w1")}]
    status, _, _ = _http("PUT", base + "x", b"abc", {"Content-MD5": _md5(b"abd")})
    assert status == 400
    # The access URI is shown once: Get and List answer the summary without it.
    listed = os_.list_preauthenticated_requests(ns, "b1").data
    assert [p.id for p in listed] == [par.id]
    assert not hasattr(listed[0], "access_uri")
    os_.delete_preauthenticated_request(ns, "b1", par.id)
    assert _http("GET", base + "snap/1/model.h5")[0] == 404
    assert ociapi.state.auth_failures == 0


def test_par_access_type_and_expiry_are_enforced(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    os_.put_object(ns, "b1", "a", b"1")
    read = ociapi.url + _par(os_, ns, access_type="AnyObjectRead").access_uri
    write = ociapi.url + _par(os_, ns, access_type="AnyObjectWrite").access_uri
    one = ociapi.url + _par(os_, ns, access_type="ObjectRead", object_name="a").access_uri
    assert _http("PUT", read + "b", b"2")[0] == 404
    assert _http("GET", write + "a")[0] == 404
    assert _http("GET", read)[0] == 404  # listing is denied unless the PAR allows it
    assert _http("GET", one)[:2] == (200, b"1")
    assert _http("GET", one[: -len("a")] + "b")[0] == 404
    short = _par(os_, ns, time_expires=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    pb = next(
        p for p in ociapi.state.object_storage.buckets["b1"].pars.values() if p.model.id == short.id
    )
    pb.model.time_expires = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert _http("GET", ociapi.url + short.access_uri + "a")[0] == 404
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        _par(os_, ns, time_expires=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    assert (exc.value.status, exc.value.code) == (400, "InvalidParameter")


def test_par_multipart_upload(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    base = ociapi.url + _par(os_, ns).access_uri
    status, body, _ = _http("PUT", base + "big.h5", b"", {"opc-multipart": "true"})
    assert status == 200
    upload_uri = json.loads(body)["accessUri"]
    assert "/u/big.h5/id/" in upload_uri and upload_uri.endswith("/")
    assert _http("PUT", ociapi.url + upload_uri + "1", b"x" * 100)[0] == 200
    assert _http("PUT", ociapi.url + upload_uri + "2", b"y" * 5)[0] == 200
    assert "big.h5" not in ociapi.state.object_storage.object_names("b1")
    status, _, headers = _http("POST", ociapi.url + upload_uri, b"")
    assert status == 200 and headers["opc-multipart-md5"].endswith("-2")
    assert os_.get_object(ns, "b1", "big.h5").data.content == b"x" * 100 + b"y" * 5


def test_refused_par_creation_and_object_storage_faults(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    ociapi.state.faults.fail(
        404,
        "NotAuthorizedOrNotFound",
        "Authorization failed or requested resource not found.",
        op="CreatePreauthenticatedRequest",
    )
    with pytest.raises(oci.exceptions.ServiceError) as exc:
        _par(os_, ns)
    assert exc.value.status == 404
    ociapi.state.faults.throttle(count=2, op="PutObject")
    retrying = oci.object_storage.ObjectStorageClient(
        oci.config.from_file(str(ociapi.cfg.config_file)),
        service_endpoint=ociapi.url,
        retry_strategy=oci.retry.RetryStrategyBuilder(
            max_attempts=4, retry_base_sleep_time_seconds=0.01, retry_exponential_growth_factor=1
        ).get_retry_strategy(),
    )
    retrying.put_object(ns, "b1", "o", b"ok")
    assert ociapi.state.faults_fired[(429, "TooManyRequests")] == 2
    assert os_.get_object(ns, "b1", "o").data.content == b"ok"


def test_dropped_connection_stores_nothing(ociapi: OciApi) -> None:
    os_ = _client(ociapi)
    ns = _bucket(ociapi, os_)
    base = ociapi.url + _par(os_, ns).access_uri
    ociapi.state.faults.drop("ParPutObject")
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        _http("PUT", base + "half", b"data")
    assert ociapi.state.object_storage.object_names("b1") == []


def test_preemption_terminates_and_tells_the_host(ociapi: OciApi) -> None:
    from tests.oci.test_ociapi import _clients, _network

    vn, compute, _ = _clients(ociapi)
    _, subnet = _network(ociapi, vn)
    image = compute.list_images(ociapi.cfg.compartment).data[0]
    inst = compute.launch_instance(
        oci.core.models.LaunchInstanceDetails(
            compartment_id=ociapi.cfg.compartment,
            availability_domain=ociapi.state.availability_domains[0],
            shape="VM.GPU.A10.1",
            subnet_id=subnet.id,
            source_details=oci.core.models.InstanceSourceViaImageDetails(image_id=image.id),
            preemptible_instance_config=oci.core.models.PreemptibleInstanceConfigDetails(
                preemption_action=oci.core.models.TerminatePreemptionAction(
                    preserve_boot_volume=True
                )
            ),
        )
    ).data
    killed: list[str] = []
    ociapi.state.on_preempt = killed.append
    ociapi.state.preempt_after(inst.id, 0.05)
    got = oci.wait_until(
        compute, compute.get_instance(inst.id), "lifecycle_state", "TERMINATED", max_wait_seconds=10
    ).data
    assert killed == [inst.id]
    assert got.preemptible_instance_config.preemption_action.preserve_boot_volume is True
