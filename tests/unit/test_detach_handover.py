"""The runner hands a detached OCI job to its VM at the train phase (the training started in
detached mode, `faceswap_train_wait` false, no stamp) and leaves: no convert, fetch or
teardown; the state says `detached`; `run` of a handed-over job follows it as `attach` does.
The phases are the runner's decisions only (run_phase replaced), as in test_durability.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faceswap_oci import api, spec
from faceswap_oci import events as ev
from faceswap_oci.runner import Runner
from tests.unit.oci_job import write_oci_job


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, only: str | None = None, **oci: Any):
    job = spec.load_job(write_oci_job(tmp_path, "hand", **oci))
    seen: list[ev.Event] = []
    runner = Runner(job, state_root=tmp_path / "state", on_event=seen.append)
    calls: list[tuple[str, dict[str, Any], bool]] = []

    def phase(
        name: str, *, extra: dict[str, Any] | None = None, stamp: bool = True, **_: Any
    ) -> int:
        calls.append((name, dict(extra or {}), stamp))
        return 0

    monkeypatch.setattr(runner, "run_phase", phase)
    monkeypatch.setattr(runner, "save_before_teardown", lambda: None)
    result = runner.run(only=only)
    return runner, result, calls, seen


def test_a_detached_job_is_handed_over_at_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, result, calls, seen = _run(tmp_path, monkeypatch, detach=True)
    assert [c[0] for c in calls] == ["provision", "setup", "upload", "extract", "train"]
    assert calls[-1] == ("train", {"faceswap_train_wait": False}, False)
    assert result.ok and result.detached
    assert result.phases_run == ("provision", "setup", "upload", "extract", "train")
    assert runner.state.status()["state"] == "detached"
    (handed,) = [e for e in seen if isinstance(e, ev.Report) and e.report == "handed_over"]
    assert handed.data["attach"] == f"faceswap-oci attach {runner.job.source}"


def test_an_attached_job_runs_every_phase_and_tears_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _runner, result, calls, _ = _run(tmp_path, monkeypatch)
    assert [c[0] for c in calls][-4:] == ["train", "convert", "fetch", "teardown"]
    assert not result.detached


def test_only_train_of_a_detached_job_is_not_a_hand_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _runner, result, calls, _ = _run(tmp_path, monkeypatch, only="train", detach=True)
    assert calls == [("train", {}, True)]
    assert not result.detached


def test_run_of_a_handed_over_job_follows_it_as_attach_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _result, _calls, _ = _run(tmp_path, monkeypatch, detach=True)
    followed: list[str] = []

    def attach(job: Any, **_: Any) -> api.Attached:
        followed.append(job.name)
        return api.Attached(job.name, "running", {"instance": "RUNNING"})

    monkeypatch.setattr(api, "attach", attach)
    monkeypatch.setattr(api.detach_mod, "require", lambda job: None)  # no IAM here
    again = api.run(runner.job, state_root=tmp_path / "state")
    assert followed == ["hand"]
    assert again.detached and again.ok


def _record_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[tuple[str | None, str | None, bool]]:
    """Replace ``Runner.run``: each call's (only, from_phase, detach) is recorded."""
    done: list[tuple[str | None, str | None, bool]] = []

    def run(self: Runner, *, from_phase: str | None = None, only: str | None = None, **_: Any):
        done.append((only, from_phase, bool(self.job.spec.target.oci.detach)))
        return api.JobResult(self.job.name, "successful", self.state.path, (), (), 0, tmp_path)

    monkeypatch.setattr(Runner, "run", run)
    return done


@pytest.mark.parametrize(
    ("instance", "runs"),
    [
        ("TERMINATED", [(None, "provision", False)]),
        ("RUNNING", [("teardown", None, False), (None, "provision", False)]),
    ],
)
def test_attach_of_a_trained_job_converts_on_a_new_host_attached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: str, runs: list[Any]
) -> None:
    """``trained``: the VM trained to the criterion and ended its billing without converting;
    attach provisions again (the old instance torn down first if it still runs) and runs the
    rest attached, so the new host does not hand over again."""
    job = spec.load_job(write_oci_job(tmp_path, "hand", detach=True))
    seen = {"instance": instance, "done": {"state": "trained", "iteration": 40}}
    monkeypatch.setattr(api.detach_mod, "reconcile", lambda job, instance_id: seen)
    done = _record_runs(monkeypatch, tmp_path)
    found = api.attach(job, state_root=tmp_path / "state")
    assert found.state == "trained"
    assert done == runs


@pytest.mark.parametrize(
    ("target", "tail"),
    [
        ({"kind": "local", "oci": None}, []),
        ({"kind": "oci", "oci": {"service_endpoint": None}}, []),
        (
            {"kind": "oci", "oci": {"service_endpoint": "http://169.254.77.1:9"}},
            [
                "--endpoint",
                "http://169.254.77.1:9",
                "--federation-endpoint",
                "http://169.254.77.1:9/v1/x509",
            ],
        ),
    ],
)
def test_train_playbook_hands_the_supervisor_the_watchdogs_terminate_agent(
    target: dict[str, Any], tail: list[str]
) -> None:
    """playbooks/train.yml's `faceswap_train_terminate_command`, rendered as Ansible does:
    the path oci_watchdog installs fsoci_terminate.py to, no power-off (the supervisor is
    unprivileged; the watchdog's path unit powers off), the double's endpoints in tests."""
    import yaml
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    root = Path(__file__).resolve().parents[2]
    play = yaml.safe_load((root / "playbooks/train.yml").read_text())[0]
    (task,) = [t for t in play["tasks"] if "ansible.builtin.import_role" in t]
    expr = task["vars"]["faceswap_train_terminate_command"]
    rendered = Templar(loader=DataLoader(), variables={"fsoci": {"target": target}}).template(
        trust_as_template(expr)
    )
    installed = yaml.safe_load((root / "roles/oci_watchdog/tasks/main.yml").read_text())
    dest = [
        t["ansible.builtin.copy"]["dest"]
        for block in installed
        for t in block.get("block", [])
        if "ansible.builtin.copy" in t
    ]
    assert rendered == ["/usr/bin/python3", *dest, "--poweroff", "", *tail]


def test_attach_of_a_job_whose_instance_is_gone_without_a_marker_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Preempted while detached: the agent cannot provision, so attach (or run) does: a new
    host from provision (restoring the latest snapshot), handed over again."""
    job = spec.load_job(write_oci_job(tmp_path, "hand", detach=True, preemptible=True))
    seen = {"instance": "TERMINATED", "latest": {"iteration": 20}, "done": None}
    monkeypatch.setattr(api.detach_mod, "reconcile", lambda job, instance_id: seen)
    done = _record_runs(monkeypatch, tmp_path)
    events: list[ev.Event] = []
    found = api.attach(job, state_root=tmp_path / "state", on_event=events.append)
    assert found.state == "resumed"
    assert done == [(None, "provision", True)]
    (lost,) = [e for e in events if isinstance(e, ev.Report) and e.report == "detached_lost"]
    assert lost.data["latest"] == {"iteration": 20}
