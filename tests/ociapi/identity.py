"""Instance principals for the local OCI API double: the instance metadata service (IMDS), the
federation endpoint, and IAM's dynamic groups and policies, modelled just enough.

The flow follows the real SDK (oci 2.189, read at oci/auth/signers/
instance_principals_security_token_signer.py, oci/auth/federation_client.py,
oci/auth/certificate_retriever.py) and Oracle's "Calling Services from an Instance"
(docs.oracle.com/iaas/Content/Identity/Tasks/callingservicesfrominstances.htm):

1. ``InstancePrincipalsSecurityTokenSigner`` reads ``{base}/instance/region`` and the identity
   ``{base}/identity/cert.pem``, ``key.pem`` and ``intermediate.pem`` from the IMDS at
   ``http://169.254.169.254/opc/v2`` (or ``$OCI_METADATA_BASE_URL``), each request with the
   header ``Authorization: Bearer Oracle`` (``METADATA_AUTH_HEADERS``).
2. It takes the tenancy from the leaf certificate's subject: the attribute starting with
   ``opc-tenant:`` (``auth_utils.get_tenancy_id_from_certificate``).
3. ``X509FederationClient`` POSTs ``{"certificate", "publicKey", "intermediateCertificates"}``
   (PEM bodies without their armour lines, ``auth_utils.sanitize_certificate_string``) to the
   federation endpoint (``https://auth.<region>.oraclecloud.com/v1/x509`` unless
   ``federation_endpoint=`` is given), signed by ``AuthTokenRequestSigner`` with the leaf's
   private key: keyId ``<tenancy>/fed-x509/<SHA-1 fingerprint of the leaf, upper-case hex,
   colon separated>``, headers ``date (request-target)`` plus the body headers. The answer is
   ``{"token": <JWT>}``; the SDK decodes the JWT without checking its signature, for ``exp``
   (``SecurityTokenContainer``).
4. Every later call is signed with keyId ``ST$<token>`` and the session key whose public half
   was sent in step 3 (``SecurityTokenSigner``); the double's request check takes that key.

What the double makes up where Oracle documents nothing: the certificate chain (one test CA
plays the intermediate, self-signed), the JWT's claims beyond ``exp``/``iat``, the IMDS's
answer to an address that is no instance (404) and the federation endpoint's error bodies
(401 ``NotAuthenticated``, as for a bad request signature).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import ipaddress
import json
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import oci
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

IMDS_ADDRESS = "169.254.169.254"
TOKEN_TTL_S = 20 * 60

IM = oci.identity.models


def _pem_body(pem: bytes) -> str:
    """The base64 body of one PEM block, as ``sanitize_certificate_string`` sends it."""
    return b"".join(
        line for line in pem.strip().splitlines() if not line.startswith(b"-----")
    ).decode()


@dataclasses.dataclass(frozen=True)
class Identity:
    """What the IMDS hands one instance: its leaf certificate and key (PEM)."""

    instance_id: str
    cert_pem: bytes
    key_pem: bytes


class InstanceIdentityCa:
    """The test CA that plays Oracle's identity intermediate CA: it issues each instance's
    leaf certificate and signs the session tokens the federation endpoint hands out."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fsoci test identity CA")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self._issued: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def identity(self, instance: Any, tenancy: str) -> Identity:
        """The leaf certificate of ``instance`` (an ``oci.core.models.Instance``), made once.
        Its subject names the instance as Oracle's instance certificates do: CN the instance
        OCID, OUs ``opc-certtype:instance``, ``opc-compartment:<ocid>``,
        ``opc-instance:<ocid>`` and ``opc-tenant:<tenancy>`` (the SDK reads only the last)."""
        with self._lock:
            if instance.id in self._issued:
                return self._issued[instance.id]
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            warnings.filterwarnings("ignore", "Attribute's length", UserWarning)
            subject = x509.Name(
                [
                    # an OCID is longer than X.520's 64 characters for a CN; Oracle's
                    # certificates carry it all the same, so skip cryptography's length check
                    x509.NameAttribute(NameOID.COMMON_NAME, instance.id, _validate=False),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "opc-certtype:instance"),
                    x509.NameAttribute(
                        NameOID.ORGANIZATIONAL_UNIT_NAME,
                        f"opc-compartment:{instance.compartment_id}",
                    ),
                    x509.NameAttribute(
                        NameOID.ORGANIZATIONAL_UNIT_NAME, f"opc-instance:{instance.id}"
                    ),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"opc-tenant:{tenancy}"),
                ]
            )
            now = dt.datetime.now(dt.UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(hours=2))
                .sign(self.key, hashes.SHA256())
            )
            ident = Identity(
                instance.id,
                cert.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                ),
            )
            self._issued[instance.id] = ident
            return ident


class FederationError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _unauthenticated(why: str) -> FederationError:
    # The federation endpoint's error bodies are not documented; the double answers as the
    # API does for a bad signature (401 NotAuthenticated), with the reason for the test's log.
    return FederationError(401, "NotAuthenticated", f"federation refused: {why}")


# --- IAM, modelled just enough ------------------------------------------------------------
# Verbs nest (inspect < read < use < manage: "Verbs" in Oracle's "Policy Reference",
# docs.oracle.com/iaas/Content/Identity/Reference/policyreference.htm).
_VERBS = ("inspect", "read", "use", "manage")
# What the double asks of an instance principal per operation: (resource family, verb). The
# real service checks finer permissions (e.g. INSTANCE_DELETE; "Details for the Core
# Services"); the families and verbs here are the ones those permissions belong to.
_NEEDS: dict[str, list[tuple[str, str]]] = {
    "GetInstance": [("instance-family", "read")],
    "ListInstances": [("instance-family", "inspect")],
    "InstanceAction": [("instance-family", "use")],
    "TerminateInstance": [("instance-family", "manage")],
}
_STATEMENT = re.compile(
    r"^allow\s+dynamic-group\s+(?P<group>[\w.-]+)\s+to\s+(?P<verb>\w+)\s+(?P<family>[\w-]+)"
    r"\s+in\s+(?:(?P<tenancy>tenancy)|compartment\s+id\s+(?P<cid>\S+))\s*(?:where\s+.*)?$",
    re.IGNORECASE,
)
_CONDITION = re.compile(
    r"(?P<var>instance\.id|instance\.compartment\.id|tag\.(?P<ns>[^.\s]+)\.(?P<key>[^.\s]+)\.value)"
    r"\s*(?P<op>!=|=)\s*'(?P<value>[^']*)'"
)


def rule_matches(rule: str, instance: Any) -> bool:
    """Does a dynamic group's matching rule take ``instance``? Syntax of Oracle's "Writing
    Matching Rules to Define Dynamic Groups": one condition, or ``any {...}`` / ``all {...}``
    of them; variables ``instance.id``, ``instance.compartment.id`` and
    ``tag.<namespace>.<key>.value`` (defined tags). A rule the double cannot parse matches
    nothing, as a rule that names nothing would."""
    text = rule.strip()
    mode = "all"
    m = re.fullmatch(r"(any|all)\s*\{(.*)\}", text, re.IGNORECASE | re.DOTALL)
    if m:
        mode, text = m.group(1).lower(), m.group(2)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    results = []
    for part in parts:
        c = _CONDITION.fullmatch(part)
        if c is None:
            return False
        if c["var"] == "instance.id":
            actual = instance.id
        elif c["var"] == "instance.compartment.id":
            actual = instance.compartment_id
        else:
            actual = ((instance.defined_tags or {}).get(c["ns"]) or {}).get(c["key"])
        results.append((actual == c["value"]) == (c["op"] == "="))
    if not results:
        return False
    return any(results) if mode == "any" else all(results)


class IamState:
    """Dynamic groups (in the tenancy) and policies (per compartment), as the Identity API
    stores them: ``oci.identity.models.DynamicGroup`` and ``Policy``."""

    def __init__(self, tenancy: str) -> None:
        self.tenancy = tenancy
        self.dynamic_groups: dict[str, Any] = {}
        self.policies: dict[str, Any] = {}
        self.denied: list[tuple[str, str]] = []  # (operation, instance) refused for a policy

    def add_dynamic_group(self, name: str, matching_rule: str) -> Any:
        group = IM.DynamicGroup(
            id=f"ocid1.dynamicgroup.oc1..{uuid.uuid4().hex}",
            compartment_id=self.tenancy,
            name=name,
            description="test",
            matching_rule=matching_rule,
            time_created=dt.datetime.now(dt.UTC),
            lifecycle_state="ACTIVE",
        )
        self.dynamic_groups[group.id] = group
        return group

    def add_policy(self, compartment: str, statements: list[str], name: str = "p") -> Any:
        policy = IM.Policy(
            id=f"ocid1.policy.oc1..{uuid.uuid4().hex}",
            compartment_id=compartment,
            name=name,
            description="test",
            statements=list(statements),
            time_created=dt.datetime.now(dt.UTC),
            lifecycle_state="ACTIVE",
        )
        self.policies[policy.id] = policy
        return policy

    def groups_of(self, instance: Any) -> set[str]:
        return {
            g.name.lower()
            for g in self.dynamic_groups.values()
            if rule_matches(g.matching_rule, instance)
        }

    def allows(self, instance: Any, family: str, verb: str, compartment: str) -> bool:
        """Whether some policy lets a dynamic group of ``instance`` ``verb`` ``family`` in
        ``compartment``. A statement in the tenancy may name the compartment by id or say ``in
        tenancy``; one attached to the compartment itself names it by id."""
        groups = self.groups_of(instance)
        for policy in self.policies.values():
            for statement in policy.statements:
                m = _STATEMENT.match(statement.strip())
                if m is None or m["group"].lower() not in groups:
                    continue
                if m["verb"].lower() not in _VERBS or _VERBS.index(
                    m["verb"].lower()
                ) < _VERBS.index(verb):
                    continue
                if m["family"].lower() not in (family, "all-resources"):
                    continue
                if m["tenancy"] and policy.compartment_id == self.tenancy:
                    return True
                if m["cid"] == compartment:
                    return True
        return False

    def authorize(
        self, op: str, principal: Any, target_compartment: str, query: Mapping[str, str]
    ) -> bool:
        """May the instance ``principal`` call ``op`` on a resource of ``target_compartment``?
        Operations the table above does not list need ``manage all-resources``. TerminateInstance
        that deletes the boot volume (``preserveBootVolume`` false, the API's default) also
        needs ``manage volume-family``."""
        needs = list(_NEEDS.get(op, [("all-resources", "manage")]))
        if op == "TerminateInstance" and query.get("preserveBootVolume", "false") != "true":
            needs.append(("volume-family", "manage"))
        ok = all(self.allows(principal, fam, verb, target_compartment) for fam, verb in needs)
        if not ok:
            self.denied.append((op, principal.id))
        return ok


# --- the federation endpoint (POST /v1/x509) ----------------------------------------------
def federate(
    ca: InstanceIdentityCa,
    tenancy: str,
    instance_of: Callable[[str], Any | None],
    body: bytes,
    verify_request: Callable[[str, rsa.RSAPublicKey], None],
) -> tuple[str, rsa.RSAPublicKey, str]:
    """Check one ``X509FederationClient`` request and issue a session token: (token, the
    session's public key, the instance's OCID). ``verify_request(key_id, public_key)`` checks
    the HTTP signature (the server's own check); ``instance_of`` finds a live instance."""
    try:
        payload = json.loads(body)
        der = base64.b64decode(payload["certificate"])
        leaf = x509.load_der_x509_certificate(der)
        session_key = serialization.load_der_public_key(base64.b64decode(payload["publicKey"]))
        intermediates = [base64.b64decode(c) for c in payload.get("intermediateCertificates", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise FederationError(400, "InvalidParameter", f"bad federation request: {exc}") from exc
    if not isinstance(session_key, rsa.RSAPublicKey):
        raise FederationError(400, "InvalidParameter", "publicKey must be an RSA key")
    ca_der = ca.cert.public_bytes(serialization.Encoding.DER)
    if ca_der not in intermediates:
        raise _unauthenticated("the intermediate certificate is not the identity CA's")
    try:
        ca.key.public_key().verify(
            leaf.signature,
            leaf.tbs_certificate_bytes,
            padding.PKCS1v15(),
            leaf.signature_hash_algorithm or hashes.SHA256(),
        )
    except InvalidSignature as exc:
        raise _unauthenticated("the leaf certificate was not issued by the identity CA") from exc
    now = dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise _unauthenticated("the leaf certificate is not valid now")
    ous = {
        a.value.split(":", 1)[0]: a.value.split(":", 1)[1]
        for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        if isinstance(a.value, str) and ":" in a.value
    }
    if ous.get("opc-tenant") != tenancy:
        raise _unauthenticated("the certificate names another tenancy")
    fingerprint = ":".join(f"{b:02X}" for b in leaf.fingerprint(hashes.SHA1()))
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, rsa.RSAPublicKey)
    verify_request(f"{tenancy}/fed-x509/{fingerprint}", leaf_key)
    instance_id = ous.get("opc-instance", "")
    if instance_of(instance_id) is None:
        # A terminated instance's certificate no longer federates (not documented; the real
        # service stops rotating it, and the double refuses it at once).
        raise _unauthenticated(f"instance {instance_id} is not running")
    issued = int(time.time())
    token = jwt.encode(
        {
            "sub": instance_id,
            "opc-instance": instance_id,
            "opc-compartment": ous.get("opc-compartment"),
            "opc-tenant": tenancy,
            "ptype": "instance",
            "iat": issued,
            "exp": issued + TOKEN_TTL_S,
            "jti": uuid.uuid4().hex,
        },
        ca.key,
        algorithm="RS256",
    )
    return token, session_key, instance_id


# --- the instance metadata service ----------------------------------------------------------
class _ImdsHandler(BaseHTTPRequestHandler):
    server: _ImdsServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        imds = self.server.imds
        imds.callers.append(self.client_address[0])
        path = self.path.split("?", 1)[0].rstrip("/")
        if not path.startswith("/opc/v2/"):
            # The double serves IMDS v2 only (the SDK uses v2; Oracle recommends disabling
            # the legacy v1 endpoints: "Getting Instance Metadata", docs.oracle.com/iaas/
            # Content/Compute/Tasks/gettingmetadata.htm).
            self._answer(404, b"Not Found")
            return
        if self.headers.get("authorization") != "Bearer Oracle":
            # IMDS v2 requires "Authorization: Bearer Oracle" (same page); without it 401.
            self._answer(401, b"Unauthorized")
            return
        instance = imds.instance_at(self.client_address[0])
        if instance is None:
            self._answer(404, b"Not Found")
            return
        sub = path[len("/opc/v2/") :]
        ident = imds.ca.identity(instance, imds.tenancy)
        if sub == "identity/cert.pem":
            self._answer(200, ident.cert_pem)
        elif sub == "identity/key.pem":
            imds.key_reads += 1
            self._answer(200, ident.key_pem)
        elif sub == "identity/intermediate.pem":
            self._answer(200, imds.ca.cert_pem)
        elif sub.startswith("instance"):
            doc = {
                "id": instance.id,
                "displayName": instance.display_name,
                "compartmentId": instance.compartment_id,
                "availabilityDomain": instance.availability_domain,
                "region": imds.region,
                "canonicalRegionName": imds.region,
                "shape": instance.shape,
                "state": "Running",
                "timeCreated": int(instance.time_created.timestamp() * 1000),
                # "regionInfo" as the IMDS v2 serves it ("Getting Instance Metadata")
                "regionInfo": {
                    "realmKey": "oc1",
                    "realmDomainComponent": "oraclecloud.com",
                    "regionKey": imds.region.split("-")[1][:3].upper(),
                    "regionIdentifier": imds.region,
                },
                "freeformTags": instance.freeform_tags or {},
                "definedTags": instance.defined_tags or {},
            }
            field = sub[len("instance") :].strip("/")
            if not field:
                self._answer(200, json.dumps(doc).encode(), "application/json")
            elif field in doc:
                value = doc[field]
                text = value if isinstance(value, str) else json.dumps(value)
                self._answer(200, str(text).encode())
            else:
                self._answer(404, b"Not Found")
        else:
            self._answer(404, b"Not Found")


class _ImdsServer(ThreadingHTTPServer):
    daemon_threads = True
    imds: MetadataService


class MetadataService:
    """The IMDS for the double's instances, on ``host:port``: 169.254.169.254:80 on the test
    bed's bridge (where only its hosts can reach it), or 127.0.0.1 for tests from the
    controller (``OCI_METADATA_BASE_URL``). It tells a caller apart by its source address:
    the instance whose primary VNIC has that public address (the double hands test-bed host
    addresses out as public IPs, ``OciApiState.set_public_ip``)."""

    def __init__(
        self,
        ca: InstanceIdentityCa,
        tenancy: str,
        region: str,
        instance_at: Callable[[str], Any | None],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        addr = ipaddress.ip_address(host)
        if not (addr.is_loopback or host == IMDS_ADDRESS):
            raise ValueError(f"MetadataService host {host}: use 127.0.0.1 or {IMDS_ADDRESS}")
        self.ca, self.tenancy, self.region, self.instance_at = ca, tenancy, region, instance_at
        self.callers: list[str] = []  # the source address of every request
        self.key_reads = 0
        self._httpd = _ImdsServer((host, port), _ImdsHandler)
        self._httpd.imds = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="imds", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/opc/v2" if port != 80 else f"http://{host}/opc/v2"

    def start(self) -> MetadataService:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
