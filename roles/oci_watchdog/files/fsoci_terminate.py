#!/usr/bin/env python3
"""End this OCI instance's billing from the instance itself: terminate it (boot volume
included) through its instance principal, or, when that is refused or impossible, power off.

Run by the watchdog at ``max_hours`` and by a detached job's agent when the job is done. It
runs on the host's system Python (3.9 on Oracle Linux 9) with the standard library and the
``openssl`` command, so the host needs no OCI SDK. The flow is the SDK's own
(oci/auth/signers/instance_principals_security_token_signer.py, oci/auth/federation_client.py):

1. from the instance metadata service (``http://169.254.169.254/opc/v2``, header
   ``Authorization: Bearer Oracle``): ``instance/id``, ``instance/region``,
   ``instance/regionInfo`` (the realm's domain), ``identity/cert.pem``, ``key.pem``,
   ``intermediate.pem``;
2. a fresh session key pair; POST ``/v1/x509`` to the federation endpoint
   (``https://auth.<region>.<realm domain>``) with the certificate, the intermediate and the
   session's public key, signed with the identity key (keyId ``<tenancy>/fed-x509/<SHA-1
   fingerprint>``, headers ``date (request-target) content-length content-type
   x-content-sha256``), which answers ``{"token": ...}``;
3. ``DELETE /20160918/instances/<id>?preserveBootVolume=false`` on Core Services
   (``https://iaas.<region>.<realm domain>``), signed with keyId ``ST$<token>`` and the
   session key (headers ``date (request-target) host``).

Prints one JSON line: ``{"action": "terminate"|"poweroff"|"none", ...}``. The identity key and
the token are credentials: they stay in a private temporary folder and are never printed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from email.utils import formatdate
from urllib.parse import urlsplit

IMDS = "http://169.254.169.254/opc/v2"
HEADERS = {"Authorization": "Bearer Oracle"}
TIMEOUT = 30


class Refused(Exception):
    """A step failed; the message says which and why (never a credential)."""


def _get(url: str) -> bytes:
    req = urllib.request.Request(url, headers=HEADERS)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return bytes(resp.read())
    except (urllib.error.URLError, OSError) as exc:
        raise Refused(f"instance metadata {url.rsplit('/opc/v2/', 1)[-1]}: {exc}") from exc


def _openssl(args: list[str], data: bytes | None = None) -> bytes:
    done = subprocess.run(
        ["openssl", *args], input=data, capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise Refused(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')[:200]}")
    return done.stdout


def _pem_body(pem: bytes) -> str:
    return "".join(
        line.strip() for line in pem.decode().splitlines() if line and not line.startswith("-----")
    )


def _sign(key_file: str, text: str) -> str:
    return base64.b64encode(
        _openssl(["dgst", "-sha256", "-sign", key_file], text.encode())
    ).decode()


def signed_request(
    method: str,
    url: str,
    key_id: str,
    key_file: str,
    body: bytes | None = None,
    sign_host: bool = True,
) -> tuple[int, bytes]:
    """One request signed as the OCI SDK signs it (draft-cavage, rsa-sha256)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"date": formatdate(usegmt=True)}
    names = ["date", "(request-target)"]
    if sign_host:
        headers["host"] = parts.netloc
        names.append("host")
    if body is not None:
        headers["content-type"] = "application/json"
        headers["content-length"] = str(len(body))
        headers["x-content-sha256"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
        names += ["content-length", "content-type", "x-content-sha256"]
    lines = [
        f"(request-target): {method.lower()} {target}"
        if n == "(request-target)"
        else f"{n}: {headers[n]}"
        for n in names
    ]
    signature = _sign(key_file, "\n".join(lines))
    headers["authorization"] = (
        f'Signature version="1",headers="{" ".join(names)}",keyId="{key_id}",'
        f'algorithm="rsa-sha256",signature="{signature}"'
    )
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, bytes(exc.read())
    except (urllib.error.URLError, OSError) as exc:
        raise Refused(f"{method} {parts.netloc}{parts.path}: {exc}") from exc


def _error(status: int, body: bytes) -> str:
    try:
        data = json.loads(body)
        return f"{status} {data.get('code')}: {data.get('message')}"
    except ValueError:
        return f"{status}"


def terminate(metadata_url: str, federation: str | None, endpoint: str | None) -> dict[str, str]:
    """Terminate this instance through its instance principal; raises ``Refused``."""
    instance_id = _get(f"{metadata_url}/instance/id").decode().strip()
    region = _get(f"{metadata_url}/instance/region").decode().strip()
    try:
        info = json.loads(_get(f"{metadata_url}/instance/regionInfo"))
        domain = str(info.get("realmDomainComponent") or "oraclecloud.com")
        region = str(info.get("regionIdentifier") or region)
    except (Refused, ValueError):
        domain = "oraclecloud.com"
    cert = _get(f"{metadata_url}/identity/cert.pem")
    intermediate = _get(f"{metadata_url}/identity/intermediate.pem")
    with tempfile.TemporaryDirectory(prefix="fsoci-ip-") as tmp:
        os.chmod(tmp, 0o700)
        identity_key = os.path.join(tmp, "identity.pem")
        session_key = os.path.join(tmp, "session.pem")
        with open(os.open(identity_key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
            fh.write(_get(f"{metadata_url}/identity/key.pem"))
        _openssl(
            [
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                session_key,
            ]
        )
        session_public = _openssl(["pkey", "-in", session_key, "-pubout"])
        der = _openssl(["x509", "-outform", "DER"], cert)
        fingerprint = ":".join(
            f"{b:02X}" for b in hashlib.sha1(der, usedforsecurity=False).digest()
        )
        subject = _openssl(["x509", "-noout", "-subject", "-nameopt", "RFC2253"], cert).decode()
        tenancy = re.search(r"OU=opc-tenant:([^,\s]+)", subject)
        if tenancy is None:
            raise Refused("the identity certificate names no tenancy (opc-tenant)")
        payload = json.dumps(
            {
                "certificate": _pem_body(cert),
                "publicKey": _pem_body(session_public),
                "intermediateCertificates": [_pem_body(intermediate)],
            }
        ).encode()
        fed_url = federation or f"https://auth.{region}.{domain}/v1/x509"
        status, body = signed_request(
            "POST",
            fed_url,
            f"{tenancy.group(1)}/fed-x509/{fingerprint}",
            identity_key,
            payload,
            sign_host=False,
        )
        if status != 200:
            raise Refused(f"federation {urlsplit(fed_url).netloc}: {_error(status, body)}")
        token = json.loads(body)["token"]
        api = (endpoint or f"https://iaas.{region}.{domain}").rstrip("/")
        status, body = signed_request(
            "DELETE",
            f"{api}/20160918/instances/{instance_id}?preserveBootVolume=false",
            f"ST${token}",
            session_key,
        )
    if status not in (200, 204):
        raise Refused(f"TerminateInstance {instance_id}: {_error(status, body)}")
    return {"action": "terminate", "instance": instance_id}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata-url", default=IMDS)
    parser.add_argument("--federation-endpoint", default=None)
    parser.add_argument("--endpoint", default=None, help="Core Services endpoint")
    parser.add_argument(
        "--poweroff",
        default="systemctl poweroff",
        help="command run when terminating is refused ('' for none)",
    )
    args = parser.parse_args(argv)
    try:
        result: dict[str, str] = terminate(
            args.metadata_url.rstrip("/"), args.federation_endpoint, args.endpoint
        )
    except Refused as exc:
        result = {"action": "poweroff" if args.poweroff else "none", "reason": str(exc)}
        print(json.dumps(result), flush=True)
        if args.poweroff:
            return subprocess.run(shlex.split(args.poweroff), check=False).returncode
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
