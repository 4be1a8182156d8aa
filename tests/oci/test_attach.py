"""`faceswap-oci attach JOB` and `status --refresh` of a detached job, from a controller that
has only the job file and the OCI config: the cloud as the agent left it on the double (the
instance, the job bucket with `latest.json`, and, once done, `results/`, `results.json` and
`done.json` written by roles/faceswap_train/files/fsoci_detached.py through the job's PAR)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import oci
import yaml
from typer.testing import CliRunner

from faceswap_oci import api, cli
from tests.oci.test_detach import write_job as detach_job
from tests.oci.test_instance_principal import _launch
from tests.ociapi.fixtures import OciApi, job_bucket_par
from tests.unit.test_train_supervisor import load_helper

JOB = "det"
BUCKET = f"fsoci-{JOB}"
PREFIX = f"jobs/{JOB}/"


def write_job(api_: OciApi, folder: Path) -> Path:
    return detach_job(api_, folder, ["VM.GPU.A10.1"], detach=True)


def agent_left(api_: OciApi, tmp_path: Path, *, done: bool) -> tuple[Any, dict[str, Path]]:
    """The cloud as a detached job's agent leaves it: its instance (TERMINATED when done),
    the job bucket (tagged, as oci_storage makes it) with a snapshot pointer, and when done
    the results and the marker, written by the agent's own code through the PAR."""
    inst = _launch(api_, job=JOB, address="198.51.100.20")
    config = oci.config.from_file(str(api_.cfg.config_file), api_.cfg.profile)
    storage = oci.object_storage.ObjectStorageClient(config, service_endpoint=api_.url)
    ns = storage.get_namespace().data
    storage.create_bucket(
        ns,
        oci.object_storage.models.CreateBucketDetails(
            name=BUCKET,
            compartment_id=api_.cfg.compartment,
            freeform_tags={"faceswap-oci-job": JOB},
        ),
    )
    snapshot = load_helper("fsoci_snapshot.py")
    store = snapshot.ParStore(job_bucket_par(api_, BUCKET, PREFIX), PREFIX)
    store.put_bytes("latest.json", json.dumps({"iteration": 40, "snapshot": "000000040"}).encode())
    files: dict[str, Path] = {}
    if done:
        agent = load_helper("fsoci_detached.py")
        video = tmp_path / "made" / f"{JOB}.mp4"
        video.parent.mkdir()
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 128)
        manifest = video.with_name(f"{JOB}.manifest.json")
        sha = hashlib.sha256(video.read_bytes()).hexdigest()
        manifest.write_text(json.dumps({"output": {"sha256": sha}}))
        files = {video.name: video, manifest.name: manifest}
        agent.put_results(store, files, snapshot, tmp_path)
        store.put_bytes(agent.MARKER, json.dumps(agent.marker("done", 40)).encode())
        compute = oci.core.ComputeClient(config, service_endpoint=api_.url)
        compute.terminate_instance(inst.id, preserve_boot_volume=False)
        api_.state.faults.terminate_s = 0.0
    return inst, files


def test_attach_of_a_running_job_reports_the_cloud_and_changes_nothing(
    ociapi: OciApi, tmp_path: Path
) -> None:
    job = write_job(ociapi, tmp_path)
    inst, _ = agent_left(ociapi, tmp_path, done=False)
    state = tmp_path / "state"
    result = CliRunner().invoke(cli.app, ["attach", str(job), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert "job det: running" in result.output
    assert "instance: RUNNING" in result.output
    assert "latest snapshot: iteration 40 (000000040)" in result.output
    seen = api.detached_state(str(job), state)
    assert seen is not None
    assert (seen["instance"], seen["instance_id"], seen["done"]) == ("RUNNING", inst.id, None)
    assert not (tmp_path / "output").exists()
    assert BUCKET in ociapi.state.object_storage.buckets


def test_attach_of_a_finished_job_fetches_verifies_and_leaves_nothing(
    ociapi: OciApi, tmp_path: Path
) -> None:
    job = write_job(ociapi, tmp_path)
    _inst, made = agent_left(ociapi, tmp_path, done=True)
    state = tmp_path / "state"
    result = CliRunner().invoke(cli.app, ["attach", str(job), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert "job det: done" in result.output
    for name, path in made.items():
        assert (tmp_path / "output" / name).read_bytes() == path.read_bytes()
    # the video matched its manifest, so teardown removed the bucket; the network went too
    assert BUCKET not in ociapi.state.object_storage.buckets
    assert ociapi.state.live_tagged(JOB) == []


def test_results_that_do_not_match_are_refused_and_the_bucket_is_kept(
    ociapi: OciApi, tmp_path: Path
) -> None:
    job = write_job(ociapi, tmp_path)
    agent_left(ociapi, tmp_path, done=True)
    stored = ociapi.state.object_storage.buckets[BUCKET].objects[f"{PREFIX}results/{JOB}.mp4"]
    stored.data = stored.data[:-1] + b"X"
    result = CliRunner().invoke(cli.app, ["attach", str(job), "--state-dir", str(tmp_path / "s")])
    assert result.exit_code == 4, result.output
    flat = " ".join(result.output.split())
    assert f"{BUCKET}/{PREFIX}results/{JOB}.mp4: sha256" in flat
    assert "does not match results.json" in flat
    assert not (tmp_path / "output" / f"{JOB}.mp4").exists()
    assert BUCKET in ociapi.state.object_storage.buckets


def test_attach_refuses_a_job_that_is_not_detached(ociapi: OciApi, tmp_path: Path) -> None:
    job = write_job(ociapi, tmp_path)
    data = yaml.safe_load(job.read_text())
    data["target"]["oci"]["detach"] = False
    job.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(cli.app, ["attach", str(job)])
    assert result.exit_code == 2
    assert "attach: job det is not a detached OCI job" in " ".join(result.output.split())
