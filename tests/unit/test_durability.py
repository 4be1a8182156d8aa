"""Before an OCI teardown deletes a host, the runner makes its training save, stop and push a
final snapshot (the `stop` entry point); an unreachable host is reported with the iterations the
job bucket holds and the iterations lost. ssh and local targets are left as they are."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from faceswap_oci import events as ev
from faceswap_oci import spec
from faceswap_oci.errors import PhaseFailed
from faceswap_oci.runner import Runner
from tests.unit.oci_job import write_oci_job


def _runner(tmp_path: Path, **oci: Any) -> tuple[Runner, list[ev.Event], list[str]]:
    job = spec.load_job(write_oci_job(tmp_path, "durable", **oci))
    seen: list[ev.Event] = []
    runner = Runner(job, state_root=tmp_path / "state", on_event=seen.append)
    phases: list[str] = []
    return runner, seen, phases


def _host(runner: Runner) -> None:
    runner.state.path.mkdir(parents=True, exist_ok=True)
    (runner.state.path / "target.json").write_text(json.dumps({"host": "203.0.113.9"}))
    (runner.state.path / "storage.par").write_text("secret\n")


def test_a_reachable_host_is_stopped_before_teardown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _seen, phases = _runner(tmp_path)
    _host(runner)
    monkeypatch.setattr(runner, "run_phase", lambda phase, **_kw: phases.append(phase) or 1)
    runner.save_before_teardown()
    assert phases == ["stop"]


def test_an_unreachable_host_reports_what_is_held_and_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, seen, _ = _runner(tmp_path)
    _host(runner)
    runner._emit(ev.Progress("train", data={"model_iterations": 9, "snapshot_iterations": 6}))

    def unreachable(phase: str, **_kw: Any) -> int:
        raise PhaseFailed(phase, "host 203.0.113.9 unreachable")

    monkeypatch.setattr(runner, "run_phase", unreachable)
    runner.save_before_teardown()
    (report,) = [e for e in seen if isinstance(e, ev.Report)]
    assert report.report == "snapshot_unsaved"
    assert report.data == {
        "snapshot_iterations": 6,
        "model_iterations": 9,
        "lost_iterations": 3,
        "why": "phase 'stop' failed: host 203.0.113.9 unreachable",
    }


@pytest.mark.parametrize(
    ("storage", "host"),
    [({"enabled": False}, True), ({}, False)],
    ids=["no job bucket", "no host"],
)
def test_nothing_to_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any], host: bool
) -> None:
    runner, _, phases = _runner(tmp_path, storage=storage)
    if host:
        _host(runner)
    monkeypatch.setattr(runner, "run_phase", lambda phase, **_kw: phases.append(phase) or 1)
    runner.save_before_teardown()
    assert phases == []


def test_ssh_calls_outlive_a_minute_of_link_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's environment reaches the ssh connection plugin as its reconnection retries
    (the variable name is checked by ansible's own config), and the plugin's backoff (0, 1, 3,
    7, 15, 30 ... s between attempts, ansible/plugins/connection/ssh.py) plus a 10 s connect
    time-out per attempt spans more than 60 s."""
    from ansible import constants
    from ansible.plugins.loader import connection_loader

    runner, _, _ = _runner(tmp_path)
    env = runner.envvars()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    connection_loader.get("ssh", class_only=True)  # loads the plugin's option definitions
    retries = constants.config.get_config_value(
        "reconnection_retries", plugin_type="connection", plugin_name="ssh"
    )
    assert int(retries) == 8
    waited = sum(min(30, 2**attempt - 1) for attempt in range(int(retries))) + 10 * (
        int(retries) + 1
    )
    assert waited > 60
    assert "ServerAliveInterval=10" in env["ANSIBLE_SSH_ARGS"]


class _Cloud:
    """A stand-in for the phases' playbooks: provision hands out a new instance, the train
    phase fails while the current instance is preempted, instance_state lists what lives."""

    def __init__(self, runner: Runner, preempt: int, unreachable: int = 0) -> None:
        self.runner = runner
        self.preempt = preempt  # how many train phases die of a preemption
        self.unreachable = unreachable  # how many give up on a live but unreachable host
        self.live: set[str] = set()
        self.phases: list[str] = []
        self.launched = 0

    def run_phase(self, phase: str, **_kw: Any) -> int:
        self.phases.append(phase)
        path = self.runner.state.path
        if phase == "provision":
            self.launched += 1
            instance = f"ocid1.instance.oc1.eu-frankfurt-1.i{self.launched}"
            self.live.add(instance)
            self.runner._emit(
                ev.Report(
                    phase,
                    report="oci_attempts",
                    data={
                        "instance_id": instance,
                        "shape": "VM.GPU.A10.1",
                        "preemptible": True,
                        "boot_volume_gb": 200,
                        "time_created": "2026-01-01T10:00:00+00:00",
                        "attempts": [],
                    },
                )
            )
            path.mkdir(parents=True, exist_ok=True)
            (path / "target.json").write_text(json.dumps({"instance_id": instance}))
        elif phase == "train" and self.preempt > 0:
            self.preempt -= 1
            self.live.clear()  # the service reclaimed it
            self.runner._emit(ev.Progress("train", data={"snapshot_iterations": 4}))
            raise PhaseFailed("train", "host unreachable")
        elif phase == "train" and self.unreachable > 0:
            self.unreachable -= 1
            # What roles/faceswap_train/tasks/poll.yml reports before it fails the phase.
            self.runner._emit(ev.Report("train", report="train_unreachable", data={"polls": 5}))
            raise PhaseFailed("train", "The host was unreachable for 5 training polls in a row")
        elif phase == "instance_state":
            resources = [{"kind": "instance", "id": i} for i in sorted(self.live)]
            self.runner._emit(
                ev.Report(phase, report="instance_state", data={"resources": resources})
            )
        return 0


def _cloud(
    tmp_path: Path, preempt: int, unreachable: int = 0, **oci: Any
) -> tuple[Runner, _Cloud, list[ev.Event]]:
    runner, seen, _ = _runner(tmp_path, **oci)
    cloud = _Cloud(runner, preempt, unreachable)
    runner.run_phase = cloud.run_phase  # type: ignore[method-assign]
    return runner, cloud, seen


def test_a_preempted_job_is_provisioned_again_and_finishes(tmp_path: Path) -> None:
    runner, cloud, seen = _cloud(tmp_path, preempt=2, preemptible=True)
    result = runner.run()
    assert result.status == "successful", result.error
    preempted = [e for e in seen if isinstance(e, ev.Preempted)]
    assert [(e.instance_id.rsplit(".", 1)[1], e.recovery, e.max_recoveries) for e in preempted] == [
        ("i1", 1, 3),
        ("i2", 2, 3),
    ]
    assert preempted[0].snapshot_iterations == 4
    # Each recovery is priced: the preempted instance is billed by this run, as terminated.
    assert all(e.usd is not None and e.usd > 0 for e in preempted)
    assert result.cost is not None
    billed = {i["instance_id"].rsplit(".", 1)[1] for i in result.cost["instances"]}
    assert {"i1", "i2"} <= billed
    assert cloud.launched == 3
    assert cloud.phases.count("train") == 3 and cloud.phases[-1] == "teardown"


def test_recoveries_stop_at_max_recoveries(tmp_path: Path) -> None:
    runner, cloud, seen = _cloud(tmp_path, preempt=5, preemptible=True, max_recoveries=1)
    result = runner.run()
    assert result.status == "failed"
    assert [e.recovery for e in seen if isinstance(e, ev.Preempted)] == [1]
    assert cloud.launched == 2


def test_an_on_demand_instance_is_not_taken_for_preempted(tmp_path: Path) -> None:
    runner, cloud, seen = _cloud(tmp_path, preempt=1)
    assert runner.run().status == "failed"
    assert "instance_state" not in cloud.phases
    assert not [e for e in seen if isinstance(e, ev.Preempted)]


@pytest.mark.parametrize("preemptible", [True, False])
def test_a_live_but_unreachable_host_is_followed_again(tmp_path: Path, preemptible: bool) -> None:
    runner, cloud, seen = _cloud(tmp_path, preempt=0, unreachable=2, preemptible=preemptible)
    result = runner.run()
    assert result.status == "successful", result.error
    rejoins = [e.data for e in seen if isinstance(e, ev.Report) and e.report == "host_unreachable"]
    assert [(d["rejoin"], d["max_rejoins"], d["instance_state"]) for d in rejoins] == [
        (1, 2, "live"),
        (2, 2, "live"),
    ]
    # The API was asked each time; the same instance, no new one, no Preempted.
    assert cloud.phases.count("instance_state") >= 2
    assert cloud.launched == 1 and cloud.phases.count("train") == 3
    assert not [e for e in seen if isinstance(e, ev.Preempted)]


def test_an_unreachable_host_is_given_up_after_the_bound(tmp_path: Path) -> None:
    runner, cloud, _ = _cloud(tmp_path, preempt=0, unreachable=3)
    result = runner.run()
    assert result.status == "failed"
    assert result.error is not None and "unreachable for 5 training polls" in result.error
    assert cloud.phases.count("train") == 3  # the first try and two rejoins


def test_an_unreachable_host_whose_instance_is_gone_is_not_waited_for(tmp_path: Path) -> None:
    runner, cloud, seen = _cloud(tmp_path, preempt=0, unreachable=1)
    original = cloud.run_phase

    def gone(phase: str, **kw: Any) -> int:
        if phase == "instance_state":
            cloud.live.clear()  # an on-demand instance that the API no longer lists
        return original(phase, **kw)

    runner.run_phase = gone  # type: ignore[method-assign]
    result = runner.run()
    assert result.status == "failed"
    assert cloud.phases.count("train") == 1
    assert not [e for e in seen if isinstance(e, ev.Report) and e.report == "host_unreachable"]


def test_each_instance_gets_its_own_known_hosts(tmp_path: Path) -> None:
    """A new instance may come back on an earlier one's public IP with host keys of its own:
    its host keys go to a file of its own, and a provision forgets the earlier ones'."""
    runner, _, _ = _runner(tmp_path, preemptible=True)
    runner.state.path.mkdir(parents=True, exist_ok=True)
    target = runner.state.path / "target.json"
    files = []
    for instance in ("ocid1.instance.oc1.eu-frankfurt-1.aaaa1111", "ocid1.instance.oc1..bbbb2222"):
        target.write_text(json.dumps({"instance_id": instance, "host": "203.0.113.9", "key": "k"}))
        files.append(runner.known_hosts())
        files[-1].write_text("203.0.113.9 ssh-ed25519 AAAA\n")
        host = runner.inventory()["all"]["children"]["fsoci_target"]["hosts"]["target"]
        assert f'UserKnownHostsFile="{files[-1]}"' in shlex.split(host["ansible_ssh_common_args"])
    assert files[0] != files[1] and files[0].parent == runner.state.path
    runner._forget_other_instances()
    assert not files[0].exists() and files[1].exists()


def test_events_from_two_threads_never_tear_a_json_line(tmp_path: Path) -> None:
    """`run --json` writes each event as one line; the phase's worker thread and the main
    thread (an interrupt's notice) both emit. A consumer that writes a line in two parts (as
    print() writes the text, then the newline) must still get whole lines, and so must the
    job's event log (seen on CI: a SIGINT's notice and a task's result on one line)."""
    import io
    import threading
    import time

    job = spec.load_job(write_oci_job(tmp_path, "torn"))
    out = io.StringIO()

    def two_part_writer(event: ev.Event) -> None:
        out.write(event.to_json())
        time.sleep(0.001)  # the other thread's chance to write in between
        out.write("\n")

    runner = Runner(job, state_root=tmp_path / "state", on_event=two_part_writer)

    def emit(kind: str) -> None:
        for n in range(40):
            runner._emit(ev.Report("setup", report="interrupt", data={"from": kind, "n": n}))

    threads = [threading.Thread(target=emit, args=(k,)) for k in ("worker", "main")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 80
    assert sorted((d["data"]["from"], d["data"]["n"]) for d in map(json.loads, lines)) == sorted(
        (k, n) for k in ("worker", "main") for n in range(40)
    )
    logged = runner.state.events_file.read_text().splitlines()
    assert len([json.loads(line) for line in logged]) == 80
