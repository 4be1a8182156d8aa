"""The end of a detached job on its VM (roles/faceswap_train/files/fsoci_detached.py): the
sequence convert -> results in the bucket (checked) -> done/failed marker -> end of billing,
with the results and the marker going through the job's real PAR on the double's Object
Storage and the end of billing being fsoci_terminate.py against the double's instance
principals. Convert is the step passed in (the detached supervisor hands Faceswap's convert
to it); here it writes the video a convert would."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.oci.test_instance_principal import _grant, _launch
from tests.oci.test_terminate_agent import agent_argv, imds, run_agent
from tests.ociapi.fixtures import OciApi, job_bucket_par
from tests.ociapi.identity import MetadataService
from tests.unit.test_train_supervisor import load_helper

PREFIX = "jobs/det/"
__all__ = ["imds"]  # the fixture, shared with test_terminate_agent


def _store(api: OciApi) -> Any:
    snapshot = load_helper("fsoci_snapshot.py")
    return snapshot, snapshot.ParStore(job_bucket_par(api, "fsoci-det", PREFIX), PREFIX)


def _end_billing(api: OciApi, imds: MetadataService, poweroff: Path) -> Callable[[], Any]:
    return lambda: run_agent(api, imds, poweroff)[0]


def _object(api: OciApi, name: str) -> bytes:
    return bytes(api.state.object_storage.buckets["fsoci-det"].objects[PREFIX + name].data)


def test_done_results_marker_then_the_instance_terminates_itself(
    ociapi: OciApi, imds: MetadataService, tmp_path: Path
) -> None:
    inst = _launch(ociapi)
    _grant(ociapi)
    snapshot, store = _store(ociapi)
    agent = load_helper("fsoci_detached.py")
    video, manifest = tmp_path / "det.mp4", tmp_path / "det.manifest.json"
    ops: list[str] = []
    ociapi.state.on_request = ops.append

    def convert() -> None:
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
        manifest.write_text(json.dumps({"sha256": hashlib.sha256(video.read_bytes()).hexdigest()}))

    outcome = agent.finish(
        convert,
        lambda: agent.put_results(
            store, {"det.mp4": video, "det.manifest.json": manifest}, snapshot, tmp_path
        ),
        lambda body: store.put_bytes(agent.MARKER, json.dumps(body).encode()),
        _end_billing(ociapi, imds, tmp_path / "off"),
        iteration=40,
    )
    assert outcome["end"] == {"action": "terminate", "instance": inst.id}
    done = json.loads(_object(ociapi, "done.json"))
    assert (done["state"], done["iteration"]) == ("done", 40)
    listed = json.loads(_object(ociapi, "results.json"))["files"]
    for name, path in (("det.mp4", video), ("det.manifest.json", manifest)):
        stored = _object(ociapi, f"results/{name}")
        assert stored == path.read_bytes()
        assert listed[name]["sha256"] == hashlib.sha256(stored).hexdigest()
    # the marker goes up after every result, and the instance goes last
    assert ops[-1] == "TerminateInstance"
    assert ops[-2] == "ParPutObject" and ops.count("TerminateInstance") == 1
    assert ociapi.state.resources[inst.id].state(ociapi.state.clock() + 1) == "TERMINATED"
    assert not (tmp_path / "off").exists()


def test_a_failed_convert_writes_a_failed_marker_and_still_ends_billing(
    ociapi: OciApi, imds: MetadataService, tmp_path: Path
) -> None:
    _launch(ociapi)  # no policy: the agent powers off
    _snapshot, store = _store(ociapi)
    agent = load_helper("fsoci_detached.py")

    def convert() -> None:
        raise RuntimeError("faceswap convert exited 1")

    uploaded: list[str] = []
    outcome = agent.finish(
        convert,
        lambda: uploaded.append("results") or {},
        lambda body: store.put_bytes(agent.MARKER, json.dumps(body).encode()),
        _end_billing(ociapi, imds, tmp_path / "off"),
        iteration=12,
    )
    done = json.loads(_object(ociapi, "done.json"))
    assert (done["state"], done["step"], done["reason"]) == (
        "failed",
        "convert",
        "convert: faceswap convert exited 1",
    )
    assert uploaded == []
    assert outcome["end"]["action"] == "poweroff"
    assert (tmp_path / "off").exists()


def test_a_result_that_is_missing_fails_the_results_step(ociapi: OciApi, tmp_path: Path) -> None:
    snapshot, store = _store(ociapi)
    agent = load_helper("fsoci_detached.py")
    marks: list[dict[str, Any]] = []
    ended: list[bool] = []
    agent.finish(
        lambda: None,
        lambda: agent.put_results(store, {"det.mp4": tmp_path / "nope.mp4"}, snapshot, tmp_path),
        marks.append,
        lambda: ended.append(True) or {"action": "terminate"},
        iteration=3,
    )
    assert [(m["state"], m["step"]) for m in marks] == [("failed", "results")]
    assert marks[0]["reason"].startswith("results: det.mp4 is missing")
    assert ended == [True]
    assert PREFIX + "results.json" not in ociapi.state.object_storage.buckets["fsoci-det"].objects


def test_a_marker_that_cannot_be_written_is_logged_and_billing_still_ends() -> None:
    agent = load_helper("fsoci_detached.py")
    logged: list[str] = []
    ended: list[bool] = []

    def refuse(body: dict[str, Any]) -> None:
        raise OSError("bucket unreachable")

    outcome = agent.finish(
        lambda: None,
        lambda: {},
        refuse,
        lambda: ended.append(True) or {"action": "terminate"},
        iteration=1,
        log=logged.append,
    )
    assert ended == [True]
    assert outcome["marker"]["written"] is False
    assert logged == ["[fsoci] the done marker could not be written: bucket unreachable"]
    with pytest.raises(ValueError):
        agent.marker("finished", 1)


def _supervised_job(
    tmp_path: Path, api: OciApi, imds: MetadataService, iterations: int, rc: int
) -> Any:
    """A training job as the supervisor leaves it when Faceswap has exited (rc ``rc``) with
    ``iterations`` saved, configured as a detached job (target 40 iterations)."""
    job_dir = tmp_path / "job"
    (job_dir / "model").mkdir(parents=True)
    (job_dir / "logs").mkdir()
    (job_dir / "model" / "original_state.json").write_text(json.dumps({"iterations": iterations}))
    (job_dir / "logs" / "train.exit.json").write_text(json.dumps({"rc": rc}))
    (job_dir / "logs" / "train.out").write_text("Traceback: CUDA out of memory\n" if rc else "")
    cfg = {
        "job_dir": str(job_dir),
        "model_dir": str(job_dir / "model"),
        "faceswap_dir": str(job_dir / "faceswap"),
        "trainer": "original",
        "iterations": 40,
        "hours": 0,
        "plateau_saves": 0,
        "detached": {"poll_s": 30, "terminate": agent_argv(api, imds, "")},
    }
    config = job_dir / "train.json"
    config.write_text(json.dumps(cfg))
    return load_helper("fsoci_train.py").Job(str(config))


@pytest.mark.parametrize(
    ("iterations", "rc", "marker"),
    [(40, 0, ("trained", None)), (17, 1, ("failed", "train")), (17, 0, None)],
    ids=["target reached", "training failed", "stopped by request"],
)
def test_the_supervisor_ends_a_detached_job_by_itself(
    ociapi: OciApi,
    imds: MetadataService,
    tmp_path: Path,
    iterations: int,
    rc: int,
    marker: tuple[str, str | None] | None,
) -> None:
    inst = _launch(ociapi)
    _grant(ociapi)
    _snapshot, store = _store(ociapi)
    job = _supervised_job(tmp_path, ociapi, imds, iterations, rc)
    supervisor = load_helper("fsoci_train.py")
    outcome = supervisor.finish_detached(job, store, job.cfg["detached"])
    objects = ociapi.state.object_storage.buckets["fsoci-det"].objects
    state = ociapi.state.resources[inst.id].state(ociapi.state.clock() + 1)
    if marker is None:
        # `stop`/`down` from the controller: no marker, the instance is the controller's
        assert outcome is None
        assert PREFIX + "done.json" not in objects
        assert state == "RUNNING"
        return
    done = json.loads(_object(ociapi, "done.json"))
    assert (done["state"], done.get("step"), done["iteration"]) == (*marker, iterations)
    if rc:
        assert done["reason"] == "train: Traceback: CUDA out of memory"
    assert outcome["end"] == {"action": "terminate", "instance": inst.id}
    assert state == "TERMINATED"
    assert json.loads((tmp_path / "job/logs/detached.json").read_text()) == outcome
