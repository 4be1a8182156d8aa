"""Instance principals against the double, driven by the real SDK's signer from the controller:
the IMDS (on 127.0.0.1, reached through ``OCI_METADATA_BASE_URL``, which
``InstancePrincipalsSecurityTokenSigner`` honours), the federation endpoint, the session
token's calls, and the policy that lets an instance terminate itself."""

from __future__ import annotations

import ipaddress
import json
import shlex
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oci
import pytest
from cryptography import x509

from tests.oci.playbook import run_playbook
from tests.oci.test_inventory import launch
from tests.ociapi.fixtures import TENANCY, OciApi
from tests.ociapi.identity import IMDS_ADDRESS, MetadataService
from tests.ociapi.server import OciApiServer

M = oci.core.models
NO_RETRY = oci.retry.NoneRetryStrategy()
JOB = "ipjob"


def _launch(api: OciApi, job: str = JOB, address: str = "127.0.0.1") -> M.Instance:
    """One RUNNING instance of ``job`` whose public address is ``address`` (the IMDS's
    caller: 127.0.0.1 for the controller's tests)."""
    api.state.faults.provision_s = 0.0
    return api.state.resources[launch(api, job, public_ip=address)].model


@pytest.fixture
def imds(ociapi: OciApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadataService]:
    service = ociapi.state.metadata_service()
    monkeypatch.setenv("OCI_METADATA_BASE_URL", service.base_url)
    try:
        yield service
    finally:
        service.stop()


def _signer(api: OciApi) -> oci.auth.signers.InstancePrincipalsSecurityTokenSigner:
    return oci.auth.signers.InstancePrincipalsSecurityTokenSigner(
        federation_endpoint=f"{api.url}/v1/x509",
        retry_strategy=NO_RETRY,
        federation_client_retry_strategy=NO_RETRY,
    )


def _compute(api: OciApi, signer: object) -> oci.core.ComputeClient:
    return oci.core.ComputeClient(
        {"region": api.cfg.region}, signer=signer, service_endpoint=api.url, retry_strategy=NO_RETRY
    )


def _grant(api: OciApi) -> None:
    comp = api.cfg.compartment
    api.state.iam.add_dynamic_group("fsoci-detached", f"instance.compartment.id = '{comp}'")
    grant = "Allow dynamic-group fsoci-detached to manage {} in compartment id " + comp
    api.state.iam.add_policy(
        TENANCY, [grant.format("instance-family"), grant.format("volume-family")]
    )


def test_the_sdk_signer_federates_and_the_token_signs_calls(
    ociapi: OciApi, imds: MetadataService
) -> None:
    inst = _launch(ociapi)
    _grant(ociapi)
    signer = _signer(ociapi)
    # the tenancy comes from the leaf certificate's opc-tenant OU, the region from the IMDS
    assert signer.tenancy_id == TENANCY
    assert signer.region == ociapi.cfg.region
    got = _compute(ociapi, signer).get_instance(inst.id).data
    assert got.id == inst.id
    assert ociapi.state.calls["FederateX509"] == 1
    token = signer.federation_client.get_security_token()
    assert ociapi.state.token_principals[token] == inst.id
    assert ociapi.state.auth_failures == 0


def test_without_a_policy_terminate_is_404_and_with_one_the_instance_terminates(
    ociapi: OciApi, imds: MetadataService
) -> None:
    inst = _launch(ociapi)
    compute = _compute(ociapi, _signer(ociapi))
    with pytest.raises(oci.exceptions.ServiceError) as err:
        compute.terminate_instance(inst.id, preserve_boot_volume=False)
    assert (err.value.status, err.value.code) == (404, "NotAuthorizedOrNotFound")
    assert ociapi.state.iam.denied == [("TerminateInstance", inst.id)]
    assert ociapi.state.resources[inst.id].state(ociapi.state.clock()) == "RUNNING"
    # instance-family alone does not delete the boot volume: volume-family is needed too
    comp = ociapi.cfg.compartment
    ociapi.state.iam.add_dynamic_group("dg", f"any {{instance.id = '{inst.id}'}}")
    ociapi.state.iam.add_policy(
        comp, [f"allow dynamic-group dg to manage instance-family in compartment id {comp}"]
    )
    with pytest.raises(oci.exceptions.ServiceError) as err:
        compute.terminate_instance(inst.id, preserve_boot_volume=False)
    assert err.value.status == 404
    ociapi.state.iam.add_policy(
        comp, [f"allow dynamic-group dg to manage volume-family in compartment id {comp}"]
    )
    compute.terminate_instance(inst.id, preserve_boot_volume=False)
    ociapi.state.faults.terminate_s = 0.0
    assert compute.get_instance(inst.id).data.lifecycle_state in ("TERMINATING", "TERMINATED")


def test_a_rule_for_another_compartment_or_instance_grants_nothing(
    ociapi: OciApi, imds: MetadataService
) -> None:
    inst = _launch(ociapi)
    other = "ocid1.compartment.oc1..other"
    ociapi.state.iam.add_dynamic_group("dg", f"instance.compartment.id = '{other}'")
    ociapi.state.iam.add_dynamic_group("dg2", "instance.id != '" + inst.id + "'")
    ociapi.state.iam.add_policy(
        TENANCY,
        [
            "allow dynamic-group dg to manage all-resources in tenancy",
            "allow dynamic-group dg2 to manage all-resources in tenancy",
        ],
    )
    with pytest.raises(oci.exceptions.ServiceError) as err:
        _compute(ociapi, _signer(ociapi)).get_instance(inst.id)
    assert err.value.status == 404


def test_the_imds_wants_its_header_and_serves_the_instance_identity(
    ociapi: OciApi, imds: MetadataService
) -> None:
    inst = _launch(ociapi)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{imds.base_url}/instance/id", timeout=5)
    assert err.value.code == 401
    req = urllib.request.Request(
        f"{imds.base_url}/identity/cert.pem", headers={"Authorization": "Bearer Oracle"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        cert = x509.load_pem_x509_certificate(resp.read())
    names = [a.value for a in cert.subject]
    assert inst.id in names
    assert f"opc-instance:{inst.id}" in names
    assert f"opc-tenant:{TENANCY}" in names
    req = urllib.request.Request(
        f"{imds.base_url}/instance/id", headers={"Authorization": "Bearer Oracle"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.read().decode() == inst.id


def test_an_address_that_is_no_instance_gets_nothing(ociapi: OciApi, imds: MetadataService) -> None:
    with pytest.raises(oci.exceptions.ServiceError) as err:
        _signer(ociapi)
    assert err.value.status == 404


def test_a_terminated_or_stopping_instance_gets_no_new_token(
    ociapi: OciApi, imds: MetadataService
) -> None:
    inst = _launch(ociapi)
    signer = _signer(ociapi)
    res = ociapi.state.resources[inst.id]
    # stopping: the IMDS still answers, the federation endpoint refuses a non-running one
    res.future(ociapi.state.clock(), [(0.0, "STOPPING")])
    with pytest.raises(oci.exceptions.ServiceError) as err:
        signer.refresh_security_token()
    assert (err.value.status, err.value.code) == (401, "NotAuthenticated")
    # terminated: no instance answers at that address any more
    res.future(ociapi.state.clock(), [(0.0, "TERMINATED")])
    with pytest.raises(oci.exceptions.ServiceError) as err:
        signer.refresh_security_token()
    assert err.value.status == 404


def test_a_token_the_double_did_not_issue_is_refused(ociapi: OciApi) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = oci.auth.signers.SecurityTokenSigner("not-a-token", key)
    with pytest.raises(oci.exceptions.ServiceError) as err:
        _compute(ociapi, forged).list_instances(ociapi.cfg.compartment)
    assert err.value.status == 401


@pytest.mark.testbed
def test_on_a_test_bed_host_the_watchdog_terminates_its_instance(
    ociapi: OciApi, testbed_hosts: Any, tmp_path: Path
) -> None:
    """The one test-bed test of instance principals: the IMDS binds 169.254.169.254:80 on the
    test bed's bridge, a host reaches it through its route via eth0 (nothing else beyond its
    subnet) and gets its own identity; the watchdog armed with ``oci_watchdog_terminate`` and
    fired (by its path unit, when a detached supervisor's end file appears; the timer starts
    the same service at ``max_hours``) terminates the host's instance through the instance
    principal, with the host's own Python and openssl.
    A dedicated host: the agent's fallback would power it off."""
    host = testbed_hosts(1)[0]
    other = _launch(ociapi)
    mine = _launch(ociapi, job="tb", address=host.address)
    _grant(ociapi)
    bridge = str(ipaddress.ip_network(f"{host.address}/24", strict=False).network_address + 1)
    api = OciApiServer(ociapi.state, host=bridge).start()
    service = ociapi.state.metadata_service(IMDS_ADDRESS, 80)
    try:
        probe = (
            "import urllib.request as u\n"
            "h = {'Authorization': 'Bearer Oracle'}\n"
            "for p in ('instance/id', 'identity/cert.pem'):\n"
            "    r = u.urlopen(u.Request('http://169.254.169.254/opc/v2/' + p, headers=h))\n"
            "    print(r.read().decode().splitlines()[0])\n"
        )
        out = host.ssh(f"python3 -c {shlex.quote(probe)}", check=False)
        assert out.returncode == 0, (out.stderr, service.callers)
        assert out.stdout.splitlines() == [mine.id, "-----BEGIN CERTIFICATE-----"]
        assert mine.id != other.id
        route = host.ssh("ip -4 route show").stdout
        assert "169.254.169.254 dev eth0" in route and "default" not in route

        inventory = tmp_path / "inventory.json"
        inventory.write_text(json.dumps(host.ansible_inventory("fsoci_target")))
        armed = run_playbook(
            "tests/oci/data/watchdog.yml",
            {
                "oci_watchdog_terminate": True,
                "oci_watchdog_service_endpoint": api.url,
                "oci_watchdog_finish_file": "/var/lib/fsoci-test/detached.json",
            },
            tmp_path / "arm",
            inventory=inventory,
        )
        assert armed.rc == 0, armed.stdout[-4000:]
        assert armed.event("oci_watchdog")["action"] == "terminate"
        # the detached supervisor's end file appears: the path unit runs the watchdog's
        # service at once, as root (the same service the timer runs at max_hours)
        host.ssh("mkdir -p /var/lib/fsoci-test && echo '{}' > /var/lib/fsoci-test/detached.json")
        want = json.dumps({"action": "terminate", "instance": mine.id})
        log = ""
        for _ in range(60):
            log = host.ssh("journalctl -u fsoci-watchdog.service --no-pager -o cat").stdout
            if want in log:
                break
            time.sleep(0.5)
        assert want in log, log
        time.sleep(2)  # a second run would power the host off: there is none
        log = host.ssh("journalctl -u fsoci-watchdog.service --no-pager -o cat").stdout
        assert log.count('"action"') == 1, log
        ociapi.state.faults.terminate_s = 0.0
        assert ociapi.state.resources[mine.id].state(ociapi.state.clock() + 1) == "TERMINATED"
        assert ociapi.state.resources[other.id].state(ociapi.state.clock()) == "RUNNING"
        assert ociapi.state.iam.denied == []
        # the VM's own calls came from its address: federation, then its TerminateInstance
        from_host = [op for op, who in ociapi.state.call_log if who == host.address]
        assert from_host == ["FederateX509", "TerminateInstance"]
    finally:
        service.stop()
        api.stop()
