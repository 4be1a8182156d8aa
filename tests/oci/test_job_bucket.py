"""The job bucket and the VM's PAR (oci_job_bucket), sweep's listing and teardown's storage
policy, through the real SDK against the local OCI API."""

from __future__ import annotations

import datetime as dt
import json
import stat
import urllib.error
import urllib.request
from pathlib import Path

import oci
import pytest

from tests.oci.modules import auth_args, run_module, teardown
from tests.ociapi.fixtures import OciApi


def _put(url: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _present(api: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    args = auth_args(api, job="demo", par_file=str(tmp_path / "par.url"), max_hours=3.0, **kw)
    return run_module("oci_job_bucket", args, capsys)


def test_bucket_is_private_tagged_and_the_par_stays_a_secret(
    ociapi: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = _present(ociapi, capsys, tmp_path)
    assert not out.get("failed"), out
    assert out["changed"] is True
    assert (out["bucket"], out["prefix"], out["owned"]) == ("fsoci-demo", "jobs/demo/", True)
    bucket = ociapi.state.object_storage.buckets["fsoci-demo"].model
    assert bucket.public_access_type == "NoPublicAccess"
    assert bucket.freeform_tags["faceswap-oci-job"] == "demo"
    par_file = tmp_path / "par.url"
    url = par_file.read_text().strip()
    assert stat.S_IMODE(par_file.stat().st_mode) == 0o600
    token = url.split("/p/")[1].split("/")[0]
    assert token not in repr(out)  # the credential is in the file only
    par = next(iter(ociapi.state.object_storage.buckets["fsoci-demo"].pars.values())).model
    hours = (par.time_expires - dt.datetime.now(dt.UTC)).total_seconds() / 3600
    assert 4.9 < hours <= 5.0  # max_hours plus the two-hour margin
    # The PAR writes only under the job's prefix.
    assert _put(url + "jobs/demo/snap/a", b"1") == 200
    assert _put(url + "other/a", b"1") == 404
    again = _present(ociapi, capsys, tmp_path)
    assert again["changed"] is False and again["par_id"] == out["par_id"]
    assert par_file.read_text().strip() == url


def test_a_users_bucket_only_gets_the_prefix(
    ociapi: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = oci.config.from_file(str(ociapi.cfg.config_file))
    client = oci.object_storage.ObjectStorageClient(config, service_endpoint=ociapi.url)
    ns = client.get_namespace().data
    client.create_bucket(
        ns,
        oci.object_storage.models.CreateBucketDetails(
            name="mine", compartment_id=ociapi.cfg.compartment
        ),
    )
    client.put_object(ns, "mine", "holiday.jpg", b"mine")
    out = _present(ociapi, capsys, tmp_path, bucket="mine")
    assert (out["bucket"], out["owned"]) == ("mine", False)
    url = (tmp_path / "par.url").read_text().strip()
    assert _put(url + "jobs/demo/x", b"1") == 200
    down = teardown(ociapi, capsys, storage_bucket="mine", remove_storage=True)
    assert not down.get("failed"), down
    assert down["storage"] == {"pars": 1, "objects": 1, "bucket": None}
    assert ociapi.state.object_storage.object_names("mine") == ["holiday.jpg"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"bucket": "bad/name"}, "bucket (storage.bucket): 'bad/name' is not a valid bucket name"),
        ({"bucket": "nosuch"}, "storage.bucket: bucket 'nosuch' was not found in namespace"),
        ({"namespace": "Bad NS"}, "namespace: 'Bad NS' is not an Object Storage namespace"),
    ],
)
def test_bad_bucket_or_namespace_names_the_field(
    ociapi: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path, args: dict, expected: str
) -> None:
    out = _present(ociapi, capsys, tmp_path, **args)
    assert out["failed"] is True
    assert out["msg"].startswith(expected), out["msg"]
    assert not (tmp_path / "par.url").exists()


@pytest.mark.parametrize("status", [403, 404])
def test_refused_par_creation_fails_with_the_request_id(
    ociapi: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path, status: int
) -> None:
    code = "NotAuthorizedOrNotFound" if status == 404 else "NotAllowed"
    ociapi.state.faults.fail(
        status, code, "Authorization failed", op="CreatePreauthenticatedRequest"
    )
    out = _present(ociapi, capsys, tmp_path)
    assert out["failed"] is True
    assert f"{status} {code}" in out["msg"] and "opc-request-id" in out["msg"]
    assert not (tmp_path / "par.url").exists()


def test_throttling_and_5xx_are_retried_as_the_sdk_says(
    ociapi: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ociapi.state.faults.throttle(count=1, op="CreateBucket")
    ociapi.state.faults.fail(503, "ServiceUnavailable", "busy", op="CreatePreauthenticatedRequest")
    out = _present(ociapi, capsys, tmp_path)
    assert not out.get("failed"), out
    assert ociapi.state.faults_fired[(429, "TooManyRequests")] == 1
    assert ociapi.state.faults_fired[(503, "ServiceUnavailable")] == 1


def test_sweep_lists_and_teardown_keeps_the_model_unless_told(
    ociapi: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _present(ociapi, capsys, tmp_path)
    url = (tmp_path / "par.url").read_text().strip()
    assert _put(url + "jobs/demo/snap/model.h5", b"weights") == 200
    found = run_module("oci_job_resources_info", auth_args(ociapi), capsys)
    assert [(r["kind"], r["job"]) for r in found["resources"]] == [("bucket", "demo")]
    kept = teardown(ociapi, capsys)
    assert kept["storage"] == {"pars": 1, "objects": 0, "bucket": None}
    assert _put(url + "jobs/demo/x", b"1") == 404  # the PAR died with the job's VM
    assert ociapi.state.object_storage.object_names("fsoci-demo") == ["jobs/demo/snap/model.h5"]
    gone = teardown(ociapi, capsys, remove_storage=True)
    assert gone["storage"] == {"pars": 0, "objects": 1, "bucket": "fsoci-demo"}
    assert ociapi.state.live_tagged("demo") == []
    assert teardown(ociapi, capsys, remove_storage=True)["changed"] is False


def test_instance_state_lists_the_live_instance_and_not_a_preempted_one(
    ociapi: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """What the runner asks after a phase failed on a preemptible host
    (playbooks/instance_state.yml, then oci_job_resources_info once preempted)."""
    from tests.oci.modules import instance_args, network
    from tests.oci.playbook import job_vars, run_playbook

    ociapi.state.faults.provision_s = 0.0
    ociapi.state.faults.terminate_s = 0.0
    args = instance_args(ociapi, network(ociapi, capsys), preemptible=True)
    launched = run_module("oci_instance", args, capsys)
    assert not launched.get("failed"), launched
    run = run_playbook(
        "playbooks/instance_state.yml", job_vars(ociapi, "demo", tmp_path / "s"), tmp_path / "r"
    )
    assert run.rc == 0, run.stdout[-3000:]
    assert [r["id"] for r in run.event("instance_state")["resources"]] == [launched["instance_id"]]
    ociapi.state.preempt(launched["instance_id"])
    after = run_module("oci_job_resources_info", auth_args(ociapi, job="demo"), capsys)
    assert launched["instance_id"] not in [r["id"] for r in after["resources"]]


def test_the_runners_preemption_check_asks_the_api(
    ociapi: OciApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """While a phase runs on a preemptible instance the runner asks GetInstance (every
    PREEMPTION_CHECK_S): nothing while it runs, its state once the preemption action took it,
    and nothing (no evidence) when the API does not answer."""
    from faceswap_oci import spec
    from faceswap_oci.runner import Runner
    from tests.oci.modules import instance_args, network
    from tests.oci.test_detach import write_job

    ociapi.state.faults.provision_s = 0.0
    ociapi.state.faults.terminate_s = 30.0
    args = instance_args(ociapi, network(ociapi, capsys), preemptible=True)
    launched = run_module("oci_instance", args, capsys)
    runner = Runner(
        spec.load_job(write_job(ociapi, tmp_path, ["VM.GPU.A10.1"], preemptible=True)),
        state_root=tmp_path / "state",
    )
    assert not runner._preemptible_host_phase("train")  # no host yet
    (runner.state.path / "target.json").write_text(
        json.dumps({"instance_id": launched["instance_id"], "host": "203.0.113.10"})
    )
    assert [p for p in ("provision", "setup", "train", "teardown", "stop")
            if runner._preemptible_host_phase(p)] == ["setup", "train"]  # fmt: skip
    assert runner._reclaimed_now() is None
    ociapi.state.preempt(launched["instance_id"])
    assert runner._reclaimed_now() == "TERMINATING"
    ociapi.state.faults.fail(503, "ServiceUnavailable", "down", op="GetInstance", count=None)
    assert runner._reclaimed_now() is None


def test_a_reclaimed_host_stops_the_phase_for_the_preemption_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_watch stops the phase's process tree once the check says the host was reclaimed, and
    run_phase turns that into the failed phase the preemption path starts from."""
    import threading

    from faceswap_oci import runner as runner_mod
    from faceswap_oci import spec
    from tests.unit.oci_job import write_oci_job

    monkeypatch.setattr(runner_mod, "PREEMPTION_CHECK_S", 0.05)
    runner = runner_mod.Runner(
        spec.load_job(write_oci_job(tmp_path, "reclaim", preemptible=True)),
        state_root=tmp_path / "state",
    )
    done = threading.Event()
    answers = iter([None, None, "TERMINATED"])

    def probe() -> str | None:
        answer = next(answers)
        if answer is not None:
            done.set()  # stop_tree's part: the playbook's tree ends
        return answer

    thread = threading.Thread(target=done.wait)
    thread.start()
    stopped, timed_out = runner._watch(thread, "no-such-token", "train", True, None, probe)
    assert (stopped, timed_out, runner._reclaimed) == (True, False, "TERMINATED")
