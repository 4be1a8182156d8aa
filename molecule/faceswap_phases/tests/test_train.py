"""Verify the train phase: a systemd unit stopped by its criterion, the model saved."""

from __future__ import annotations

import json

JOB = "/opt/faceswap-oci/jobs/molecule"
UNIT = "faceswap-train-molecule.service"


def test_unit_is_a_sigint_stopped_service_of_the_faceswap_user(host) -> None:
    unit = host.file(f"/etc/systemd/system/{UNIT}").content_string
    assert "User=faceswap" in unit
    assert "KillSignal=SIGINT" in unit
    assert "TimeoutStopSec=1800" in unit
    assert f"{JOB}/config/fsoci_train.py run {JOB}/config/train.json" in unit


def test_unit_ran_and_ended_cleanly(host) -> None:
    show = host.check_output(f"systemctl show {UNIT} -p ActiveState -p ExecMainStatus -p Result")
    props = dict(line.split("=", 1) for line in show.splitlines())
    assert props["ActiveState"] == "inactive"
    assert props["ExecMainStatus"] == "0"
    assert props["Result"] == "success"
    assert host.run("pgrep -f fsoci_train.py").rc == 1


def test_model_holds_the_cumulative_iterations(host) -> None:
    state = json.loads(host.file(f"{JOB}/model/original_state.json").content_string)
    assert state["iterations"] == 4
    assert host.file(f"{JOB}/model/original.keras").user == "faceswap"
    done = json.loads(host.file(f"{JOB}/model/.fsoci_train_done").content_string)
    assert (done["iterations"], done["reason"]) == (4, "iterations")


def test_faceswap_ran_headless_with_a_preview(host) -> None:
    start = next(
        line
        for line in host.file(f"{JOB}/logs/train.out").content_string.splitlines()
        if line.startswith("[fsoci]")
    )
    assert " -w" in start and " -p " not in start and " -n " not in start
    assert f"-F {JOB}/logs/train.log" in start
    assert host.file(f"{JOB}/logs/preview.png").size > 0
    exit_info = json.loads(host.file(f"{JOB}/logs/train.exit.json").content_string)
    assert exit_info["rc"] == 0
