"""Snapshots through the job's PAR (roles/faceswap_train/files/fsoci_snapshot.py), against the
local OCI API's Object Storage: complete-or-invisible, verified, resumable, retried."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.ociapi.fixtures import OciApi, job_bucket_par
from tests.unit.test_train_supervisor import load_helper

HELPER = Path(__file__).resolve().parents[2] / "roles/faceswap_train/files/fsoci_snapshot.py"
PREFIX = "jobs/demo/"


def _snapshot() -> ModuleType:
    return load_helper("fsoci_snapshot.py")


snap = _snapshot()


def _store(api: OciApi) -> object:
    return snap.ParStore(job_bucket_par(api, "fsoci-demo", PREFIX), PREFIX, sleep=lambda _s: None)


def _model(root: Path, iteration: int, size: int = 1000) -> Path:
    model = root / "staged"
    (model / "model").mkdir(parents=True, exist_ok=True)
    (model / "model" / "original.keras").write_bytes(os.urandom(size))
    (model / "model" / "original_state.json").write_text(json.dumps({"iterations": iteration}))
    (model / "preview.png").write_bytes(b"png" * 10)
    return model


def _names(api: OciApi) -> list[str]:
    return api.state.object_storage.object_names("fsoci-demo")


def test_a_snapshot_is_verified_then_pointed_to_and_restored(
    ociapi: OciApi, tmp_path: Path
) -> None:
    store = _store(ociapi)
    staged = _model(tmp_path, 2)
    pointer = snap.push_snapshot(store, staged, 2, tmp_path / "journal")
    assert pointer["iteration"] == 2
    assert _names(ociapi)[-1] == PREFIX + "snapshots/000000002/preview.png"
    assert PREFIX + "latest.json" in _names(ociapi)
    dest = tmp_path / "restored"
    got = snap.restore_snapshot(store, dest)
    assert got == pointer
    for rel in ("model/original.keras", "model/original_state.json", "preview.png"):
        assert (dest / rel).read_bytes() == (staged / rel).read_bytes()


def test_a_killed_upload_is_never_restored_the_previous_one_is(
    ociapi: OciApi, tmp_path: Path
) -> None:
    store = _store(ociapi)
    first = _model(tmp_path / "a", 2)
    snap.push_snapshot(store, first, 2, tmp_path / "journal")
    second = _model(tmp_path / "b", 4)
    # The uploader is killed after the second snapshot's first file: nothing more arrives.
    real_once = store._once
    puts: list[str] = []

    def once(method, url, body, headers):  # type: ignore[no-untyped-def]
        if method == "PUT":
            if puts:
                raise ConnectionResetError("killed")
            puts.append(url)
        return real_once(method, url, body, headers)

    store._once = once
    with pytest.raises(snap.SnapshotError):
        snap.push_snapshot(store, second, 4, tmp_path / "journal")
    assert PREFIX + "snapshots/000000004/model/original.keras" in _names(ociapi)
    pointer = json.loads(
        ociapi.state.object_storage.buckets["fsoci-demo"].objects[PREFIX + "latest.json"].data
    )
    assert pointer["iteration"] == 2
    dest = tmp_path / "restored"
    assert snap.restore_snapshot(store, dest)["iteration"] == 2
    assert (dest / "model/original.keras").read_bytes() == (
        first / "model/original.keras"
    ).read_bytes()


def test_a_dropped_connection_or_throttling_is_retried(ociapi: OciApi, tmp_path: Path) -> None:
    store = _store(ociapi)
    ociapi.state.faults.drop("ParPutObject", count=1)
    ociapi.state.faults.throttle(count=2, op="ParHeadObject")
    ociapi.state.faults.fail(503, "ServiceUnavailable", "busy", op="ParPutObject", count=1)
    pointer = snap.push_snapshot(store, _model(tmp_path, 6), 6, tmp_path / "journal")
    assert pointer["iteration"] == 6
    assert ociapi.state.faults_fired[(0, "Dropped")] == 1
    assert ociapi.state.faults_fired[(429, "TooManyRequests")] == 2
    assert snap.restore_snapshot(store, tmp_path / "r")["iteration"] == 6


def test_a_bad_answer_fails_naming_it_without_the_token(ociapi: OciApi, tmp_path: Path) -> None:
    store = _store(ociapi)
    ociapi.state.faults.fail(403, "NotAllowed", "PAR refused", op="ParPutObject", count=None)
    with pytest.raises(snap.SnapshotError) as exc:
        snap.push_snapshot(store, _model(tmp_path, 2), 2, tmp_path / "journal")
    assert "PUT answered 403 NotAllowed: PAR refused" in str(exc.value)
    assert "/p/" not in str(exc.value)
    assert PREFIX + "latest.json" not in _names(ociapi)


def test_large_files_go_multipart_and_resume_after_an_interruption(
    ociapi: OciApi, tmp_path: Path
) -> None:
    store = _store(ociapi)
    staged = _model(tmp_path, 8, size=5000)
    journal = tmp_path / "journal"
    # First run: parts 1 and 2 arrive, then every further part is dropped.
    store_a = store
    sent: list[int] = []
    real_once = store_a._once  # type: ignore[attr-defined]

    def once(method, url, body, headers):  # type: ignore[no-untyped-def]
        if method == "PUT" and "/u/" in url:
            if len(sent) >= 2:
                raise ConnectionResetError("link down")
            sent.append(int(url.rsplit("/", 1)[1]))
        return real_once(method, url, body, headers)

    store_a._once = once
    with pytest.raises(snap.SnapshotError):
        snap.push_snapshot(store_a, staged, 8, journal, part_size=1024, threshold=2048)
    assert sent == [1, 2]
    assert PREFIX + "latest.json" not in _names(ociapi)
    # Second run (a new process): resumes at part 3, never re-sends 1 and 2.
    resumed: list[int] = []
    store_b = _snapshot().ParStore(store.base, PREFIX, sleep=lambda _s: None)
    real_b = store_b._once

    def once_b(method, url, body, headers):  # type: ignore[no-untyped-def]
        if method == "PUT" and "/u/" in url:
            resumed.append(int(url.rsplit("/", 1)[1]))
        return real_b(method, url, body, headers)

    store_b._once = once_b
    pointer = snap.push_snapshot(store_b, staged, 8, journal, part_size=1024, threshold=2048)
    assert resumed == [3, 4, 5]
    obj = ociapi.state.object_storage.buckets["fsoci-demo"].objects[
        PREFIX + "snapshots/000000008/model/original.keras"
    ]
    assert obj.multipart_md5 is not None and obj.multipart_md5.endswith("-5")
    assert pointer["iteration"] == 8
    dest = tmp_path / "restored"
    snap.restore_snapshot(store_b, dest)
    assert (dest / "model/original.keras").read_bytes() == (
        staged / "model/original.keras"
    ).read_bytes()


def test_the_pointer_never_goes_back(ociapi: OciApi, tmp_path: Path) -> None:
    store = _store(ociapi)
    snap.push_snapshot(store, _model(tmp_path / "a", 6), 6, tmp_path / "j")
    assert snap.push_snapshot(store, _model(tmp_path / "b", 4), 4, tmp_path / "j")["iteration"] == 6
    assert snap.restore_snapshot(store, tmp_path / "r")["iteration"] == 6


def test_faces_go_up_once_and_come_back(ociapi: OciApi, tmp_path: Path) -> None:
    store = _store(ociapi)
    faces_a = tmp_path / "faces_a"
    faces_a.mkdir()
    (faces_a / "a_0.png").write_bytes(b"face-a")
    align = tmp_path / "a_alignments.fsa"
    align.write_bytes(b"align")
    folders = {"a": faces_a, "alignments_a": align}
    assert snap.push_faces(store, folders, tmp_path / "j") is True
    assert snap.push_faces(store, folders, tmp_path / "j") is False
    # Extracted again from changed media: the bucket's faces follow (a later host restores them).
    (faces_a / "a_0.png").write_bytes(b"face-a2")
    assert snap.push_faces(store, folders, tmp_path / "j") is True
    assert snap.push_faces(store, folders, tmp_path / "j") is False
    new_a, new_align = tmp_path / "new" / "faces_a", tmp_path / "new" / "a_alignments.fsa"
    assert snap.restore_faces(store, {"a": new_a, "alignments_a": new_align}) == 2
    assert (new_a / "a_0.png").read_bytes() == b"face-a2"
    assert new_align.read_bytes() == b"align"


def test_no_snapshot_restores_nothing(ociapi: OciApi, tmp_path: Path) -> None:
    store = _store(ociapi)
    assert snap.restore_snapshot(store, tmp_path / "r") is None
    assert not (tmp_path / "r").exists()
    assert snap.restore_faces(store, {"a": tmp_path / "fa"}) is None


def _train_module() -> ModuleType:
    return load_helper("fsoci_train.py")


def _job(api: OciApi, root: Path) -> tuple[ModuleType, object, Path]:
    store = _store(api)
    root.mkdir(parents=True, exist_ok=True)
    par_file = root / "par.url"
    par_file.write_text(store.base + "\n")  # type: ignore[attr-defined]
    par_file.chmod(0o600)
    (root / "faces_a").mkdir()
    (root / "faces_a" / "a_0.png").write_bytes(b"face")
    cfg = {
        "job_dir": str(root),
        "model_dir": str(root / "model"),
        "faceswap_dir": str(root / "faceswap"),
        "trainer": "original",
        "snapshot": {
            "par_file": str(par_file),
            "prefix": PREFIX,
            "faces": {"a": str(root / "faces_a")},
        },
    }
    config = root / "config" / "train.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(cfg))
    (root / "logs").mkdir()
    train = _train_module()
    return train, train.Job(str(config)), config


def _save(root: Path, iterations: int, weights: bytes) -> None:
    (root / "model").mkdir(exist_ok=True)
    (root / "model" / "original.keras").write_bytes(weights)
    state = root / "model" / "original_state.json"
    state.write_text(json.dumps({"iterations": iterations}))
    old = state.stat().st_mtime - 5
    os.utime(state, (old, old))


def test_the_supervisor_snapshots_each_save_and_a_new_host_restores_it(
    ociapi: OciApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, job, _ = _job(ociapi, tmp_path / "host1")
    snapshots = train.Snapshotter(job, train.snapshot_store(job))
    assert snapshots.due() is None  # nothing saved yet
    _save(tmp_path / "host1", 2, b"w2")
    assert snapshots.due() == 2
    assert snapshots.push(2) is True
    assert snapshots.due() is None  # this save is in the bucket
    _save(tmp_path / "host1", 4, b"w4")
    snapshots.push(snapshots.due())
    status = json.loads((tmp_path / "host1" / "logs" / "snapshot.json").read_text())
    assert status["iteration"] == 4
    assert train.poll_once(job)["snapshot_iterations"] == 4
    snapshots.push_faces()
    # A new host of the same job (same PAR): an empty model and no faces.
    train2, job2, config2 = _job(ociapi, tmp_path / "host2")
    (tmp_path / "host2" / "faces_a" / "a_0.png").unlink()
    assert train2.main(["fsoci_train.py", "restore", str(config2)]) == 0
    report = json.loads(capsys.readouterr().out)["fsoci_restore"]
    assert report == {"restored": True, "local_iterations": 0, "iteration": 4, "faces": 1}
    assert job2.iterations() == 4
    assert (tmp_path / "host2" / "model" / "original.keras").read_bytes() == b"w4"
    assert (tmp_path / "host2" / "faces_a" / "a_0.png").read_bytes() == b"face"
    # A model on disk newer than the bucket's is kept.
    _save(tmp_path / "host2", 6, b"w6")
    train2.main(["fsoci_train.py", "restore", str(config2)])
    assert json.loads(capsys.readouterr().out)["fsoci_restore"]["restored"] is False
    assert (tmp_path / "host2" / "model" / "original.keras").read_bytes() == b"w6"


def test_a_failed_snapshot_is_recorded_and_the_previous_one_stays(
    ociapi: OciApi, tmp_path: Path
) -> None:
    train, job, _ = _job(ociapi, tmp_path)
    snapshots = train.Snapshotter(job, train.snapshot_store(job))
    _save(tmp_path, 2, b"w2")
    snapshots.push(2)
    _save(tmp_path, 4, b"w4")
    ociapi.state.faults.fail(403, "NotAllowed", "refused", op="ParPutObject", count=None)
    assert snapshots.push(4) is False
    status = json.loads((tmp_path / "logs" / "snapshot.json").read_text())
    assert status["iteration"] == 2 and status["failed_iteration"] == 4
    assert "403 NotAllowed" in status["error"]
    assert snapshots.due() == 4  # tried again at the next check


def test_stop_pushes_the_final_snapshot_when_the_bucket_is_behind(
    ociapi: OciApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, job, config = _job(ociapi, tmp_path)
    snapshots = train.Snapshotter(job, train.snapshot_store(job))
    _save(tmp_path, 2, b"w2")
    snapshots.push(2)
    _save(tmp_path, 5, b"w5")  # saved, but its snapshot never went up
    assert train.main(["fsoci_train.py", "stop", str(config), "1"]) == 0
    report = json.loads(capsys.readouterr().out)["fsoci_stop"]
    assert report == {
        "was_running": False,
        "running": False,
        "iterations": 5,
        "snapshot_iterations": 5,
    }
    assert snap.restore_snapshot(_store(ociapi), tmp_path / "r")["iteration"] == 5


def test_extract_outputs_come_back_only_on_a_fresh_host(ociapi: OciApi, tmp_path: Path) -> None:
    store = _store(ociapi)
    media = {"a": str(tmp_path / "job" / "inputs" / "a" / "a.mp4")}
    assert snap.restore_extract(store, tmp_path / "job", media) == {
        "restored": False,
        "why": "no faces in the job bucket",
    }
    made = snap.extract_outputs(tmp_path / "job", media)
    made["a"].mkdir(parents=True)
    (made["a"] / "a_0.png").write_bytes(b"face")
    made["alignments_a"].parent.mkdir(parents=True)
    made["alignments_a"].write_bytes(b"fsa")
    made["marker_a"].parent.mkdir(parents=True)
    made["marker_a"].write_text(
        json.dumps({"key": "k", "made_from": {"media": {"path": media["a"]}}})
    )
    # The supervisor finds the alignments file through the marker (it does not know the media).
    assert snap.extract_outputs_from_markers(tmp_path / "job", ["a"]) == made
    assert snap.push_faces(store, made, tmp_path / "j") is True
    # A host that holds its own marker keeps it (the extract phase's marker decides).
    assert snap.restore_extract(store, tmp_path / "job", media)["restored"] is False
    assert made["alignments_a"].read_bytes() == b"fsa"
    # A fresh host: everything comes back, each to its place on that host.
    media2 = {"a": str(tmp_path / "new" / "inputs" / "a" / "a.mp4")}
    assert snap.restore_extract(store, tmp_path / "new", media2) == {"restored": True, "files": 3}
    fresh = snap.extract_outputs(tmp_path / "new", media2)
    assert fresh["alignments_a"].read_bytes() == b"fsa"
    assert (fresh["a"] / "a_0.png").read_bytes() == b"face"
    assert json.loads(fresh["marker_a"].read_text())["key"] == "k"


def test_a_model_saved_while_it_is_copied_is_not_pushed_torn(
    ociapi: OciApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faceswap rewrites its model file in place: a copy that overlapped a save is refused
    and taken again at the next check, so no snapshot holds a torn model."""
    train, job, _ = _job(ociapi, tmp_path)
    snapshots = train.Snapshotter(job, train.snapshot_store(job))
    _save(tmp_path, 2, b"w2")
    real_copytree = snap.shutil.copytree

    def copy_during_a_save(src: Path, dst: Path, **kw: object) -> object:
        copied = real_copytree(src, dst, **kw)
        (Path(src) / "original.keras").write_bytes(b"w2 rewritten, longer")  # a save meanwhile
        return copied

    monkeypatch.setattr(snap.shutil, "copytree", copy_during_a_save)
    assert snapshots.push(2) is False
    assert (
        "changed while it was copied"
        in json.loads((tmp_path / "logs" / "snapshot.json").read_text())["error"]
    )
    assert PREFIX + "latest.json" not in _names(ociapi)
    monkeypatch.setattr(snap.shutil, "copytree", real_copytree)
    assert snapshots.due() == 2 and snapshots.push(2) is True
    restored = tmp_path / "restored"
    snap.restore_snapshot(_store(ociapi), restored)
    assert (restored / "model" / "original.keras").read_bytes() == b"w2 rewritten, longer"


def test_the_same_iteration_saved_again_is_pushed_again_to_a_new_folder(
    ociapi: OciApi, tmp_path: Path
) -> None:
    """The last interval's save and the exit's save share an iteration count: the second is
    pushed when its bytes differ, to a folder of its own (the latest is never rewritten)."""
    train, job, _ = _job(ociapi, tmp_path)
    snapshots = train.Snapshotter(job, train.snapshot_store(job))
    _save(tmp_path, 4, b"w4")
    assert snapshots.push(snapshots.due()) is True
    _save(tmp_path, 4, b"w4")  # rewritten, the same bytes
    assert snapshots.due() is None
    _save(tmp_path, 4, b"w4 at exit")
    assert snapshots.due() == 4 and snapshots.push(4) is True
    pointer = json.loads(ociapi.state.object_storage.buckets["fsoci-demo"].objects[
        PREFIX + "latest.json"].data)  # fmt: skip
    assert (pointer["snapshot"], pointer["iteration"]) == ("000000004.1", 4)
    assert PREFIX + "snapshots/000000004/model/original.keras" in _names(ociapi)
    assert snapshots.due() is None
    restored = tmp_path / "restored"
    snap.restore_snapshot(_store(ociapi), restored)
    assert (restored / "model" / "original.keras").read_bytes() == b"w4 at exit"


def test_training_logs_growing_between_saves_push_nothing_and_tear_no_copy(
    ociapi: OciApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faceswap's TensorBoard writer appends to <model>/<name>_logs/ every few iterations
    between saves: that is not a save. No snapshot of the same iteration is pushed again for
    it (found by benchmarks/snapshot.py: a push every 2 s check, the training at 0.86 of its
    speed), and a copy during which the logs grew is not refused as torn."""
    train, job, _ = _job(ociapi, tmp_path)
    snapshots = train.Snapshotter(job, train.snapshot_store(job))
    events = tmp_path / "model" / "original_logs" / "session_1" / "events.out.tfevents.1"
    events.parent.mkdir(parents=True)
    events.write_bytes(b"e1")
    _save(tmp_path, 4, b"w4")
    real_copytree = snap.shutil.copytree

    def copy_while_logging(src: Path, dst: Path, *args: object, **kw: object) -> object:
        copied = real_copytree(src, dst, *args, **kw)  # (copytree calls itself for subfolders)
        if Path(src) == tmp_path / "model":
            with events.open("ab") as fh:
                fh.write(b"+")  # the writer's flush meanwhile
        return copied

    monkeypatch.setattr(snap.shutil, "copytree", copy_while_logging)
    assert snapshots.push(snapshots.due()) is True
    monkeypatch.setattr(snap.shutil, "copytree", real_copytree)
    with events.open("ab") as fh:
        fh.write(b"e2 e3")
    assert snapshots.due() is None  # nothing saved since: nothing to push
    _save(tmp_path, 4, b"w4 at exit")
    assert snapshots.due() == 4  # the exit's save still is
    assert PREFIX + "snapshots/000000004/model/original_logs/session_1/events.out.tfevents.1" in (
        _names(ociapi)
    )


def test_the_snapshot_thread_runs_below_faceswap_s_priority(ociapi: OciApi, tmp_path: Path) -> None:
    """Staging, checksums and uploads yield the cores to Faceswap: the snapshot loop lowers its
    own thread (nice 10) and leaves the supervisor's other threads as they were."""
    import threading

    train, job, _ = _job(ociapi, tmp_path)
    snapshots = train.Snapshotter(job, train.snapshot_store(job))
    stop = threading.Event()
    seen: dict[str, int] = {}

    original = snapshots.push_faces

    def push_faces() -> None:
        seen["push"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        original()
        stop.set()

    snapshots.push_faces = push_faces
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    worker = threading.Thread(target=snapshots.loop, args=(stop,), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert seen["push"] == max(before, train.SNAPSHOT_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
