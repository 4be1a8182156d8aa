"""provision.yml / teardown.yml through ansible-playbook, the real modules and the real SDK,
against the local OCI API (signatures checked), with faults injected."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.media import write_pair
from tests.oci.playbook import fake_sshd, job_vars, run_playbook
from tests.ociapi.fixtures import OciApi

CREATES = (
    "CreateVcn",
    "CreateSubnet",
    "CreateInternetGateway",
    "CreateRouteTable",
    "CreateSecurityList",
    "LaunchInstance",
)


@pytest.fixture
def sshd_port() -> Iterator[int]:
    with fake_sshd() as port:
        yield port


@pytest.fixture
def api(ociapi: OciApi) -> OciApi:
    ociapi.state.set_public_ip("127.0.0.1")
    ociapi.state.faults.provision_s = 0.3
    ociapi.state.faults.terminate_s = 0.3
    return ociapi


def provision(
    api: OciApi, tmp_path: Path, port: int, name: str = "demo", *args: str, **oci: object
):  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    return run_playbook(
        "playbooks/provision.yml",
        job_vars(api, name, state, **oci),
        tmp_path / "run",
        "-e",
        f"oci_instance_ssh_port={port}",
        "-e",
        "oci_instance_ssh_wait_timeout=20",
        *args,
    )


@contextmanager
def ip_lookup(address: str) -> Iterator[str]:
    """A plain-text "what is my IP" service on 127.0.0.1, for ssh_ingress_cidr: auto."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"{address}\n".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def teardown(  # type: ignore[no-untyped-def]
    api: OciApi, tmp_path: Path, name: str = "demo", state: Path | None = None, **extra: object
):
    return run_playbook(
        "playbooks/teardown.yml",
        {**job_vars(api, name, state or tmp_path / "state"), **extra},
        tmp_path / "run-td",
    )


def test_full_lifecycle_second_run_creates_nothing_teardown_leaves_nothing(
    api: OciApi, tmp_path: Path, sshd_port: int
) -> None:
    with ip_lookup("198.51.100.99") as url:
        first = provision(
            api,
            tmp_path,
            sshd_port,
            "demo",
            "-e",
            f"oci_network_ip_lookup_url={url}",
            ssh_ingress_cidr="auto",
        )
    assert first.rc == 0, first.stdout[-4000:]
    (sl,) = [
        r
        for r in api.state.resources.values()
        if r.kind == "security_list" and r.default_of is None
    ]
    assert [
        (r.source, r.tcp_options.destination_port_range.min)
        for r in sl.model.ingress_security_rules
    ] == [("198.51.100.99/32", 22)]
    state = tmp_path / "state"
    target = json.loads((state / "target.json").read_text())
    assert {k: target[k] for k in ("host", "user", "port", "key")} == {
        "host": "127.0.0.1",
        "user": "opc",
        "port": sshd_port,
        "key": str(state / "id_ed25519"),
    }
    assert (target["shape"], target["gpu_model"]) == ("VM.GPU.A10.1", "NVIDIA A10")
    assert stat.S_IMODE((state / "id_ed25519").stat().st_mode) == 0o600
    assert (state / "id_ed25519.pub").read_text().startswith("ssh-ed25519 ")
    assert sorted(r["kind"] for r in api.state.live_tagged("demo")) == [
        "bucket",
        "instance",
        "internet_gateway",
        "route_table",
        "security_list",
        "subnet",
        "vcn",
    ]
    assert first.event("oci_attempts")["attempts"][0]["result"] == "launched"
    # The job bucket: private, tagged; the PAR's URL only in a 0600 file, never in the output.
    assert first.event("oci_storage")["bucket"] == "fsoci-demo"
    par_url = (state / "storage.par").read_text().strip()
    assert stat.S_IMODE((state / "storage.par").stat().st_mode) == 0o600
    assert par_url.split("/p/")[1].split("/")[0] not in first.stdout
    assert "PRIVATE KEY" not in first.stdout
    assert api.cfg.key_id.rsplit("/", 1)[1] not in first.stdout
    assert api.state.auth_failures == 0

    creates = {op: api.state.calls[op] for op in CREATES}
    with ip_lookup("198.51.100.99") as url:
        second = provision(
            api,
            tmp_path,
            sshd_port,
            "demo",
            "-e",
            f"oci_network_ip_lookup_url={url}",
            ssh_ingress_cidr="auto",
        )
    assert second.rc == 0, second.stdout[-4000:]
    assert second.changed == 0
    assert {op: api.state.calls[op] for op in CREATES} == creates

    import urllib.request

    snapshot = par_url + "jobs/demo/latest.json"
    with urllib.request.urlopen(urllib.request.Request(snapshot, b"{}", method="PUT")) as resp:
        assert resp.status == 200
    down = teardown(api, tmp_path)
    assert down.rc == 0, down.stdout[-4000:]
    # Results not fetched: the model stays in the bucket; the PAR (a credential) goes.
    assert down.event("oci_teardown")["storage"] == {"pars": 1, "objects": 0, "bucket": None}
    assert [r["kind"] for r in api.state.live_tagged()] == ["bucket"]
    fetched = teardown(api, tmp_path, fsoci_remove_storage=True)
    assert fetched.event("oci_teardown")["storage"] == {
        "pars": 0,
        "objects": 1,
        "bucket": "fsoci-demo",
    }
    assert [r["kind"] for r in down.event("oci_teardown")["removed"]] == [
        "instance",
        "subnet",
        "route_table",
        "security_list",
        "internet_gateway",
        "vcn",
    ]
    assert api.state.live_tagged() == []
    assert not (state / "target.json").exists()
    assert not (state / "storage.par").exists()


def test_capacity_failover_to_next_shape_and_ad(
    api: OciApi, tmp_path: Path, sshd_port: int
) -> None:
    ad1, ad2, ad3 = api.state.availability_domains
    api.state.faults.no_capacity(None, "VM.GPU.A10.1")
    api.state.faults.limit_exceeded("VM.GPU3.1")
    api.state.faults.no_capacity(ad1, "VM.GPU2.1")
    run = provision(api, tmp_path, sshd_port, shapes=["VM.GPU.A10.1", "VM.GPU3.1", "VM.GPU2.1"])
    assert run.rc == 0, run.stdout[-4000:]
    target = json.loads((tmp_path / "state" / "target.json").read_text())
    assert (target["shape"], target["gpu_model"]) == ("VM.GPU2.1", "NVIDIA P100")
    assert target["availability_domain"] in (ad2, ad3)
    results = [(a["shape"], a["result"]) for a in run.event("oci_attempts")["attempts"]]
    assert results == [("VM.GPU.A10.1", "out_of_host_capacity")] * 3 + [
        ("VM.GPU3.1", "limit_exceeded")
    ] * 3 + [("VM.GPU2.1", "launched")]
    assert [r["kind"] for r in api.state.live_tagged("demo")].count("instance") == 1
    assert teardown(api, tmp_path).rc == 0
    assert api.state.live_tagged() == []


def test_ladder_exhausted_fails_clearly_and_leaves_no_instance(
    api: OciApi, tmp_path: Path, sshd_port: int
) -> None:
    api.state.faults.no_capacity(None, None)
    run = provision(
        api,
        tmp_path,
        sshd_port,
        shapes=["VM.GPU.A10.1", "VM.GPU3.1"],
        availability_domains=["AD-1", "AD-2"],
    )
    assert run.rc != 0
    assert "no capacity for any shape in any availability domain" in run.stdout
    assert "VM.GPU3.1 in Uocm:EU-FRANKFURT-1-AD-2: out_of_host_capacity" in run.stdout
    failed = run.event("oci_attempts")
    assert failed["failed"] is True
    assert [(a["shape"], a["result"]) for a in failed["attempts"]] == [
        ("VM.GPU.A10.1", "out_of_host_capacity"),
        ("VM.GPU.A10.1", "out_of_host_capacity"),
        ("VM.GPU3.1", "out_of_host_capacity"),
        ("VM.GPU3.1", "out_of_host_capacity"),
    ]
    assert not [r for r in api.state.live_tagged("demo") if r["kind"] == "instance"]
    assert teardown(api, tmp_path).rc == 0
    assert api.state.live_tagged() == []


def test_429_storm_5xx_and_lost_state_dir(api: OciApi, tmp_path: Path, sshd_port: int) -> None:
    api.state.faults.throttle(count=None, every=5)
    api.state.faults.fail(503, "ServiceUnavailable", "Service unavailable", op="CreateSubnet")
    api.state.faults.fail(500, "InternalServerError", "Internal error", op="LaunchInstance")
    run = provision(api, tmp_path, sshd_port)
    assert run.rc == 0, run.stdout[-4000:]
    assert api.state.calls["LaunchInstance"] >= 2
    assert api.state.faults_fired[(429, "TooManyRequests")] >= 3
    # The state directory is lost: teardown finds everything by tag.
    shutil.rmtree(tmp_path / "state")
    down = teardown(api, tmp_path, state=tmp_path / "fresh-state")
    assert down.rc == 0, down.stdout[-4000:]
    assert len(down.event("oci_teardown")["removed"]) == 6
    assert api.state.live_tagged() == []


def test_preemptible_falls_back_to_on_demand(api: OciApi, tmp_path: Path, sshd_port: int) -> None:
    api.state.faults.no_capacity(None, None, preemptible=True)
    run = provision(
        api,
        tmp_path,
        sshd_port,
        preemptible=True,
        preemptible_fallback=True,
        availability_domains=["AD-3"],
    )
    assert run.rc == 0, run.stdout[-4000:]
    attempts = [(a["preemptible"], a["result"]) for a in run.event("oci_attempts")["attempts"]]
    assert attempts == [(True, "out_of_host_capacity"), (False, "launched")]
    assert json.loads((tmp_path / "state" / "target.json").read_text())["preemptible"] is False
    assert teardown(api, tmp_path).rc == 0
    assert api.state.live_tagged() == []


def test_slow_states_and_preemption_then_rerun_launches_again(
    api: OciApi, tmp_path: Path, sshd_port: int
) -> None:
    api.state.faults.provision_s = 2.0
    api.state.faults.terminate_s = 2.0
    first = provision(api, tmp_path, sshd_port, preemptible=True)
    assert first.rc == 0, first.stdout[-4000:]
    old = json.loads((tmp_path / "state" / "target.json").read_text())
    assert old["preemptible"] is True
    api.state.preempt(old["instance_id"])
    second = provision(api, tmp_path, sshd_port, preemptible=True)
    assert second.rc == 0, second.stdout[-4000:]
    new = json.loads((tmp_path / "state" / "target.json").read_text())
    assert new["instance_id"] != old["instance_id"]
    assert second.changed > 0
    assert teardown(api, tmp_path).rc == 0
    assert api.state.live_tagged() == []


def test_check_mode_creates_nothing(api: OciApi, tmp_path: Path, sshd_port: int) -> None:
    run = run_playbook(
        "playbooks/provision.yml",
        job_vars(api, "demo", tmp_path / "state"),
        tmp_path / "run",
        "--check",
    )
    assert run.rc == 0, run.stdout[-4000:]
    assert all(api.state.calls[op] == 0 for op in CREATES)
    assert api.state.live_tagged() == []


def test_other_targets_do_nothing(api: OciApi, tmp_path: Path) -> None:
    extravars = {
        "fsoci": {"name": "demo", "target": {"kind": "ssh", "oci": None}},
        "fsoci_state_dir": str(tmp_path),
    }
    for playbook in ("playbooks/provision.yml", "playbooks/teardown.yml"):
        run = run_playbook(playbook, extravars, tmp_path / "run")
        assert run.rc == 0 and run.changed == 0, run.stdout[-3000:]
    assert sum(api.state.calls.values()) == 0


def test_existing_subnet_is_reused(api: OciApi, tmp_path: Path, sshd_port: int) -> None:
    import oci

    config = oci.config.from_file(str(api.cfg.config_file))
    vn = oci.core.VirtualNetworkClient(config, service_endpoint=api.url)
    comp = api.cfg.compartment
    vcn = vn.create_vcn(
        oci.core.models.CreateVcnDetails(compartment_id=comp, cidr_block="10.1.0.0/16")
    ).data
    subnet = vn.create_subnet(
        oci.core.models.CreateSubnetDetails(
            compartment_id=comp, vcn_id=vcn.id, cidr_block="10.1.0.0/24"
        )
    ).data
    run = provision(api, tmp_path, sshd_port, name="vm", subnet=subnet.id)
    assert run.rc == 0, run.stdout[-4000:]
    assert sorted(r["kind"] for r in api.state.live_tagged("vm")) == ["bucket", "instance"]
    assert teardown(api, tmp_path, name="vm").rc == 0
    assert api.state.live_tagged() == []
    assert vn.get_subnet(subnet.id).data.lifecycle_state == "AVAILABLE"


def test_wrong_key_fails_readably_and_config_problems_stop_before_any_call(
    api: OciApi, tmp_path: Path
) -> None:
    from tests.ociapi.fixtures import write_test_config

    other = write_test_config(tmp_path / "other-key")
    extravars = job_vars(api, "demo", tmp_path / "state", config_file=str(other.config_file))
    run = run_playbook("playbooks/teardown.yml", extravars, tmp_path / "run")
    assert run.rc != 0
    assert "401 NotAuthenticated" in run.stdout
    assert "opc-request-id" in run.stdout and "region eu-frankfurt-1" in run.stdout
    assert "Next: check key_file, fingerprint, user and tenancy" in run.stdout
    assert api.state.auth_failures >= 1
    assert other.key_id.rsplit("/", 1)[1] not in run.stdout  # the fingerprint is never shown

    calls = sum(api.state.calls.values()) + api.state.auth_failures
    extravars = job_vars(api, "demo", tmp_path / "state", profile="NOPE")
    run = run_playbook("playbooks/teardown.yml", extravars, tmp_path / "run2")
    assert run.rc != 0
    assert (
        "[NOPE]: profile not found; fix: use one of ['DEFAULT'] as target.oci.profile" in run.stdout
    )
    assert sum(api.state.calls.values()) + api.state.auth_failures == calls


def test_unknown_compartment_fails_with_404_and_a_next_step(api: OciApi, tmp_path: Path) -> None:
    unknown = "ocid1.compartment.oc1..aaaaaaaaunknowncompartment"
    run = run_playbook(
        "playbooks/teardown.yml",
        job_vars(api, "demo", tmp_path, compartment=unknown),
        tmp_path / "r",
    )
    assert run.rc != 0
    assert (
        f"oci_job_teardown failed (option compartment_id, OCID {unknown}, region eu-frankfurt-1"
        in run.stdout
    )
    assert "404 NotAuthorizedOrNotFound" in run.stdout
    assert "Next: check the OCID, that it is in this region" in run.stdout


def test_sweep_lists_every_job_and_removes_those_not_running(
    api: OciApi, tmp_path: Path, sshd_port: int
) -> None:
    import json as _json

    import yaml as _yaml

    import faceswap_oci
    from faceswap_oci.api import sweep

    for name in ("one", "two"):
        run = provision(api, tmp_path / name, sshd_port, name)
        assert run.rc == 0, run.stdout[-3000:]
    assert {r["job"] for r in api.state.live_tagged()} == {"one", "two"}

    state_root = tmp_path / "jobs"
    (state_root / "two").mkdir(parents=True)
    (state_root / "two" / "spec.json").write_text("{}")
    # Running from this machine: its process (this one) is alive.
    status = {"state": "running", "pid": os.getpid()}
    (state_root / "two" / "status.json").write_text(_json.dumps(status))
    write_pair(tmp_path)
    section = job_vars(api, "sweeper", tmp_path)["fsoci"]["target"]["oci"]
    job_file = tmp_path / "sweep.yml"
    job_file.write_text(
        _yaml.safe_dump(
            {
                "name": "sweeper",
                "consent": faceswap_oci.CONSENT_TEXT,
                "target": {
                    "kind": "oci",
                    "oci": {k: v for k, v in section.items() if v is not None},
                },
                "inputs": {"a": "a.mp4", "b": "b.mp4"},
            }
        )
    )
    job = faceswap_oci.load_job(job_file)

    listed = sweep(job, state_root=state_root)
    assert set(listed.resources) == {"one", "two"}
    assert listed.running == ("two",)
    assert listed.removed == ()
    assert "one: " in listed.summary() and "two: " in listed.summary()
    assert {r["job"] for r in api.state.live_tagged()} == {"one", "two"}

    swept = sweep(job, remove=True, state_root=state_root)
    assert swept.removed == ("one",)
    assert api.state.live_tagged("one") == []
    assert api.state.live_tagged("two") != []

    (state_root / "two" / "status.json").write_text(_json.dumps({"state": "finished"}))
    assert sweep(job, remove=True, state_root=state_root).removed == ("two",)
    assert api.state.live_tagged() == []


def test_ssh_wait_comes_from_the_job_file_and_names_the_ingress_cidr(
    api: OciApi, tmp_path: Path
) -> None:
    """Issue 15, point 9: target.oci.ssh_wait_timeout bounds the wait; the failure names the
    instance and the ingress CIDR. Nothing listens on the port the role waits on."""
    state = tmp_path / "state"
    run = run_playbook(
        "playbooks/provision.yml",
        job_vars(api, "nossh", state, ssh_wait_timeout=3),
        tmp_path / "run",
        "-e",
        "oci_instance_ssh_port=9",  # discard: nothing answers there
    )
    try:
        assert run.rc != 0
        (inst,) = api.state.instances()
        assert f"of instance {inst.model.id} within 3 s" in run.stdout
        assert "lets in only 198.51.100.7/32 (target.oci.ssh_ingress_cidr)" in run.stdout
    finally:
        down = teardown(api, tmp_path, "nossh", state)
        assert down.rc == 0, down.stdout[-3000:]
    assert api.state.live_tagged() == []
