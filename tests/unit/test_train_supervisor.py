"""The training supervisor's `prepare` (roles/faceswap_train/files/fsoci_train.py): a model is
kept only when it was trained on what the job now names; otherwise it moves aside, whole."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HELPER = Path(__file__).resolve().parents[2] / "roles/faceswap_train/files/fsoci_train.py"


def load_helper(name: str) -> ModuleType:
    """A fresh copy of one of the training role's host-side files (``roles/faceswap_train/
    files/<name>``), loaded as a module."""
    path = HELPER.with_name(name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _helper() -> ModuleType:
    return load_helper("fsoci_train.py")


def _config(job: Path, made_from: dict[str, Any]) -> Path:
    cfg = {
        "job_dir": str(job),
        "model_dir": str(job / "model"),
        "faceswap_dir": str(job / "faceswap"),
        "trainer": "original",
        "made_from": made_from,
        "made_from_key": json.dumps(made_from, sort_keys=True),
    }
    path = job / "config" / "train.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg))
    (job / "logs").mkdir(exist_ok=True)
    return path


def _prepare(config: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(HELPER), "prepare", str(config), "5"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report: dict[str, Any] = json.loads(proc.stdout)["fsoci_prepare"]
    return report


def _train(job: Path, iterations: int) -> None:
    (job / "model").mkdir(exist_ok=True)
    (job / "model" / "original_state.json").write_text(json.dumps({"iterations": iterations}))
    (job / "model" / "original.keras").write_bytes(b"weights")
    (job / "model" / ".fsoci_train_done").write_text("{}")
    for name in ("train.out", "train.started.json", "preview.png"):
        (job / "logs" / name).write_text(name)


FACES = {"faces_a": "1" * 64, "faces_b": "2" * 64, "trainer": "original", "config": {}}


def test_a_fresh_job_records_what_its_model_is_made_from(tmp_path: Path) -> None:
    report = _prepare(_config(tmp_path, FACES))
    assert report == {"key": json.dumps(FACES, sort_keys=True), "reset": False, "changed": True}
    recorded = json.loads((tmp_path / "model" / ".fsoci_made_from.json").read_text())
    assert recorded["made_from"] == FACES
    # Nothing changed since: nothing to do.
    assert _prepare(_config(tmp_path, FACES))["changed"] is False


def test_the_same_inputs_keep_the_model_for_a_resume(tmp_path: Path) -> None:
    _prepare(_config(tmp_path, FACES))
    _train(tmp_path, 40)
    report = _prepare(_config(tmp_path, FACES))
    assert report["changed"] is False and report["reset"] is False
    assert (tmp_path / "model" / "original_state.json").is_file()
    assert (tmp_path / "logs" / "train.out").is_file()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"faces_a": "3" * 64}, ["faces_a"]),
        ({"faces_a": "3" * 64, "faces_b": "4" * 64}, ["faces_a", "faces_b"]),
        ({"trainer": "lightweight"}, ["trainer"]),
        ({"config": {"model.original": {"lowmem": True}}}, ["config"]),
    ],
)
def test_other_inputs_move_the_model_and_its_logs_aside(
    tmp_path: Path, change: dict[str, Any], why: list[str]
) -> None:
    _prepare(_config(tmp_path, FACES))
    _train(tmp_path, 40)
    report = _prepare(_config(tmp_path, {**FACES, **change}))
    assert report["reset"] is True and report["changed"] is True
    assert report["why"] == why
    assert report["old_iterations"] == 40
    kept = Path(report["kept"])
    assert kept.parent == tmp_path / "model.replaced"
    assert json.loads((kept / "model" / "original_state.json").read_text())["iterations"] == 40
    assert (kept / "model" / "original.keras").read_bytes() == b"weights"
    assert sorted(p.name for p in (kept / "logs").iterdir()) == [
        "preview.png",
        "train.out",
        "train.started.json",
    ]
    # The job starts from an empty model folder (the done marker went with the old model) and
    # no training log of the other model: its iterations and hours never count here.
    assert [p.name for p in (tmp_path / "model").iterdir()] == [".fsoci_made_from.json"]
    assert not (tmp_path / "logs" / "train.out").exists()
    assert not (tmp_path / "logs" / "train.started.json").exists()


def test_a_model_that_records_nothing_is_not_taken_for_these_inputs(tmp_path: Path) -> None:
    _config(tmp_path, FACES)
    _train(tmp_path, 7)
    report = _prepare(_config(tmp_path, FACES))
    assert report["reset"] is True
    assert report["why"] == ["unknown (the model records nothing)"]


def test_model_differences_names_each_part() -> None:
    helper = _helper()
    have = {"key": "k1", "made_from": FACES}
    want = {"key": "k2", "made_from": {**FACES, "trainer": "dfaker", "faces_b": "9" * 64}}
    assert helper.model_differences(have, want) == ["faces_b", "trainer"]
    assert helper.model_differences(None, want) == ["unknown (the model records nothing)"]


# ---------------------------------------------------------------- the pure core
def _job(tmp_path: Path, **cfg: Any) -> Any:
    helper = _helper()
    config = _config(tmp_path, FACES)
    data = json.loads(config.read_text())
    data.update(
        {
            "python": "/opt/fs/venv/bin/python",
            "faces_a": str(tmp_path / "faces_a"),
            "faces_b": str(tmp_path / "faces_b"),
            "batch_size": 4,
            "save_every": 10,
            "iterations": 0,
            "hours": 0,
            "plateau_saves": 0,
            "preview": False,
            "ini_src": "",
            "ini_work": str(tmp_path / "config" / "train.run.ini"),
            "extra_args": [],
            **cfg,
        }
    )
    config.write_text(json.dumps(data))
    return helper.Job(str(config))


def test_the_command_line_asks_for_the_remaining_iterations(tmp_path: Path) -> None:
    job = _job(tmp_path, iterations=100, preview=True, ini_src="x.ini", extra_args=["-nl"])
    base = [
        "/opt/fs/venv/bin/python",
        str(tmp_path / "faceswap" / "faceswap.py"),
        "train",
        "-A", str(tmp_path / "faces_a"),
        "-B", str(tmp_path / "faces_b"),
        "-m", str(tmp_path / "model"),
        "-t", "original",
        "-b", "4",
        "-s", "10",
        "-F", str(tmp_path / "logs" / "train.log"),
        "-C", str(tmp_path / "config" / "train.run.ini"),
    ]  # fmt: skip
    helper = _helper()
    assert helper.build_command(job) == [*base, "-i", "100", "-w", "-nl"]
    _train(tmp_path, 60)  # a resume: -i counts one session, the state file the whole model
    assert helper.build_command(job) == [*base, "-i", "40", "-w", "-nl"]
    _train(tmp_path, 100)
    assert helper.build_command(job)[len(base) : len(base) + 2] == ["-i", "1"]


def test_no_iteration_target_leaves_the_iterations_to_faceswap(tmp_path: Path) -> None:
    command = _helper().build_command(_job(tmp_path, hours=2.0))
    assert "-i" not in command and "-w" not in command and "-C" not in command


LOG = (
    "\n[fsoci] 2026-12-01 10:00:00 faceswap.py train ...\n"
    "[10:00:10] [#00010] Loss A: 0.12000, Loss B: 0.22000\n"
    "Average total loss since last save: 0.34\n"
    "[10:00:30] [#00030] Loss A: 0.10000, Loss B: 0.20000\n"
    "Average total loss since last save: 0.30\n"
    "\n[fsoci] 2026-12-01 11:00:00 faceswap.py train ...\n"
    "[11:00:05] [#00031] Loss A: 0.09500, Loss B: 0.19500\n"
    "[11:00:25] [#00041] Loss A: 0.09000, Loss B: nan\n"
)


def test_progress_reads_the_last_loss_line_and_the_rate_of_the_latest_session() -> None:
    info = _helper()._progress(LOG)
    assert info["iteration"] == 41
    assert info["loss_a"] == 0.09
    assert info["loss_b"] != info["loss_b"]  # nan is read as nan, not dropped
    assert info["it_per_s"] == 0.5  # 10 iterations in 20 s of the second session only
    assert _helper()._progress("no training output yet") == {
        "iteration": None,
        "loss_a": None,
        "loss_b": None,
        "it_per_s": None,
    }
    assert _helper()._saves(LOG) == [0.34, 0.30]


@pytest.mark.parametrize(
    ("averages", "saves", "reached"),
    [
        ([0.5, 0.4, 0.3], 2, False),  # still improving
        ([0.5, 0.3, 0.31, 0.32], 2, True),  # two saves without a new best
        ([0.5, 0.3, 0.31, 0.29], 2, False),  # the last save is a new best
        ([0.3, 0.4], 2, False),  # not enough saves to judge
        ([0.5, 0.3, 0.31, 0.32], 0, False),  # off
    ],
)
def test_plateau(averages: list[float], saves: int, reached: bool) -> None:
    assert _helper().plateau_reached(averages, saves) is reached


def test_stop_criteria(tmp_path: Path) -> None:
    helper = _helper()
    job = _job(tmp_path, iterations=50)
    assert helper.criterion_met(job, 49) is None
    assert helper.criterion_met(job, 50) == "iterations"
    job = _job(tmp_path, hours=1.0)
    (tmp_path / "logs" / "train.started.json").write_text(json.dumps({"started": 0}))
    assert helper.criterion_met(job, 0) == "hours"  # the job's first start, long ago
    (tmp_path / "logs" / "train.started.json").write_text(json.dumps({"started": 4e9}))
    assert helper.criterion_met(job, 0) is None
    job = _job(tmp_path, plateau_saves=2)
    (tmp_path / "logs" / "train.out").write_text(
        "".join(f"Average total loss since last save: {v}\n" for v in (0.5, 0.3, 0.31, 0.32))
    )
    assert helper.criterion_met(job, 0) == "plateau"


def _poll(job: Any, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert _helper().cmd_poll(job) == 0
    progress: dict[str, Any] = json.loads(capsys.readouterr().out)["fsoci_progress"]
    return progress


def test_poll_states_of_a_training_that_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path, iterations=20)
    assert _poll(job, capsys)["state"] == "stopped"  # never started
    _train(tmp_path, 20)
    (tmp_path / "model" / ".fsoci_train_done").unlink()
    progress = _poll(job, capsys)
    assert (progress["state"], progress["stop_reason"]) == ("finished", "iterations")
    assert json.loads((tmp_path / "model" / ".fsoci_train_done").read_text())["iterations"] == 20
    # More iterations asked for: judged again, and the saved model resumes.
    job = _job(tmp_path, iterations=30)
    progress = _poll(job, capsys)
    assert progress["state"] == "stopped" and progress["model_iterations"] == 20
    (tmp_path / "logs" / "train.exit.json").write_text(json.dumps({"rc": 1}))
    progress = _poll(job, capsys)
    assert progress["state"] == "failed"
    assert progress["log_tail"] == ["train.out"]


def test_a_long_poll_answers_as_soon_as_the_training_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path, iterations=20)
    # A stand-in supervisor: a process whose command line is `... fsoci_train.py run`.
    fake = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "fsoci_train.py", "run"]
    )
    try:
        (tmp_path / "logs" / "train.pid").write_text(f"{fake.pid}\n")
        helper = _helper()
        started = time.monotonic()
        assert helper.cmd_poll(job, 1.5) == 0
        waited = time.monotonic() - started
        assert json.loads(capsys.readouterr().out)["fsoci_progress"]["state"] == "starting"
        assert waited >= 1.5  # still running: it waited the whole time
        threading.Timer(1.0, fake.kill).start()
        started = time.monotonic()
        assert helper.cmd_poll(job, 60) == 0
        assert json.loads(capsys.readouterr().out)["fsoci_progress"]["state"] == "stopped"
        assert time.monotonic() - started < 30  # answered at the end, not after the 60 s
    finally:
        fake.kill()
        fake.wait()


def _core() -> ModuleType:
    return load_helper("fsoci_train_core.py")


@pytest.mark.parametrize(
    ("cfg", "iters", "started_ago", "averages", "expected"),
    [
        ({"iterations": 10}, 10, 0, [], "iterations"),
        ({"iterations": 10}, 9, 0, [], None),
        ({"hours": 1}, 0, 3600, [], "hours"),
        ({"hours": 1}, 0, 3599, [], None),
        ({"plateau_saves": 2}, 0, 0, [1.0, 0.5, 0.6, 0.7], "plateau"),
        ({"plateau_saves": 2}, 0, 0, [1.0, 0.5, 0.6, 0.4], None),
        ({"iterations": 10, "hours": 1}, 3, 7200, [], "hours"),
        ({}, 10**6, 10**6, [9.0, 9.0, 9.0], None),
    ],
)
def test_stop_criterion_is_pure(
    cfg: dict[str, Any], iters: int, started_ago: float, averages: list[float], expected: str | None
) -> None:
    now = 1_000_000.0
    read: list[bool] = []

    def lazily() -> list[float]:
        read.append(True)
        return averages

    got = _core().stop_criterion(cfg, iters, now - started_ago, now, lazily)
    assert got == expected
    assert read == ([True] if cfg.get("plateau_saves") else [])  # the log is read only for it
