"""A local test double of the slice of the OCI API that faceswap-oci uses.

It answers the real `oci` SDK over plain HTTP on 127.0.0.1: Core Services `/20160918` (VCNs,
subnets, internet gateways, route tables, security lists, instances, VNIC attachments, VNICs,
images, shapes, compute capacity reports), Identity `/20160918/availabilityDomains` and
`/compartments/{id}`, Object Storage's `GET /n` (namespace) and Limits'
`/20190729/services/compute/limits/{name}/resourceAvailability` (`faceswap-oci check`).

Faithful where it matters to our code:
- every request's draft-cavage signature is verified against the test key pair
  (`date (request-target) host`, plus `content-length content-type x-content-sha256` on bodies),
  the body hash is checked, and a bad or missing signature gets 401 `NotAuthenticated`;
- bodies are parsed into and built from the SDK's own model classes, with camelCase keys;
- `opc-request-id`, `etag`, `opc-next-page` headers, `opc-retry-token` idempotency;
- lifecycle states that move with time (PROVISIONING -> RUNNING, TERMINATING -> TERMINATED);
- dependency checks (409 `Conflict` when a VCN still holds subnets, gateways, tables or lists,
  when a subnet still holds VNICs, when a gateway is still a route target);
- faults from a plan the test sets: out of host capacity per (AD, shape), `LimitExceeded`,
  `TooManyRequests`, any status/code per operation, slow transitions, spontaneous preemption.

And where the real service surprises (issue 15), each with the doc or SDK line it follows at the
code: capacity reports for the root compartment only; a VNIC that blocks DeleteSubnet (409
Conflict) for `vnic_release_s` after its instance is TERMINATED; 429 storms on one shape
(`throttle(shape=...)`); bare metal shapes refusing preemptible capacity; eventual-consistency
404s on a Get right after the create (`consistency_lag_s`); STOPPED instances (`stop()`,
InstanceAction START/STOP); `assignPublicIp` refused on a prohibit-public subnet; session-token
profiles (`session_tokens`, the SDK's "ST$<token>" key id).

Object Storage (tests/ociapi/objectstorage.py: namespace, buckets, objects, multipart uploads,
pre-authenticated requests and the unsigned `/p/...` URLs they hand out) answers on the same
port; preemption (`preempt`, `preempt_after`) terminates an instance and calls `on_preempt`, so
a test can make its test-bed host die at that moment. Status 0 in a fault rule (`drop`) closes
the connection without an answer.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import ipaddress
import itertools
import json
import logging
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import oci
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from oci.base_client import BaseClient, merge_type_mappings

from tests.ociapi.identity import (
    FederationError,
    IamState,
    InstanceIdentityCa,
    MetadataService,
    federate,
)
from tests.ociapi.objectstorage import ObjectStorageApi, ObjectStorageState, OsError

M = oci.core.models
JOB_TAG = "faceswap-oci-job"

_TYPES = merge_type_mappings(
    oci.core.models.core_type_mapping,
    oci.identity.models.identity_type_mapping,
    oci.object_storage.models.object_storage_type_mapping,
)


def _codec() -> BaseClient:
    # The SDK's own (de)serialiser, without the config/signer a real client needs.
    bc = object.__new__(BaseClient)
    bc.complex_type_mappings = _TYPES
    bc.type_mappings = merge_type_mappings(BaseClient.primitive_type_map, _TYPES)
    bc._allow_control_chars = False
    bc.skip_deserialization = False
    bc.logger = logging.getLogger("ociapi")
    return bc


CODEC = _codec()


def to_wire(obj: Any) -> Any:
    """Serialise an SDK model (or list of them) to the service's camelCase JSON value."""
    return CODEC.sanitize_for_serialization(obj)


def from_wire(body: bytes, type_name: str) -> Any:
    """Parse a request body into the SDK model class named ``type_name``."""
    return CODEC.deserialize_response_data(body, type_name)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _not_found() -> ApiError:
    return ApiError(
        404,
        "NotAuthorizedOrNotFound",
        "Authorization failed or requested resource not found.",
    )


@dataclasses.dataclass
class FaultRule:
    """One injected failure. ``op`` is the operation name (e.g. LaunchInstance) or ``*``."""

    status: int
    code: str
    message: str
    op: str = "*"
    count: int | None = None  # None: every matching request
    availability_domain: str | None = None
    shape: str | None = None
    every: int = 1  # fire on every n-th matching request (429 storms that let work through)
    probability: float | None = None  # or fire at random with this probability (seeded)
    preemptible: bool | None = None  # LaunchInstance: only preemptible (True) / on-demand (False)
    _seen: int = 0
    _rng: random.Random = dataclasses.field(default_factory=lambda: random.Random(8))

    def matches(
        self, op: str, ad: str | None, shape: str | None, preemptible: bool | None = None
    ) -> bool:
        if self.op not in ("*", op):
            return False
        if (
            self.preemptible is not None
            and preemptible is not None
            and self.preemptible != preemptible
        ):
            return False
        if self.availability_domain is not None and self.availability_domain != ad:
            return False
        return self.shape is None or self.shape == shape


@dataclasses.dataclass
class FaultPlan:
    """What the test wants to go wrong, and how slow the service is."""

    rules: list[FaultRule] = dataclasses.field(default_factory=list)
    provision_s: float = 0.2  # instance PROVISIONING -> RUNNING
    network_provision_s: float = 0.0  # network resources PROVISIONING -> AVAILABLE
    terminate_s: float = 0.2  # TERMINATING -> TERMINATED
    network_delete_s: float = 0.0
    preempt_after_s: float | None = None  # preemptible instances are reclaimed after this
    page_size: int = 100
    # A link shaped to this many bits per second: request bodies are read and response bodies
    # written at that pace (benchmarks/snapshot.py: 400 Mbit/s). None: as fast as loopback.
    bandwidth_bps: float | None = None
    # After an instance is TERMINATED its VNIC can still be referenced for a while: DeleteSubnet
    # answers 409 Conflict "The Subnet ... references the VNIC ..." until it is released. The
    # lag itself is not documented; the 409 is what users of the real service report (e.g.
    # oracle/terraform-provider-oci issues on subnet destroy after instance terminate).
    vnic_release_s: float = 0.0
    # Eventual consistency: a Get of a resource younger than this answers 404
    # NotAuthorizedOrNotFound (Oracle's API error table, docs.oracle.com/iaas/Content/API/
    # References/apierrors.htm, lists 404 NotAuthorizedOrNotFound as retryable for this reason).
    consistency_lag_s: float = 0.0

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def no_capacity(
        self,
        availability_domain: str | None,
        shape: str | None,
        preemptible: bool | None = None,
    ) -> FaultRule:
        return self.add(
            FaultRule(
                500,
                "InternalError",
                "Out of host capacity.",
                op="LaunchInstance",
                availability_domain=availability_domain,
                shape=shape,
                preemptible=preemptible,
            )
        )

    def limit_exceeded(self, shape: str) -> FaultRule:
        return self.add(
            FaultRule(
                400,
                "LimitExceeded",
                f"You have reached your service limit in this Availability Domain for {shape}. "
                "Please try launching the instance in a different Availability Domain or Region, "
                "or try using a different shape.",
                op="LaunchInstance",
                shape=shape,
            )
        )

    def throttle(
        self,
        count: int | None = None,
        op: str = "*",
        every: int = 1,
        probability: float | None = None,
        shape: str | None = None,
    ) -> FaultRule:
        """429 TooManyRequests (docs.oracle.com/iaas/Content/API/References/apierrors.htm);
        with ``shape`` only LaunchInstance of that shape: a storm on one shape."""
        return self.add(
            FaultRule(
                429,
                "TooManyRequests",
                "Too many requests for the user",
                "LaunchInstance" if shape else op,
                count,
                every=every,
                probability=probability,
                shape=shape,
            )
        )

    def fail(
        self, status: int, code: str, message: str, op: str = "*", count: int | None = 1
    ) -> FaultRule:
        return self.add(FaultRule(status, code, message, op, count))

    def drop(self, op: str, count: int | None = 1) -> FaultRule:
        """Close the connection of ``op`` without answering (a link dropped mid-upload)."""
        return self.add(FaultRule(0, "Dropped", "connection dropped", op, count))

    def clear(self) -> None:
        self.rules.clear()


@dataclasses.dataclass
class Resource:
    kind: str  # vcn, subnet, internet_gateway, route_table, security_list, instance, ...
    model: Any
    timeline: list[tuple[float, str]]
    parent: str | None = None
    default_of: str | None = None  # the VCN whose default table/list this is

    def state(self, now: float) -> str:
        current = self.timeline[0][1]
        for at, st in self.timeline:
            if at <= now:
                current = st
        return current

    def future(self, now: float, states: list[tuple[float, str]]) -> None:
        self.timeline = [(t, s) for t, s in self.timeline if t <= now] + states


SHAPES: list[dict[str, Any]] = [
    {
        "shape": "VM.GPU.A10.1",
        "ocpus": 15.0,
        "memory_in_gbs": 240.0,
        "gpus": 1,
        "gpu_description": "NVIDIA A10",
    },
    {
        "shape": "VM.GPU.A10.2",
        "ocpus": 30.0,
        "memory_in_gbs": 480.0,
        "gpus": 2,
        "gpu_description": "NVIDIA A10",
    },
    {
        "shape": "VM.GPU3.1",
        "ocpus": 6.0,
        "memory_in_gbs": 90.0,
        "gpus": 1,
        "gpu_description": "NVIDIA V100",
    },
    {
        "shape": "VM.GPU2.1",
        "ocpus": 12.0,
        "memory_in_gbs": 72.0,
        "gpus": 1,
        "gpu_description": "NVIDIA P100",
    },
    {
        "shape": "BM.GPU.A100-v2.8",
        "ocpus": 128.0,
        "memory_in_gbs": 2048.0,
        "gpus": 8,
        "gpu_description": "NVIDIA A100 80GB",
    },
    {
        "shape": "VM.Standard.E4.Flex",
        "ocpus": 1.0,
        "memory_in_gbs": 16.0,
        "gpus": 0,
        "gpu_description": None,
    },
]

IMAGES: list[tuple[str, str, str, bool]] = [
    # (operating_system, version, display name, GPU image)
    ("Oracle Linux", "9", "Oracle-Linux-9.5-Gen2-GPU-2025.03.18-0", True),
    ("Oracle Linux", "9", "Oracle-Linux-9.5-2025.03.18-0", False),
    ("Oracle Linux", "9", "Oracle-Linux-9.4-2024.11.30-0", False),
    ("Oracle Linux", "8", "Oracle-Linux-8.10-Gen2-GPU-2025.03.18-0", True),
    ("Oracle Linux", "8", "Oracle-Linux-8.10-2025.03.18-0", False),
    ("Canonical Ubuntu", "24.04", "Canonical-Ubuntu-24.04-2025.03.28-0", False),
    ("Canonical Ubuntu", "22.04", "Canonical-Ubuntu-22.04-2025.03.28-0", False),
]

_OPS: list[tuple[str, str, str]] = [
    # (method, path regex, operation name)
    ("GET", r"/availabilityDomains", "ListAvailabilityDomains"),
    ("GET", r"/compartments/(?P<id>[^/]+)", "GetCompartment"),
    ("GET", r"/dynamicGroups", "ListDynamicGroups"),
    ("GET", r"/policies", "ListPolicies"),
    ("POST", r"/vcns", "CreateVcn"),
    ("GET", r"/vcns", "ListVcns"),
    ("GET", r"/vcns/(?P<id>[^/]+)", "GetVcn"),
    ("DELETE", r"/vcns/(?P<id>[^/]+)", "DeleteVcn"),
    ("POST", r"/subnets", "CreateSubnet"),
    ("GET", r"/subnets", "ListSubnets"),
    ("GET", r"/subnets/(?P<id>[^/]+)", "GetSubnet"),
    ("DELETE", r"/subnets/(?P<id>[^/]+)", "DeleteSubnet"),
    ("POST", r"/internetGateways", "CreateInternetGateway"),
    ("GET", r"/internetGateways", "ListInternetGateways"),
    ("GET", r"/internetGateways/(?P<id>[^/]+)", "GetInternetGateway"),
    ("DELETE", r"/internetGateways/(?P<id>[^/]+)", "DeleteInternetGateway"),
    ("POST", r"/routeTables", "CreateRouteTable"),
    ("GET", r"/routeTables", "ListRouteTables"),
    ("GET", r"/routeTables/(?P<id>[^/]+)", "GetRouteTable"),
    ("PUT", r"/routeTables/(?P<id>[^/]+)", "UpdateRouteTable"),
    ("DELETE", r"/routeTables/(?P<id>[^/]+)", "DeleteRouteTable"),
    ("POST", r"/securityLists", "CreateSecurityList"),
    ("GET", r"/securityLists", "ListSecurityLists"),
    ("GET", r"/securityLists/(?P<id>[^/]+)", "GetSecurityList"),
    ("PUT", r"/securityLists/(?P<id>[^/]+)", "UpdateSecurityList"),
    ("DELETE", r"/securityLists/(?P<id>[^/]+)", "DeleteSecurityList"),
    ("POST", r"/instances", "LaunchInstance"),
    ("GET", r"/instances", "ListInstances"),
    ("GET", r"/instances/(?P<id>[^/]+)", "GetInstance"),
    ("DELETE", r"/instances/(?P<id>[^/]+)", "TerminateInstance"),
    ("POST", r"/instances/(?P<id>[^/]+)", "InstanceAction"),
    ("GET", r"/vnicAttachments", "ListVnicAttachments"),
    ("GET", r"/vnicAttachments/(?P<id>[^/]+)", "GetVnicAttachment"),
    ("GET", r"/vnics/(?P<id>[^/]+)", "GetVnic"),
    ("GET", r"/images", "ListImages"),
    ("GET", r"/shapes", "ListShapes"),
    ("POST", r"/computeCapacityReports", "CreateComputeCapacityReport"),
]

_LIMITS_OPS: list[tuple[str, str, str]] = [
    (
        "GET",
        r"/services/(?P<service>[^/]+)/limits/(?P<id>[^/]+)/resourceAvailability",
        "GetResourceAvailability",
    ),
]

# GPU shape -> (compute limit name, GPUs it counts). The names are the Limits API's, as
# `oci limits resource-availability get --service-name compute --limit-name gpu-a10-count`
# takes them (Oracle's "Compute Limits" list); GPU limits are scoped per availability domain.
GPU_LIMITS: dict[str, tuple[str, int]] = {
    "VM.GPU.A10.1": ("gpu-a10-count", 1),
    "VM.GPU.A10.2": ("gpu-a10-count", 2),
    "VM.GPU3.1": ("gpu3-count", 1),
    "VM.GPU2.1": ("gpu2-count", 1),
    "BM.GPU.A100-v2.8": ("gpu-a100-v2-count", 8),
}

_KIND_BY_PATH = {
    "vcns": ("vcn", "Vcn", "CreateVcnDetails"),
    "subnets": ("subnet", "Subnet", "CreateSubnetDetails"),
    "internetGateways": ("internet_gateway", "InternetGateway", "CreateInternetGatewayDetails"),
    "routeTables": ("route_table", "RouteTable", "CreateRouteTableDetails"),
    "securityLists": ("security_list", "SecurityList", "CreateSecurityListDetails"),
}

_OCID_PREFIX = {
    "vcn": "vcn",
    "subnet": "subnet",
    "internet_gateway": "internetgateway",
    "route_table": "routetable",
    "security_list": "securitylist",
    "instance": "instance",
    "vnic_attachment": "vnicattachment",
    "vnic": "vnic",
    "image": "image",
}


class OciApiState:
    """All resources of the fake tenancy, guarded by one lock."""

    def __init__(
        self,
        *,
        tenancy: str,
        key_id: str,
        public_key: rsa.RSAPublicKey,
        compartments: list[str],
        region: str = "eu-frankfurt-1",
        clock: Callable[[], float] = time.monotonic,
        namespace: str = "fsocitestns",
    ) -> None:
        self.tenancy = tenancy
        self.key_id = key_id
        self.public_key = public_key
        self.compartments = set(compartments) | {tenancy}
        self.region = region
        self.clock = clock
        self.lock = threading.RLock()
        self.faults = FaultPlan()
        self.resources: dict[str, Resource] = {}
        self.calls: Counter[str] = Counter()
        # (operation, caller's address) of every request, in order: which calls came from a
        # test-bed host (the VM) and which from the controller (a detached job's hand-over)
        self.call_log: list[tuple[str, str]] = []
        self.faults_fired: Counter[tuple[int, str]] = Counter()
        self.on_request: Callable[[str], None] | None = None
        # Session tokens (`oci session authenticate`): the SDK's SecurityTokenSigner signs with
        # keyId "ST$<token>" (oci/auth/signers/security_token_signer.py) and the session's key.
        self.session_tokens: dict[str, rsa.RSAPublicKey] = {}
        self.auth_failures = 0
        self.retry_tokens: dict[str, tuple[str, int, bytes, str]] = {}
        self.default_public_ip = "203.0.113.10"
        self.public_ips: dict[str, str] = {}  # job tag value -> address handed to its instance
        self._ip_counter = itertools.count(10)
        # service limit per (limit name, AD): a fresh tenancy of the kind the tests model has
        # 2 A10s and 1 V100 per AD; `set_limit` changes one (0: a limit increase is needed)
        self.limits: dict[tuple[str, str], int] = {}
        self.default_limits = {"gpu-a10-count": 2, "gpu3-count": 1, "gpu2-count": 0}
        region_key = region.upper()
        self.availability_domains = [f"Uocm:{region_key}-AD-{n}" for n in (1, 2, 3)]
        self._seed_images()
        self.object_storage = ObjectStorageState(namespace, region, self.compartments)
        # Called (outside the lock) with the instance's OCID when a preemption reclaims it: a
        # test makes the instance's test-bed host die at that moment.
        self.on_preempt: Callable[[str], None] | None = None
        # Called (under the lock) with each launched instance, as an ``oci.core.models.Instance``
        # with its metadata: a test boots the machine behind it (a test-bed host, given the
        # metadata's ``ssh_authorized_keys`` as cloud-init would) and returns its address, the
        # public IP the instance's VNIC gets; None keeps ``public_ips``' address.
        self.on_launch: Callable[[Any], str | None] | None = None
        self._timers: list[threading.Timer] = []
        # Instance principals (tests/ociapi/identity.py): dynamic groups and policies, the
        # session tokens the federation endpoint issued to instances (token -> instance OCID)
        self.iam = IamState(tenancy)
        self.token_principals: dict[str, str] = {}
        self._identity_ca: InstanceIdentityCa | None = None

    # --- instance principals --------------------------------------------------------------
    @property
    def identity_ca(self) -> InstanceIdentityCa:
        with self.lock:
            if self._identity_ca is None:
                self._identity_ca = InstanceIdentityCa()
            return self._identity_ca

    def instance_at(self, address: str) -> Any | None:
        """The live instance whose primary VNIC has the public address ``address`` (the
        newest when several do), as an ``oci.core.models.Instance``; the IMDS's caller."""
        now = self.clock()
        with self.lock:
            found = []
            for att in self.resources.values():
                if att.kind != "vnic_attachment":
                    continue
                vnic = self.resources.get(att.model.vnic_id)
                inst = self.resources.get(att.model.instance_id)
                if vnic is None or inst is None or vnic.model.public_ip != address:
                    continue
                if inst.state(now) in ("RUNNING", "PROVISIONING", "STARTING", "STOPPING"):
                    found.append(inst)
            found.sort(key=lambda r: r.model.time_created)
            return found[-1].model if found else None

    def live_instance(self, instance_id: str) -> Any | None:
        with self.lock:
            res = self.resources.get(instance_id)
            if res is None or res.kind != "instance":
                return None
            return res.model if res.state(self.clock()) == "RUNNING" else None

    def metadata_service(self, host: str = "127.0.0.1", port: int = 0) -> MetadataService:
        """An IMDS for this tenancy's instances on ``host:port``, started (``stop()`` ends it)."""
        return MetadataService(
            self.identity_ca, self.tenancy, self.region, self.instance_at, host, port
        ).start()

    # --- helpers for tests --------------------------------------------------------------
    def set_limit(self, limit: str, value: int, ad: str | None = None) -> None:
        """The service limit ``limit`` in ``ad`` (every AD when None)."""
        for name in [ad] if ad else self.availability_domains:
            self.limits[(limit, name)] = value

    def live_tagged(self, job: str | None = None) -> list[dict[str, str]]:
        """Every resource carrying the job tag (of ``job``, or any) that is not TERMINATED."""
        now = self.clock()
        out = []
        with self.lock:
            for ocid, res in self.resources.items():
                tags = getattr(res.model, "freeform_tags", None) or {}
                if JOB_TAG not in tags or (job is not None and tags[JOB_TAG] != job):
                    continue
                state = res.state(now)
                if state != "TERMINATED":
                    out.append({"id": ocid, "kind": res.kind, "state": state, "job": tags[JOB_TAG]})
            out.extend(self.object_storage.live_tagged(JOB_TAG, job))
        return out

    def set_public_ip(self, address: str, job: str | None = None) -> None:
        """Hand ``address`` to the next instances (of ``job``, or of every job)."""
        with self.lock:
            if job is None:
                self.default_public_ip = address
            else:
                self.public_ips[job] = address

    def instances(self) -> list[Resource]:
        with self.lock:
            return [r for r in self.resources.values() if r.kind == "instance"]

    def preempt(self, instance_id: str) -> None:
        """Reclaim a preemptible instance now, as the service does when it needs the capacity:
        the preemption action terminates it (PreemptibleInstanceConfigDetails.preemption_action,
        a TerminatePreemptionAction, oci/core/models/terminate_preemption_action.py), and
        ``on_preempt`` is told, so the test-bed host behind it can die at the same moment."""
        with self.lock:
            res = self.resources[instance_id]
            if res.model.preemptible_instance_config is None:
                raise ValueError(f"{instance_id} is not a preemptible instance")
            now = self.clock()
            res.future(now, [(now, "TERMINATING"), (now + self.faults.terminate_s, "TERMINATED")])
        if self.on_preempt is not None:
            self.on_preempt(instance_id)

    def preempt_after(self, instance_id: str, seconds: float) -> threading.Timer:
        """Preempt ``instance_id`` ``seconds`` from now (in a timer thread)."""
        timer = threading.Timer(seconds, self.preempt, args=(instance_id,))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()
        return timer

    def cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()

    def stop(self, instance_id: str) -> None:
        """Stop an instance (as the console's Stop, or the OS shutting down): STOPPED."""
        with self.lock:
            res = self.resources[instance_id]
            now = self.clock()
            res.future(now, [(now, "STOPPING"), (now + self.faults.terminate_s, "STOPPED")])

    # --- internals ------------------------------------------------------------------------
    def new_ocid(self, kind: str) -> str:
        prefix = _OCID_PREFIX[kind]
        return f"ocid1.{prefix}.oc1.{self.region}.{uuid.uuid4().hex}{uuid.uuid4().hex[:12]}"

    def _seed_images(self) -> None:
        created = dt.datetime(2025, 3, 18, tzinfo=dt.UTC)
        for i, (os_name, version, name, _gpu) in enumerate(IMAGES):
            ocid = self.new_ocid("image")
            img = M.Image(
                id=ocid,
                compartment_id=None,
                display_name=name,
                operating_system=os_name,
                operating_system_version=version,
                lifecycle_state="AVAILABLE",
                launch_mode="NATIVE",
                create_image_allowed=True,
                listing_type="NONE",
                size_in_mbs=47694,
                billable_size_in_gbs=2,
                time_created=created - dt.timedelta(days=i),
                freeform_tags={},
                defined_tags={},
            )
            self.resources[ocid] = Resource("image", img, [(0.0, "AVAILABLE")])


def _now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _etag(wire: Any) -> str:
    return hashlib.sha256(json.dumps(wire, sort_keys=True).encode()).hexdigest()[:32]


class _Drop(Exception):
    """A fault rule with status 0: the connection is dropped without an answer."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    # Every verb goes through one dispatcher.
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if isinstance(body, bytes):
            payload = body
        else:
            payload = b"" if body is None else json.dumps(body).encode()
            if payload:
                headers.setdefault("content-type", "application/json")
        self.send_response(status)
        self.send_header("opc-request-id", self._request_id)
        # HEAD answers the object's own content-length (from ``headers``) and no body.
        headers.setdefault("content-length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self._paced_write(payload)

    def _pace(self, size: int, started: float) -> None:
        bps = self.server.state.faults.bandwidth_bps
        if bps:
            ahead = started + size * 8 / bps - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def _paced_read(self, length: int) -> bytes:
        started, parts, got = time.monotonic(), [], 0
        while got < length:
            chunk = self.rfile.read(min(1 << 20, length - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
            self._pace(got, started)
        return b"".join(parts)

    def _paced_write(self, payload: bytes) -> None:
        started = time.monotonic()
        for offset in range(0, len(payload), 1 << 20):
            self.wfile.write(payload[offset : offset + (1 << 20)])
            self._pace(offset + (1 << 20), started)

    def _dispatch(self) -> None:
        st = self.server.state
        length = int(self.headers.get("content-length") or 0)
        body = self._paced_read(length) if length else b""
        client_rid = self.headers.get("opc-request-id") or uuid.uuid4().hex.upper()
        self._request_id = f"{client_rid}/{uuid.uuid4().hex.upper()}"
        url = urlsplit(self.path)
        path = url.path
        try:
            if path == "/v1/x509" and self.command == "POST":
                self._federation(body)
                return
            # Core Services and Identity share /20160918; Limits is /20190729 (LimitsClient's
            # base path '/', resource paths "/20190729/services/..."); everything else is
            # Object Storage, which has no version prefix (GetNamespace is "/n",
            # oci/object_storage/object_storage_client.py), or a PAR ("/p/...").
            for version, table in (("/20160918/", _OPS), ("/20190729/", _LIMITS_OPS)):
                if path.startswith(version):
                    sub, ops = path[len(version) - 1 :], table
                    break
            else:
                self._object_storage(path, url.query, body)
                return
            principal = self._verify_signature(body)
            found = [
                (op, m)
                for method, pattern, op in ops
                if method == self.command and (m := re.fullmatch(pattern, sub))
            ]
            if not found:
                raise ApiError(404, "NotFound", f"Unknown resource {path}")
            op, m = found[0]
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with st.lock:
                st.calls[op] += 1
                st.call_log.append((op, self.client_address[0]))
                token = self.headers.get("opc-retry-token")
                if token and token in st.retry_tokens:
                    prev_op, status, payload, etag = st.retry_tokens[token]
                    if prev_op == op:
                        self._send(status, json.loads(payload), {"etag": etag})
                        return
                self._inject_faults(op, body)
                if principal is not None:
                    self._authorize(op, principal, m.groupdict().get("id"), query)
                status, result, extra = _Api(st, query, body).call(op, m.groupdict().get("id"))
                if st.on_request is not None:
                    # After the change, before the answer: the worst moment for a client to die.
                    st.on_request(op)
                headers = dict(extra)
                if result is not None and not isinstance(result, list):
                    headers.setdefault("etag", _etag(result))
                if token and self.command == "POST":
                    st.retry_tokens[token] = (
                        op,
                        status,
                        json.dumps(result).encode(),
                        headers.get("etag", ""),
                    )
            self._send(status, result, headers)
        except ApiError as err:
            self._send(err.status, {"code": err.code, "message": err.message})
        except Exception as exc:  # a bug in the double must show as a 500, not a hung client
            self._send(500, {"code": "InternalServerError", "message": f"test double: {exc!r}"})

    def _federation(self, body: bytes) -> None:
        """POST /v1/x509: an instance's certificate for a session token (identity.federate)."""
        st = self.server.state

        def verify(key_id: str, public_key: rsa.RSAPublicKey) -> None:
            # AuthTokenRequestSigner signs "date (request-target)" and the body headers, not
            # "host" (oci/auth/federation_client.py)
            self._verify_signature(
                body, keys={key_id: public_key}, generic=["date", "(request-target)"]
            )

        try:
            with st.lock:
                st.calls["FederateX509"] += 1
                st.call_log.append(("FederateX509", self.client_address[0]))
                self._inject_faults("FederateX509", body)
            token, session_key, instance_id = federate(
                st.identity_ca, st.tenancy, st.live_instance, body, verify
            )
        except FederationError as err:
            raise ApiError(err.status, err.code, err.message) from err
        with st.lock:
            st.session_tokens[token] = session_key
            st.token_principals[token] = instance_id
        self._send(200, {"token": token})

    def _authorize(self, op: str, principal: str, ocid: str | None, query: dict[str, str]) -> None:
        """An instance principal's call: its policy must allow ``op`` on the target's
        compartment, else 404 NotAuthorizedOrNotFound, the answer Oracle's API error table
        gives when "the resource does not exist or you are not authorized to access it"
        (docs.oracle.com/iaas/Content/API/References/apierrors.htm)."""
        st = self.server.state
        caller = st.resources.get(principal)
        target = st.resources.get(ocid or "")
        compartment = (
            target.model.compartment_id
            if target is not None and hasattr(target.model, "compartment_id")
            else query.get("compartmentId", "")
        )
        if caller is None or not st.iam.authorize(op, caller.model, compartment, query):
            raise _not_found()

    def _object_storage(self, path: str, query: str, body: bytes) -> None:
        """Object Storage (no version prefix) and requests through a PAR (``/p/...``)."""
        st = self.server.state
        found = ObjectStorageApi.route(self.command, path)
        if found is None:
            raise ApiError(404, "NotFound", f"Unknown resource {path}")
        op, params = found
        if not path.startswith("/p/"):
            # PutObject and UploadPart sign without the body headers: the SDK calls them with
            # enforce_content_headers=False ("Special Instructions for Object Storage PUT",
            # docs.oracle.com/iaas/Content/API/Concepts/signingrequests.htm#ObjectStoragePut).
            self._verify_signature(body, sign_body=op not in ("PutObject", "UploadPart"))
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        host, port = self.server.server_address[:2]
        base = f"http://{host}:{port}"
        with st.lock:
            st.calls[op] += 1
            st.call_log.append((op, self.client_address[0]))
            try:
                self._inject_faults(op, b"")
            except _Drop:
                # The link went away mid-request (a killed upload): no answer at all.
                self.close_connection = True
                return
            try:
                api = ObjectStorageApi(
                    st.object_storage, self.command, path, q, self.headers, body, base
                )
                status, result, headers = api.call(op, params)
            except OsError as err:
                raise ApiError(err.status, err.code, err.message) from err
            if st.on_request is not None:
                st.on_request(op)
        self._send(status, result, headers)

    def _verify_signature(
        self,
        body: bytes,
        sign_body: bool = True,
        keys: dict[str, rsa.RSAPublicKey] | None = None,
        generic: list[str] | None = None,
    ) -> str | None:
        """Check the request's signature; the instance OCID when an instance principal's
        session token signed it, else None. ``keys`` (key id -> key) replaces the tenancy's
        keys, ``generic`` the headers every request must sign (the federation request)."""
        st = self.server.state
        auth = self.headers.get("authorization") or ""
        fail = ApiError(
            401,
            "NotAuthenticated",
            "The required information to complete authentication was not provided or was "
            "incorrect.",
        )
        if not auth.startswith("Signature "):
            st.auth_failures += 1
            raise fail
        params = dict(re.findall(r'(\w+)="([^"]*)"', auth))
        signed = params.get("headers", "date").split()
        needed = list(generic or ["date", "(request-target)", "host"])
        if self.command in ("POST", "PUT", "PATCH") and sign_body:
            needed += ["content-length", "content-type", "x-content-sha256"]
        key_id = params.get("keyId") or ""
        public_key = st.public_key
        principal = None
        if keys is not None:
            if key_id not in keys:
                st.auth_failures += 1
                raise fail
            public_key = keys[key_id]
        elif key_id.startswith("ST$") and key_id[3:] in st.session_tokens:
            public_key = st.session_tokens[key_id[3:]]
            principal = st.token_principals.get(key_id[3:])
            if principal is not None and self._token_expired(key_id[3:]):
                st.auth_failures += 1
                raise fail
        elif key_id != st.key_id:
            st.auth_failures += 1
            raise fail
        if params.get("algorithm") != "rsa-sha256":
            st.auth_failures += 1
            raise fail
        if any(h not in signed for h in needed):
            st.auth_failures += 1
            raise fail
        lines = []
        for h in signed:
            if h == "(request-target)":
                lines.append(f"(request-target): {self.command.lower()} {self.path}")
            else:
                value = self.headers.get(h)
                if value is None:
                    st.auth_failures += 1
                    raise fail
                lines.append(f"{h}: {value}")
        try:
            public_key.verify(
                base64.b64decode(params.get("signature", "")),
                "\n".join(lines).encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError) as exc:
            st.auth_failures += 1
            raise fail from exc
        if "x-content-sha256" in signed:
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            if digest != self.headers.get("x-content-sha256") or int(
                self.headers.get("content-length") or 0
            ) != len(body):
                st.auth_failures += 1
                raise fail
        date = self.headers.get("date") or ""
        try:
            sent = dt.datetime.strptime(date, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC)
        except ValueError as exc:
            st.auth_failures += 1
            raise fail from exc
        if abs((_now_utc() - sent).total_seconds()) > 300:
            st.auth_failures += 1
            raise ApiError(
                401, "NotAuthenticated", "Date header is outside the allowed clock skew."
            )
        return principal

    @staticmethod
    def _token_expired(token: str) -> bool:
        claims = jwt.decode(token, options={"verify_signature": False})
        return bool(claims.get("exp", 0) < time.time())

    def _inject_faults(self, op: str, body: bytes) -> None:
        st = self.server.state
        ad = shape = preemptible = None
        if op == "LaunchInstance" and body:
            details = from_wire(body, "LaunchInstanceDetails")
            ad, shape = details.availability_domain, details.shape
            preemptible = details.preemptible_instance_config is not None
        for rule in st.faults.rules:
            if rule.count is not None and rule.count <= 0:
                continue
            if not rule.matches(op, ad, shape, preemptible):
                continue
            rule._seen += 1
            if rule._seen % rule.every:
                continue
            if rule.probability is not None and rule._rng.random() >= rule.probability:
                continue
            if rule.count is not None:
                rule.count -= 1
            st.faults_fired[(rule.status, rule.code)] += 1
            if rule.status == 0:
                raise _Drop()
            raise ApiError(rule.status, rule.code, rule.message)


class _Api:
    """The operations; called with the state lock held."""

    def __init__(self, st: OciApiState, query: dict[str, str], body: bytes) -> None:
        self.st = st
        self.q = query
        self.body = body
        self.now = st.clock()

    def call(self, op: str, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        handler = getattr(self, "op_" + re.sub(r"(?<!^)([A-Z])", r"_\1", op).lower(), None)
        if handler is not None:
            return handler(ocid)
        verb, noun = re.match(r"(Create|List|Get|Delete)(\w+)", op).groups()  # type: ignore[union-attr]
        path = noun[0].lower() + noun[1:]
        path = {"vcn": "vcns", "vcns": "vcns"}.get(path, path if path.endswith("s") else path + "s")
        kind, model_name, details_name = _KIND_BY_PATH[path]
        if verb == "Create":
            return self._create_network(kind, model_name, details_name)
        if verb == "List":
            return self._list(kind)
        if verb == "Get":
            return 200, self._wire(self._get_fresh(kind, ocid)), {}
        return self._delete_network(kind, ocid)

    # --- generic ---------------------------------------------------------------------------
    def _wire(self, res: Resource) -> Any:
        if hasattr(res.model, "lifecycle_state"):
            res.model.lifecycle_state = res.state(self.now)
        return to_wire(res.model)

    def _get(self, kind: str, ocid: str | None) -> Resource:
        res = self.st.resources.get(ocid or "")
        if res is None or res.kind != kind:
            raise _not_found()
        return res

    def _get_fresh(self, kind: str, ocid: str | None) -> Resource:
        """``_get`` for a Get operation: a resource created less than ``consistency_lag_s`` ago
        is not visible yet (eventual consistency: 404 NotAuthorizedOrNotFound, which Oracle's
        API error table marks as retryable)."""
        res = self._get(kind, ocid)
        if self.now < res.timeline[0][0] + self.st.faults.consistency_lag_s:
            raise _not_found()
        return res

    def _compartment(self, compartment_id: str | None) -> str:
        if not compartment_id or compartment_id not in self.st.compartments:
            raise _not_found()
        return compartment_id

    def _page(self, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        limit = min(int(self.q.get("limit") or self.st.faults.page_size), self.st.faults.page_size)
        start = int(self.q.get("page") or 0)
        chunk = items[start : start + limit]
        headers = {}
        if start + limit < len(items):
            headers["opc-next-page"] = str(start + limit)
        return 200, chunk, headers

    def _list(self, kind: str) -> tuple[int, Any, dict[str, str]]:
        comp = self._compartment(self.q.get("compartmentId"))
        out = []
        for res in self.st.resources.values():
            if res.kind != kind or res.model.compartment_id != comp:
                continue
            if "vcnId" in self.q and getattr(res.model, "vcn_id", None) != self.q["vcnId"]:
                continue
            if "displayName" in self.q and res.model.display_name != self.q["displayName"]:
                continue
            if "lifecycleState" in self.q and res.state(self.now) != self.q["lifecycleState"]:
                continue
            if "availabilityDomain" in self.q and (
                getattr(res.model, "availability_domain", None) != self.q["availabilityDomain"]
            ):
                continue
            out.append(res)
        out.sort(
            key=lambda r: r.model.time_created, reverse=self.q.get("sortOrder", "DESC") == "DESC"
        )
        return self._page([self._wire(r) for r in out])

    def _live(self, res: Resource) -> bool:
        return res.state(self.now) not in ("TERMINATING", "TERMINATED")

    def _children(self, parent: str) -> list[Resource]:
        return [r for r in self.st.resources.values() if r.parent == parent and self._live(r)]

    # --- network ----------------------------------------------------------------------------
    def _create_network(
        self, kind: str, model_name: str, details_name: str
    ) -> tuple[int, Any, dict[str, str]]:
        details = from_wire(self.body, details_name)
        comp = self._compartment(details.compartment_id)
        ocid = self.st.new_ocid(kind)
        fields = {k: getattr(details, k) for k in details.swagger_types if hasattr(details, k)}
        model_cls = getattr(M, model_name)
        model = model_cls(**{k: v for k, v in fields.items() if k in model_cls().swagger_types})
        model.id = ocid
        model.compartment_id = comp
        model.time_created = _now_utc()
        model.freeform_tags = details.freeform_tags or {}
        model.defined_tags = details.defined_tags or {}
        parent = getattr(details, "vcn_id", None)
        if parent is not None:
            vcn = self._get("vcn", parent)
            if not self._live(vcn):
                raise ApiError(409, "IncorrectState", f"VCN {parent} is not available.")
        t = self.now + self.st.faults.network_provision_s
        res = Resource(kind, model, [(self.now, "PROVISIONING"), (t, "AVAILABLE")], parent=parent)
        if kind == "vcn":
            if not details.cidr_block and not details.cidr_blocks:
                raise ApiError(400, "InvalidParameter", "cidrBlock or cidrBlocks is required.")
            model.cidr_blocks = details.cidr_blocks or [details.cidr_block]
            model.cidr_block = model.cidr_blocks[0]
            model.default_route_table_id = self._default_child(
                model, "route_table", "RouteTable", t
            )
            model.default_security_list_id = self._default_child(
                model, "security_list", "SecurityList", t
            )
        elif kind == "subnet":
            model.virtual_router_ip = "10.0.0.1"
            model.prohibit_public_ip_on_vnic = bool(details.prohibit_public_ip_on_vnic)
            vcn_model = self.st.resources[parent].model  # type: ignore[index]
            model.route_table_id = details.route_table_id or vcn_model.default_route_table_id
            model.security_list_ids = details.security_list_ids or [
                vcn_model.default_security_list_id
            ]
            for ref in [model.route_table_id, *model.security_list_ids]:
                self._get_any(ref)
        elif kind == "internet_gateway":
            model.is_enabled = True if details.is_enabled is None else details.is_enabled
        elif kind == "route_table":
            self._check_route_targets(model.route_rules or [])
        self.st.resources[ocid] = res
        return 200, self._wire(res), {}

    def _get_any(self, ocid: str) -> Resource:
        res = self.st.resources.get(ocid)
        if res is None or not self._live(res):
            raise _not_found()
        return res

    def _check_route_targets(self, rules: list[Any]) -> None:
        for rule in rules:
            self._get_any(rule.network_entity_id)

    def _default_child(self, vcn: Any, kind: str, model_name: str, t: float) -> str:
        ocid = self.st.new_ocid(kind)
        model = getattr(M, model_name)(
            id=ocid,
            compartment_id=vcn.compartment_id,
            vcn_id=vcn.id,
            display_name=f"Default {model_name} for {vcn.display_name}",
            time_created=_now_utc(),
            freeform_tags={},
            defined_tags={},
        )
        if kind == "route_table":
            model.route_rules = []
        else:
            model.ingress_security_rules = []
            model.egress_security_rules = []
        self.st.resources[ocid] = Resource(
            kind,
            model,
            [(self.now, "PROVISIONING"), (t, "AVAILABLE")],
            parent=vcn.id,
            default_of=vcn.id,
        )
        return ocid

    def _update(
        self, kind: str, ocid: str | None, details_name: str
    ) -> tuple[int, Any, dict[str, str]]:
        res = self._get(kind, ocid)
        if not self._live(res):
            raise ApiError(409, "IncorrectState", f"{ocid} is {res.state(self.now)}.")
        details = from_wire(self.body, details_name)
        for k in details.swagger_types:
            value = getattr(details, k)
            if value is not None:
                if k == "route_rules":
                    self._check_route_targets(value)
                setattr(res.model, k, value)
        return 200, self._wire(res), {}

    def op_update_route_table(self, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        return self._update("route_table", ocid, "UpdateRouteTableDetails")

    def op_update_security_list(self, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        return self._update("security_list", ocid, "UpdateSecurityListDetails")

    def _delete_network(self, kind: str, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        res = self._get(kind, ocid)
        state = res.state(self.now)
        if state in ("TERMINATING", "TERMINATED"):
            return 204, None, {}
        if state == "PROVISIONING":
            raise ApiError(409, "IncorrectState", f"{ocid} is still PROVISIONING.")
        if res.default_of is not None:
            raise ApiError(
                409,
                "Conflict",
                "The default route table or security list of a VCN cannot be deleted.",
            )
        blockers: list[Resource] = []
        if kind == "vcn":
            blockers = [r for r in self._children(ocid or "") if r.default_of is None]
        elif kind == "subnet":
            blockers = [
                r
                for r in self.st.resources.values()
                if r.kind == "vnic" and r.model.subnet_id == ocid and self._live(r)
            ]
            if blockers:
                # The real service's wording, as users of DeleteSubnet report it.
                raise ApiError(
                    409,
                    "Conflict",
                    f"The Subnet {ocid} references the VNIC {blockers[0].model.id}. You must "
                    "remove the reference to proceed with this operation.",
                )
        elif kind == "internet_gateway":
            blockers = [
                r
                for r in self.st.resources.values()
                if r.kind == "route_table"
                and self._live(r)
                and any(rule.network_entity_id == ocid for rule in (r.model.route_rules or []))
            ]
        elif kind in ("route_table", "security_list"):
            blockers = [
                r
                for r in self.st.resources.values()
                if r.kind == "subnet"
                and self._live(r)
                and (r.model.route_table_id == ocid or ocid in (r.model.security_list_ids or []))
            ]
        if blockers:
            raise ApiError(
                409,
                "Conflict",
                f"The {kind.replace('_', ' ')} {ocid} is still used by "
                + ", ".join(sorted(b.model.id for b in blockers)),
            )
        gone = self.now + self.st.faults.network_delete_s
        res.future(self.now, [(self.now, "TERMINATING"), (gone, "TERMINATED")])
        if kind == "vcn":
            for child in self._children(ocid or ""):
                child.future(self.now, [(self.now, "TERMINATING"), (gone, "TERMINATED")])
        return 204, None, {}

    # --- identity, catalogue ----------------------------------------------------------------
    def op_get_compartment(self, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        # GET /20160918/compartments/{id}: 404 NotAuthorizedOrNotFound for one the caller
        # cannot see (Identity API reference, GetCompartment errors)
        comp = self._compartment(ocid)
        model = oci.identity.models.Compartment(
            id=comp,
            compartment_id=self.st.tenancy if comp != self.st.tenancy else None,
            name="faceswap-oci-tests" if comp != self.st.tenancy else "tenancy",
            description="test double",
            time_created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            lifecycle_state="ACTIVE",
            is_accessible=True,
        )
        return 200, to_wire(model), {}

    def op_list_dynamic_groups(self, _ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        # GET /20160918/dynamicGroups?compartmentId=<tenancy>: dynamic groups live in the
        # tenancy ("When you create a dynamic group, the group is automatically created in the
        # tenancy", Oracle's "Managing Dynamic Groups"); another compartment lists none.
        comp = self._compartment(self.q.get("compartmentId"))
        groups = [g for g in self.st.iam.dynamic_groups.values() if g.compartment_id == comp]
        return self._page([to_wire(g) for g in groups])

    def op_list_policies(self, _ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        # GET /20160918/policies?compartmentId=: the policies attached to that compartment
        # only, not its ancestors' (IdentityClient.list_policies)
        comp = self._compartment(self.q.get("compartmentId"))
        found = [p for p in self.st.iam.policies.values() if p.compartment_id == comp]
        return self._page([to_wire(p) for p in found])

    def op_get_resource_availability(self, limit: str | None) -> tuple[int, Any, dict[str, str]]:
        """GET /20190729/services/compute/limits/{limitName}/resourceAvailability: used and
        available of a limit in a compartment (and AD, for AD-scoped limits), as an
        ``oci.limits.models.ResourceAvailability``. ``used`` counts the GPUs of this tenancy's
        live instances in that AD. The real service's answer for an unknown limit name is not
        documented; the double answers 404 NotAuthorizedOrNotFound, as for other unknown
        resources; an AD-scoped limit asked without an AD gets 400 InvalidParameter (the
        Limits API reference: availabilityDomain "is required if the scope of the resource
        is AD")."""
        self._compartment(self.q.get("compartmentId"))
        ad = self.q.get("availabilityDomain")
        known = set(self.st.default_limits) | {n for n, _ in self.st.limits}
        known |= {name for name, _ in GPU_LIMITS.values()}
        if limit not in known:
            raise _not_found()
        if not ad:
            raise ApiError(400, "InvalidParameter", "availabilityDomain is required for AD limits")
        if ad not in self.st.availability_domains:
            raise ApiError(400, "InvalidParameter", "Invalid availabilityDomain")
        value = self.st.limits.get((limit, ad), self.st.default_limits.get(limit, 0))
        used = 0
        for res in self.st.resources.values():
            if res.kind != "instance" or res.state(self.now) in ("TERMINATED", "TERMINATING"):
                continue
            counted = GPU_LIMITS.get(res.model.shape)
            if counted and counted[0] == limit and res.model.availability_domain == ad:
                used += counted[1]
        model = oci.limits.models.ResourceAvailability(
            used=used,
            available=max(value - used, 0),
            effective_quota_value=float(value),
            fractional_usage=None,
            fractional_availability=None,
        )
        return 200, to_wire(model), {}

    def op_list_availability_domains(self, _ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        comp = self._compartment(self.q.get("compartmentId"))
        ads = [
            oci.identity.models.AvailabilityDomain(
                name=name, id=f"ocid1.availabilitydomain.oc1..{i}", compartment_id=comp
            )
            for i, name in enumerate(self.st.availability_domains)
        ]
        return 200, to_wire(ads), {}

    def op_list_shapes(self, _ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        self._compartment(self.q.get("compartmentId"))
        if (
            "availabilityDomain" in self.q
            and self.q["availabilityDomain"] not in self.st.availability_domains
        ):
            raise ApiError(400, "InvalidParameter", "Invalid availabilityDomain")
        return self._page([to_wire(M.Shape(**s)) for s in SHAPES])

    def op_list_images(self, _ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        self._compartment(self.q.get("compartmentId"))
        shape = self.q.get("shape")
        gpu_shape = shape is None or any(s["shape"] == shape and s["gpus"] for s in SHAPES)
        out = []
        for res in self.st.resources.values():
            img = res.model
            if res.kind != "image":
                continue
            if self.q.get("operatingSystem") not in (None, img.operating_system):
                continue
            if self.q.get("operatingSystemVersion") not in (None, img.operating_system_version):
                continue
            if "-GPU-" in img.display_name and not gpu_shape:
                continue
            out.append(img)
        out.sort(key=lambda i: i.time_created, reverse=self.q.get("sortOrder", "DESC") == "DESC")
        return self._page([to_wire(i) for i in out])

    def op_create_compute_capacity_report(
        self, _ocid: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        details = from_wire(self.body, "CreateComputeCapacityReportDetails")
        comp = self._compartment(details.compartment_id)
        if comp != self.st.tenancy:
            # CreateComputeCapacityReportDetails.compartment_id: "This should always be the root
            # compartment" (oci/core/models/create_compute_capacity_report_details.py). The real
            # error body for another compartment is not documented; this double answers 400.
            raise ApiError(
                400,
                "InvalidParameter",
                "compartmentId must be the root compartment (the tenancy OCID).",
            )
        if details.availability_domain not in self.st.availability_domains:
            raise ApiError(400, "InvalidParameter", "Invalid availabilityDomain")
        out = []
        for sa in details.shape_availabilities or []:
            blocked = any(
                r.code == "InternalError"
                and r.op == "LaunchInstance"
                and (r.count is None or r.count > 0)
                and r.matches("LaunchInstance", details.availability_domain, sa.instance_shape)
                for r in self.st.faults.rules
            )
            known = any(s["shape"] == sa.instance_shape for s in SHAPES)
            out.append(
                M.CapacityReportShapeAvailability(
                    instance_shape=sa.instance_shape,
                    fault_domain=sa.fault_domain,
                    available_count=0 if blocked or not known else 4,
                    availability_status=(
                        "HARDWARE_NOT_SUPPORTED"
                        if not known
                        else "OUT_OF_HOST_CAPACITY"
                        if blocked
                        else "AVAILABLE"
                    ),
                )
            )
        report = M.ComputeCapacityReport(
            compartment_id=comp,
            availability_domain=details.availability_domain,
            shape_availabilities=out,
            time_created=_now_utc(),
        )
        return 200, to_wire(report), {}

    # --- compute ------------------------------------------------------------------------------
    def _instance_state(self, res: Resource) -> str:
        plan = self.st.faults
        if plan.preempt_after_s is not None and res.model.preemptible_instance_config is not None:
            started = res.timeline[0][0]
            if res.state(self.now) == "RUNNING" and self.now >= started + plan.preempt_after_s:
                at = started + plan.preempt_after_s
                res.future(at, [(at, "TERMINATING"), (at + plan.terminate_s, "TERMINATED")])
        return res.state(self.now)

    def _sync_instance(self, res: Resource) -> None:
        state = self._instance_state(res)
        for att in self.st.resources.values():
            if (
                att.kind == "vnic_attachment"
                and att.model.instance_id == res.model.id
                and state in ("TERMINATING", "TERMINATED")
                and att.state(self.now) == "ATTACHED"
            ):
                gone = next((t for t, s in res.timeline if s == "TERMINATED"), self.now)
                released = max(self.now, gone + self.st.faults.vnic_release_s)
                att.future(self.now, [(self.now, "DETACHING"), (released, "DETACHED")])
                vnic = self.st.resources[att.model.vnic_id]
                vnic.future(self.now, [(released, "TERMINATED")])

    def op_launch_instance(self, _ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        d = from_wire(self.body, "LaunchInstanceDetails")
        comp = self._compartment(d.compartment_id)
        if d.availability_domain not in self.st.availability_domains:
            raise ApiError(
                400, "InvalidParameter", f"Invalid availabilityDomain {d.availability_domain}"
            )
        shape = next((s for s in SHAPES if s["shape"] == d.shape), None)
        if shape is None:
            raise ApiError(400, "InvalidParameter", f"Shape {d.shape} is not valid")
        if d.preemptible_instance_config is not None and not d.shape.startswith("VM."):
            # "Preemptible instances ... are supported on VM shapes only" (docs.oracle.com/iaas/
            # Content/Compute/Concepts/preemptible.htm, Limitations). The exact error code and
            # message of the real service are not documented; this double answers 400
            # InvalidParameter naming the shape.
            raise ApiError(
                400,
                "InvalidParameter",
                f"Preemptible capacity is not supported for shape {d.shape}.",
            )
        image_id = d.image_id or (d.source_details.image_id if d.source_details else None)
        image = self.st.resources.get(image_id or "")
        if image is None or image.kind != "image":
            raise ApiError(404, "NotAuthorizedOrNotFound", f"Image {image_id} not found")
        if "-GPU-" in image.model.display_name and not shape["gpus"]:
            raise ApiError(
                400, "InvalidParameter", f"Shape {d.shape} is not compatible with image {image_id}"
            )
        subnet_id = d.subnet_id or (
            d.create_vnic_details.subnet_id if d.create_vnic_details else None
        )
        subnet = self._get("subnet", subnet_id)
        if subnet.state(self.now) != "AVAILABLE":
            raise ApiError(409, "IncorrectState", f"Subnet {subnet_id} is not available.")
        ocid = self.st.new_ocid("instance")
        tags = d.freeform_tags or {}
        inst = M.Instance(
            id=ocid,
            compartment_id=comp,
            availability_domain=d.availability_domain,
            fault_domain=d.fault_domain or "FAULT-DOMAIN-1",
            display_name=d.display_name or ocid[-12:],
            shape=d.shape,
            shape_config=M.InstanceShapeConfig(
                ocpus=shape["ocpus"],
                memory_in_gbs=shape["memory_in_gbs"],
                gpus=shape["gpus"],
                gpu_description=shape["gpu_description"],
            ),
            image_id=image_id,
            source_details=d.source_details,
            metadata=d.metadata or {},
            freeform_tags=tags,
            defined_tags=d.defined_tags or {},
            region=self.st.region,
            launch_mode="PARAVIRTUALIZED",
            time_created=_now_utc(),
            preemptible_instance_config=(
                M.PreemptibleInstanceConfigDetails(
                    preemption_action=d.preemptible_instance_config.preemption_action
                )
                if d.preemptible_instance_config
                else None
            ),
        )
        plan = self.st.faults
        res = Resource(
            "instance",
            inst,
            [(self.now, "PROVISIONING"), (self.now + plan.provision_s, "RUNNING")],
        )
        self.st.resources[ocid] = res
        job = tags.get(JOB_TAG)
        assign = (
            True
            if not d.create_vnic_details
            else d.create_vnic_details.assign_public_ip is not False
        )
        explicit = d.create_vnic_details is not None and (
            d.create_vnic_details.assign_public_ip is True
        )
        if explicit and subnet.model.prohibit_public_ip_on_vnic:
            # CreateVnicDetails.assign_public_ip: "If set to true and `prohibitPublicIpOnVnic` =
            # true, an error is returned." (oci/core/models/create_vnic_details.py). The status,
            # code and message are not documented; this double answers 400 InvalidParameter.
            raise ApiError(
                400,
                "InvalidParameter",
                f"Subnet {subnet_id} prohibits public IP addresses on VNICs; "
                "assignPublicIp cannot be true.",
            )
        public_ip = None
        if assign and not subnet.model.prohibit_public_ip_on_vnic:
            public_ip = self.st.public_ips.get(job or "", self.st.default_public_ip)
            if self.st.on_launch is not None:
                public_ip = self.st.on_launch(inst) or public_ip
        vnic_id = self.st.new_ocid("vnic")
        vnic = M.Vnic(
            id=vnic_id,
            compartment_id=comp,
            availability_domain=d.availability_domain,
            display_name=inst.display_name,
            is_primary=True,
            private_ip=f"10.0.0.{next(self.st._ip_counter) % 250 + 2}",
            public_ip=public_ip,
            subnet_id=subnet_id,
            mac_address="02:00:17:00:00:01",
            time_created=_now_utc(),
            freeform_tags={},
            defined_tags={},
        )
        self.st.resources[vnic_id] = Resource(
            "vnic", vnic, [(self.now, "PROVISIONING"), (self.now + plan.provision_s, "AVAILABLE")]
        )
        att_id = self.st.new_ocid("vnic_attachment")
        att = M.VnicAttachment(
            id=att_id,
            compartment_id=comp,
            availability_domain=d.availability_domain,
            instance_id=ocid,
            subnet_id=subnet_id,
            vnic_id=vnic_id,
            nic_index=0,
            time_created=_now_utc(),
        )
        self.st.resources[att_id] = Resource(
            "vnic_attachment",
            att,
            [(self.now, "ATTACHING"), (self.now + plan.provision_s, "ATTACHED")],
        )
        return 200, self._wire(res), {}

    def op_get_instance(self, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        res = self._get_fresh("instance", ocid)
        self._sync_instance(res)
        return 200, self._wire(res), {}

    def op_list_instances(self, _ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        for res in self.st.instances():
            self._sync_instance(res)
        return self._list("instance")

    def op_terminate_instance(self, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        res = self._get("instance", ocid)
        state = self._instance_state(res)
        if state not in ("TERMINATING", "TERMINATED"):
            res.future(
                self.now,
                [(self.now, "TERMINATING"), (self.now + self.st.faults.terminate_s, "TERMINATED")],
            )
        self._sync_instance(res)
        return 204, None, {}

    def op_instance_action(self, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        """InstanceAction START / STOP (ComputeClient.instance_action; START of a RUNNING one
        and STOP of a STOPPED one are no-ops, an instance being terminated is 409)."""
        res = self._get("instance", ocid)
        state = self._instance_state(res)
        action = self.q.get("action")
        if state in ("TERMINATING", "TERMINATED"):
            raise ApiError(409, "IncorrectState", f"Instance {ocid} is {state}.")
        t = self.st.faults.provision_s
        if action == "START" and state in ("STOPPED", "STOPPING"):
            res.future(self.now, [(self.now, "STARTING"), (self.now + t, "RUNNING")])
        elif action in ("STOP", "SOFTSTOP") and state != "STOPPED":
            res.future(self.now, [(self.now, "STOPPING"), (self.now + t, "STOPPED")])
        elif action not in ("START", "STOP", "SOFTSTOP"):
            raise ApiError(400, "InvalidParameter", f"Unsupported action {action}")
        return 200, self._wire(res), {}

    def op_list_vnic_attachments(self, _ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        comp = self._compartment(self.q.get("compartmentId"))
        out = []
        for res in self.st.resources.values():
            if res.kind != "vnic_attachment" or res.model.compartment_id != comp:
                continue
            if "instanceId" in self.q and res.model.instance_id != self.q["instanceId"]:
                continue
            self._sync_instance(self.st.resources[res.model.instance_id])
            out.append(self._wire(res))
        return self._page(out)

    def op_get_vnic_attachment(self, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        res = self._get("vnic_attachment", ocid)
        self._sync_instance(self.st.resources[res.model.instance_id])
        return 200, self._wire(res), {}

    def op_get_vnic(self, ocid: str | None) -> tuple[int, Any, dict[str, str]]:
        return 200, self._wire(self._get("vnic", ocid)), {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: OciApiState


class OciApiServer:
    """Runs the test double on a free port, in a background thread: on 127.0.0.1, or on a
    link-local address (169.254.0.0/16, the test bed's bridge) where test-bed hosts reach it.
    Nothing else: the double never listens where another machine could reach it."""

    def __init__(self, state: OciApiState, host: str = "127.0.0.1") -> None:
        addr = ipaddress.ip_address(host)
        if not (addr.is_loopback or addr.is_link_local):
            raise ValueError(f"OciApiServer host {host}: use 127.0.0.1 or a link-local address")
        self.state = state
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.state = state
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="ociapi", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OciApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.cancel_timers()
        self._httpd.shutdown()
        self._httpd.server_close()
