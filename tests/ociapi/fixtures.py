"""pytest fixtures: a test key pair and OCI config file, and the local OCI API server."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.ociapi.server import OciApiServer, OciApiState

TENANCY = "ocid1.tenancy.oc1..aaaaaaaatestfaceswapocitenancy0000000000000000000000000000"
USER = "ocid1.user.oc1..aaaaaaaatestfaceswapociuser000000000000000000000000000000000"
COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaatestfaceswapocicompartment000000000000000000000"
REGION = "eu-frankfurt-1"


@dataclasses.dataclass(frozen=True)
class OciTestConfig:
    config_file: Path
    profile: str
    key_file: Path
    key_id: str
    public_key: rsa.RSAPublicKey
    tenancy: str = TENANCY
    user: str = USER
    compartment: str = COMPARTMENT
    region: str = REGION


@dataclasses.dataclass
class OciApi:
    """What a test gets: the server's URL and state, and the config to reach it."""

    server: OciApiServer
    cfg: OciTestConfig

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state(self) -> OciApiState:
        return self.server.state

    def client_kwargs(self) -> dict[str, object]:
        return {"config_file": str(self.cfg.config_file), "profile": self.cfg.profile}


def write_private_key(key_file: Path, pass_phrase: str | None = None) -> rsa.RSAPrivateKey:
    """A fresh RSA key pair, its private half written to ``key_file`` (PEM, 0600; encrypted
    with ``pass_phrase`` when given, as `oci setup config` offers)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(pass_phrase.encode())
        if pass_phrase
        else serialization.NoEncryption()
    )
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    os.chmod(key_file, 0o600)
    return key


def write_test_config(
    directory: Path, profile: str = "DEFAULT", pass_phrase: str | None = None
) -> OciTestConfig:
    """A fresh RSA key pair and an OCI config file naming it, as `oci setup config` writes them
    (with ``pass_phrase=`` when the key is encrypted)."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "oci_api_key.pem"
    key = write_private_key(key_file, pass_phrase)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, 32, 2))
    config_file = directory / "config"
    config_file.write_text(
        f"[{profile}]\nuser={USER}\nfingerprint={fingerprint}\ntenancy={TENANCY}\n"
        f"region={REGION}\nkey_file={key_file}\n"
        + (f"pass_phrase={pass_phrase}\n" if pass_phrase else "")
    )
    os.chmod(config_file, 0o600)
    return OciTestConfig(
        config_file=config_file,
        profile=profile,
        key_file=key_file,
        key_id=f"{TENANCY}/{USER}/{fingerprint}",
        public_key=key.public_key(),
    )


def oci_target(cfg: OciTestConfig, endpoint: str, **oci: object) -> dict[str, object]:
    """A job file's ``target`` for the local OCI API at ``endpoint`` with the test config;
    ``oci`` adds to or overrides ``target.oci``."""
    section: dict[str, object] = {
        "profile": cfg.profile,
        "config_file": str(cfg.config_file),
        "compartment": cfg.compartment,
        "region": cfg.region,
        "ssh_ingress_cidr": "198.51.100.7/32",
        "service_endpoint": endpoint,
    }
    return {"kind": "oci", "oci": {**section, **oci}}


@pytest.fixture(scope="session")
def oci_test_config(tmp_path_factory: pytest.TempPathFactory) -> OciTestConfig:
    return write_test_config(tmp_path_factory.mktemp("oci-config"))


def start_ociapi(cfg: OciTestConfig) -> OciApi:
    """A fresh local OCI API (empty tenancy, no faults), started; ``server.stop()`` ends it."""
    state = OciApiState(
        tenancy=TENANCY,
        key_id=cfg.key_id,
        public_key=cfg.public_key,
        compartments=[COMPARTMENT],
        region=REGION,
    )
    return OciApi(OciApiServer(state).start(), cfg)


def job_bucket_par(api: OciApi, bucket: str, prefix: str, hours: float = 1.0) -> str:
    """Bucket ``bucket`` (made if missing) and a read/write PAR on ``prefix``, through the real
    SDK, as oci_job_bucket makes them; the PAR's full URL."""
    import datetime as dt

    import oci

    client = oci.object_storage.ObjectStorageClient(
        oci.config.from_file(str(api.cfg.config_file), api.cfg.profile),
        service_endpoint=api.url,
    )
    ns = client.get_namespace().data
    if bucket not in api.state.object_storage.buckets:
        client.create_bucket(
            ns,
            oci.object_storage.models.CreateBucketDetails(
                name=bucket, compartment_id=api.cfg.compartment
            ),
        )
    par = client.create_preauthenticated_request(
        ns,
        bucket,
        oci.object_storage.models.CreatePreauthenticatedRequestDetails(
            name=bucket,
            object_name=prefix,
            access_type="AnyObjectReadWrite",
            time_expires=dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours),
        ),
    ).data
    return f"{api.url}{par.access_uri}"


@pytest.fixture
def ociapi(oci_test_config: OciTestConfig) -> Iterator[OciApi]:
    """A fresh local OCI API (empty tenancy, no faults) for one test."""
    api = start_ociapi(oci_test_config)
    try:
        yield api
    finally:
        api.server.stop()
