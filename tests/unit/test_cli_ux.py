"""Issue 17, the CLI as a new user meets it: plan-and-confirm, `plan` without media and without
writes, `check` against the local OCI API, the progress bar, `status`, `logs`, `down NAME`,
`stop`, the job lock, duplicate keys, `--version`/`-h`/completion and phase choices.

Every CLI call goes through :func:`invoke`, which keeps its output; after each test the
autouse ``no_secret_in_output`` fixture greps all of it for the OCI key, its pass phrase and
its fingerprint (the OCI tests here use a pass-phrase-protected key)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner, Result

import faceswap_oci
from faceswap_oci import api, cli, spec
from faceswap_oci import events as ev
from faceswap_oci.runner import JobResult
from faceswap_oci.state import StateDir
from tests.media import write_pair
from tests.ociapi.fixtures import COMPARTMENT, REGION, TENANCY, write_test_config
from tests.ociapi.server import OciApiServer, OciApiState

PASS_PHRASE = "correct-horse-battery-staple-17"
OUTPUTS: list[str] = []


def invoke(args: list[str], **kwargs: Any) -> Result:
    result = CliRunner().invoke(cli.app, args, prog_name="faceswap-oci", **kwargs)
    OUTPUTS.append(result.output)
    return result


# --- an OCI config with a pass-phrase key, and the local OCI API that accepts it ----------------


@dataclass(frozen=True)
class Secrets:
    config_file: Path
    key_pem: str
    fingerprint: str


@dataclass
class Double:
    server: OciApiServer
    secrets: Secrets

    @property
    def state(self) -> OciApiState:
        return self.server.state


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Double]:
    cfg = write_test_config(tmp_path_factory.mktemp("oci17"), pass_phrase=PASS_PHRASE)
    fingerprint = cfg.key_id.rsplit("/", 1)[1]
    secrets = Secrets(cfg.config_file, cfg.key_file.read_text(), fingerprint)
    state = OciApiState(
        tenancy=TENANCY, key_id=cfg.key_id, public_key=cfg.public_key, compartments=[COMPARTMENT]
    )
    server = OciApiServer(state).start()
    try:
        yield Double(server, secrets)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def no_secret_in_output(request: pytest.FixtureRequest) -> Iterator[None]:
    OUTPUTS.clear()
    yield
    if "double" not in request.fixturenames:
        return
    secrets: Secrets = request.getfixturevalue("double").secrets
    body = [line for line in secrets.key_pem.splitlines() if line and not line.startswith("-----")]
    for output in OUTPUTS:
        assert PASS_PHRASE not in output
        assert secrets.fingerprint not in output
        assert not any(line in output for line in body)


def oci_job(folder: Path, double: Double, name: str = "paid", **oci: Any) -> Path:
    write_pair(folder)
    data = {
        "name": name,
        "consent": spec.CONSENT_TEXT,
        "target": {
            "kind": "oci",
            "oci": {
                "compartment": COMPARTMENT,
                "region": REGION,
                "config_file": str(double.secrets.config_file),
                "service_endpoint": double.server.url,
                "shapes": ["VM.GPU.A10.1", "VM.GPU3.1"],
                **oci,
            },
        },
        "inputs": {"a": "a.mp4", "b": "b.mp4"},
        "train": {"stop": {"iterations": 30, "hours": 1}},
    }
    path = folder / "job.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def local_job(folder: Path, name: str = "here", **extra: Any) -> Path:
    data = {
        "name": name,
        "consent": spec.CONSENT_TEXT,
        "target": {"kind": "local"},
        "inputs": {"a": "media/a.mp4", "b": "media/b.mp4"},
        "output": "out/",
        **extra,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def fake_result(job_file: Path, calls: list[dict[str, Any]]) -> Any:
    def run(job: Any, **kwargs: Any) -> JobResult:
        calls.append(kwargs)
        return JobResult(job.name, "successful", Path("/x"), (), (), 0, job.output_dir)

    return run


# --- plan, then confirm ---------------------------------------------------------------------------


def test_run_on_oci_without_a_terminal_and_without_yes_refuses_with_exit_2(
    tmp_path: Path, double: Double
) -> None:
    job = oci_job(tmp_path, double)
    before = tree(tmp_path)
    result = invoke(["run", str(job), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "job paid on oci eu-frankfurt-1 [VM.GPU.A10.1, VM.GPU3.1]" in flat  # the plan
    assert "if the ladder reaches VM.GPU3.1 (on demand): $" in flat  # every rung priced
    assert "there is no terminal to ask on: pass --yes to proceed" in flat
    assert tree(tmp_path) == before  # nothing ran, nothing was written
    assert double.state.calls["LaunchInstance"] == 0


def test_yes_skips_the_question_also_with_json(
    tmp_path: Path, double: Double, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    job = oci_job(tmp_path, double)
    monkeypatch.setattr(api, "run", fake_result(job, calls))
    for extra in (["--yes"], ["-y", "--json"]):
        result = invoke(["run", str(job), *extra, "--state-dir", str(tmp_path / "state")])
        assert result.exit_code == 0, result.output
        assert "Proceed?" not in result.output
    assert len(calls) == 2
    assert "estimated cost: $" in result.stderr  # --json: the plan goes to stderr
    assert result.stdout.strip() == ""


def test_the_question_on_a_terminal_y_runs_and_anything_else_does_not(
    tmp_path: Path, double: Double, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    job = oci_job(tmp_path, double)
    monkeypatch.setattr(api, "run", fake_result(job, calls))
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    args = ["run", str(job), "--state-dir", str(tmp_path / "state")]
    declined = invoke(args, input="\n")
    assert declined.exit_code == 1 and calls == []
    assert "Proceed? [y/N]" in declined.output and "nothing ran (declined)" in declined.output
    accepted = invoke(args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert len(calls) == 1


def test_a_local_run_costs_nothing_and_is_not_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    write_pair(tmp_path / "media")
    job = local_job(tmp_path)
    monkeypatch.setattr(api, "run", fake_result(job, calls))
    result = invoke(["run", str(job), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    assert "estimated cost: $0 (no cloud resources)" in result.output
    assert "Proceed?" not in result.output and len(calls) == 1


def test_the_question_in_a_real_terminal(tmp_path: Path, double: Double) -> None:
    """The TTY path end to end: a pty, the real `faceswap-oci`, answered "n"."""
    job = oci_job(tmp_path, double)
    before = tree(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on the pty
        os.execv(
            sys.executable,
            [sys.executable, "-m", "faceswap_oci.cli", "run", str(job), "--state-dir",
             str(tmp_path / "state")],
        )  # fmt: skip
    seen = b""
    deadline = time.monotonic() + 60
    answered = False
    status = None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            seen += chunk
        if not answered and b"Proceed? [y/N]" in seen:
            os.write(fd, b"n\n")
            answered = True
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = code
            break
    if status is None:
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    OUTPUTS.append(seen.decode(errors="replace"))
    assert answered, seen.decode(errors="replace")[-2000:]
    assert os.WEXITSTATUS(status) == 1
    assert b"nothing ran (declined)" in seen
    assert tree(tmp_path) == before


# --- plan without the media, and writing nothing ------------------------------------------------


def test_plan_without_the_media_warns_and_writes_nothing(tmp_path: Path) -> None:
    job = local_job(tmp_path, inputs={"a": "demo/a.mp4", "b": "demo/b.mp4", "demo": True})
    before = tree(tmp_path)
    result = invoke(["plan", str(job), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert f"warning: inputs.a: file not found: 'demo/a.mp4' (resolved to {tmp_path}/demo/a.mp4)"
    assert "warning: inputs.demo: run writes the synthetic demo clips" in flat
    assert tree(tmp_path) == before  # no demo clips, no state folder


def test_plan_adds_nothing_to_an_existing_jobs_state(tmp_path: Path) -> None:
    """Another job of the same name: plan reads its state and hashes the inputs without
    adding them to its checksums.json."""
    write_pair(tmp_path / "media")
    job = local_job(tmp_path)
    state = StateDir.for_job("here", tmp_path / "state").create()
    (state.path / "checksums.json").write_text('{"/elsewhere|1|2": "abc"}\n')
    before = tree(tmp_path)
    result = invoke(["plan", str(job), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    assert tree(tmp_path) == before
    assert api.plan(job, state_root=tmp_path / "state").job == "here"  # a path, too
    assert tree(tmp_path) == before


# --- check ---------------------------------------------------------------------------------------


def check_lines(result: Result) -> dict[str, str]:
    """`check`'s lines, "<level>  <item>  <detail>[; fix: ...]", as item -> "level detail"."""
    found = {}
    for line in result.stdout.splitlines():
        level, name, detail = re.split(r"\s{2,}", line.strip(), maxsplit=2)
        found[name] = f"{level} {detail}"
    return found


def test_check_on_a_good_config_calls_each_service_read_only(
    tmp_path: Path, double: Double
) -> None:
    job = oci_job(tmp_path, double)
    calls_before = dict(double.state.calls)
    result = invoke(["check", str(job), "--state-dir", str(tmp_path / "state")])
    lines = check_lines(result)
    for item in ("oci config", "compartment", "api identity", "api compute", "api network"):
        assert lines[item].startswith("ok"), lines
    assert lines["api object storage"] == "ok namespace fsocitestns"
    assert lines["limit VM.GPU.A10.1"] == (
        "ok gpu-a10-count available per AD (AD-1: 2, AD-2: 2, AD-3: 2)"
    )
    assert lines["limit VM.GPU3.1"] == "ok gpu3-count available per AD (AD-1: 1, AD-2: 1, AD-3: 1)"
    made = {k: v - calls_before.get(k, 0) for k, v in double.state.calls.items()}
    made = {k: v for k, v in made.items() if v}
    assert made == {
        "GetCompartment": 1,
        "ListAvailabilityDomains": 1,
        "ListShapes": 1,
        "ListVcns": 1,
        "GetNamespace": 1,
        "GetResourceAvailability": 6,  # 2 shapes x 3 ADs
    }
    assert not any(k.startswith(("Create", "Launch", "Delete", "Update")) for k in made)
    assert result.exit_code in (0, 2)  # the tool lines depend on this machine
    if result.exit_code == 2:
        failed = [k for k, v in lines.items() if v.startswith("fail")]
        assert all(k.startswith(("tool", "disk")) for k in failed), failed


def test_check_names_a_gpu_limit_of_zero_and_the_fix(tmp_path: Path, double: Double) -> None:
    double.state.set_limit("gpu3-count", 0)
    try:
        job = oci_job(tmp_path, double, shapes=["VM.GPU3.1"])
        result = invoke(["check", str(job), "--json", "--state-dir", str(tmp_path / "state")])
    finally:
        double.state.limits.clear()
    items = {i["name"]: i for i in map(json.loads, result.stdout.splitlines())}
    limit = items["limit VM.GPU3.1"]
    assert limit["level"] == "fail"
    assert limit["detail"] == (
        "gpu3-count: fewer than 1 GPU(s) available in every AD (AD-1: 0, AD-2: 0, AD-3: 0)"
    )
    assert "request a service limit increase for gpu3-count" in limit["fix"]
    assert result.exit_code == 2


def test_check_on_a_broken_config_fails_with_the_fix(tmp_path: Path, double: Double) -> None:
    """A fingerprint the key does not have: the API answers 401 and check says what to fix."""
    broken = tmp_path / "broken-config"
    text = double.secrets.config_file.read_text()
    wrong = "aa:" * 15 + "aa"
    broken.write_text(text.replace(double.secrets.fingerprint, wrong))
    broken.chmod(0o600)
    job = oci_job(tmp_path, double, config_file=str(broken))
    result = invoke(["check", str(job), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2
    lines = check_lines(result)
    assert lines["compartment"].startswith("fail GetCompartment")
    assert "401 NotAuthenticated" in lines["compartment"]
    assert "the public key is uploaded to the user" in lines["compartment"]
    assert "api compute" not in lines  # one answer is enough: no call after a 401
    missing = oci_job(tmp_path, double, config_file=str(tmp_path / "nowhere"))
    result = invoke(["check", str(missing), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2
    assert check_lines(result)["oci config"].startswith("fail OCI config file does not exist")
    assert "OCI config file does not exist" in result.stdout


def test_check_reaches_the_ssh_host_or_says_why(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens
    write_pair(tmp_path / "media")
    job = local_job(tmp_path, target={"kind": "ssh", "ssh": {"host": "127.0.0.1", "port": port}})
    result = invoke(["check", str(job), "--state-dir", str(tmp_path / "state")])
    line = check_lines(result)["ssh host"]
    assert line.startswith(f"fail root@127.0.0.1:{port}: ")
    assert "Connection refused" in line
    assert result.exit_code == 2


# --- progress -------------------------------------------------------------------------------------


def progress(iteration: int, loss_a: float, loss_b: float) -> ev.Progress:
    data = {"iteration": iteration, "target": 30, "loss_a": loss_a, "loss_b": loss_b}
    return ev.Progress("train", data={**data, "it_per_s": 0.5, "state": "running"})


def test_the_progress_bar_shows_every_field(tmp_path: Path, double: Double) -> None:
    job = spec.load_job(oci_job(tmp_path, double))
    console = Console(record=True, width=240, force_terminal=True, color_system=None)
    display = cli._Display(False, job, console=console, tty=True)
    with display:
        display(ev.PhaseStarted("train", playbook="train.yml"))
        display(progress(20, 0.0500, 0.0400))
        display(progress(21, 0.0412, 0.0450))
        display(ev.Report("extract", report="faces", data={"a": 30, "b": 28}))
        display(ev.TaskDone("train", task="Poll", host="target", status=ev.TaskStatus.FAILED,
                            message="boom"))  # fmt: skip
    text = console.export_text()
    assert "21/30 70%" in text
    assert "0.50 it/s" in text
    assert "ETA 0m18s" in text  # 9 iterations at 0.5 it/s
    assert "budget 59m" in text or "budget 1h00m" in text  # train.stop.hours: 1
    assert "loss A 0.0412 ↓ B 0.0450 ↑" in text
    assert "elapsed 0m0" in text
    assert "$0.00 so far" in text  # OCI: the first rung's list price x elapsed
    assert "[extract] faces: a=30, b=28" in text  # reports on the terminal too
    assert "[train] FAILED Poll: boom" in text


def test_the_plain_progress_line_and_the_end_paths(tmp_path: Path) -> None:
    fields = cli.TrainProgress(hours=None)
    fields.update({"iteration": 5, "target": 10, "loss_a": 0.1, "it_per_s": 1.0})
    assert fields.line().startswith("5/10 (50%) 1.00 it/s ETA 0m05s loss A 0.1000 B - elapsed")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("j.mp4", "j.manifest.json", "j.preview.png"):
        (out / name).write_text("x")
    console = Console(record=True, width=200)
    old = cli.out
    cli.out = console
    try:
        cli._summarise(JobResult("j", "successful", tmp_path, ("fetch",), (), 1, out), False)
    finally:
        cli.out = old
    text = console.export_text()
    assert f"video:    {out}/j.mp4" in text
    assert f"manifest: {out}/j.manifest.json" in text
    assert f"preview:  {out}/j.preview.png" in text


# --- status, logs ---------------------------------------------------------------------------------


def made_state(
    root: Path, name: str, job_file: Path, state: str, pid: int, events: list[Any]
) -> Path:
    folder = root / name
    (folder / "stamps").mkdir(parents=True)
    saved = spec.load_job(job_file, write=False).public_spec()
    (folder / "spec.json").write_text(json.dumps({"source": str(job_file), "spec": saved}))
    (folder / "status.json").write_text(
        json.dumps({"state": state, "phase": "train", "pid": pid, "updated": time.time() - 120})
    )
    lines = []
    for i, event in enumerate(events):
        data = json.loads(event.to_json())
        data["run"] = f"run{1 + i // 100}"
        data["at"] -= 120  # two minutes old, as status.json
        lines.append(json.dumps(data))
    (folder / "events.jsonl").write_text("".join(line + "\n" for line in lines))
    return folder


def gone_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_status_is_a_table_with_a_header_and_a_stale_pid_is_interrupted(tmp_path: Path) -> None:
    write_pair(tmp_path / "media")
    job = local_job(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "here.mp4").write_bytes(b"video")
    events = [ev.PhaseStarted("train", playbook="train.yml"), progress(21, 0.0412, 0.045)]
    made_state(tmp_path / "state", "here", job, "running", gone_pid(), events)
    result = invoke(["status", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = [[c.strip() for c in line.split("┃")[1:-1]] for line in lines if "┃" in line]
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in lines]
    rows = header + [r for r in rows if r]
    assert rows[0] == [
        "job", "target", "state", "phase", "iteration", "last loss", "cost", "age", "output"
    ]  # fmt: skip
    assert re.fullmatch(r"2m0\ds ago", rows[1][7]), rows[1]  # status.json is 2 minutes old
    assert rows[1][:7] + rows[1][8:] == [
        "here", "local", "interrupted", "train", "21/30", "A 0.0412 B 0.045", "-",
        f"{out}/here.mp4",
    ]  # fmt: skip
    assert faceswap_oci.jobs(tmp_path / "state")[0]["state"] == "interrupted"
    assert faceswap_oci.status("here", tmp_path / "state")["iteration"] == 21


def test_logs_is_readable_with_tail_and_phase(tmp_path: Path) -> None:
    write_pair(tmp_path / "media")
    job = local_job(tmp_path)
    events = [
        ev.PhaseStarted("setup", playbook="setup.yml"),
        ev.TaskStarted("setup", task="Install", action="pip"),
        ev.PhaseFinished(
            "setup", status=ev.PhaseStatus.SUCCESSFUL, changed=3, failed=0, duration_s=12.5
        ),
        ev.PhaseStarted("train", playbook="train.yml"),
        progress(21, 0.0412, 0.045),
        ev.JobFinished("-", status="successful", changed=3),
    ]
    made_state(tmp_path / "state", "here", job, "finished", os.getpid(), events)
    base = ["logs", "here", "--state-dir", str(tmp_path / "state")]
    every = invoke(base)
    assert every.exit_code == 0, every.output
    lines = every.stdout.splitlines()
    assert len(lines) == 5  # the task start is hidden by default
    assert lines[0].endswith(" run1 [setup] started")
    assert lines[1].endswith(" run1 [setup] successful in 12.5s")
    assert "progress iteration=21 target=30 loss_a=0.0412" in lines[3]
    tail = invoke([*base, "--tail", "2"])
    assert tail.stdout.splitlines() == lines[-2:]
    setup = invoke([*base, "--phase", "setup", "--tasks"])
    assert [line.split("] ", 1)[1] for line in setup.stdout.splitlines()] == [
        "started", "task Install", "successful in 12.5s"
    ]  # fmt: skip
    raw = invoke([*base, "--json", "--tail", "1"])
    assert json.loads(raw.stdout)["event"] == "JobFinished"
    assert [e["event"] for e in faceswap_oci.events("here", tmp_path / "state", tail=2)] == [
        "Progress", "JobFinished"
    ]  # fmt: skip


def test_logs_follow_ends_when_the_job_ends(tmp_path: Path) -> None:
    write_pair(tmp_path / "media")
    job = local_job(tmp_path)
    folder = made_state(
        tmp_path / "state", "here", job, "running", os.getpid(),
        [ev.PhaseStarted("train", playbook="train.yml")],
    )  # fmt: skip

    def finish() -> None:
        time.sleep(1.0)
        with (folder / "events.jsonl").open("a") as fh:
            fh.write(ev.JobFinished("-", status="successful", changed=0).to_json() + "\n")

    writer = threading.Thread(target=finish)
    writer.start()
    started = time.monotonic()
    result = invoke(["logs", "here", "-f", "--state-dir", str(tmp_path / "state")])
    writer.join()
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 10
    assert result.stdout.splitlines()[-1].endswith("[-] job successful, 0 changed")


# --- down NAME, stop, the lock --------------------------------------------------------------------


def test_down_takes_a_name_and_leaves_a_finished_job_finished(tmp_path: Path, xdg: Path) -> None:
    write_pair(tmp_path / "media")
    job = local_job(tmp_path)
    made_state(tmp_path / "state", "here", job, "finished", os.getpid(), [])
    result = invoke(["down", "here", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    assert "no training of this job was running; nothing to stop" in result.output
    status = json.loads((tmp_path / "state" / "here" / "status.json").read_text())
    assert status["state"] == "finished"
    missing = invoke(["down", "nojob", "--state-dir", str(tmp_path / "state")])
    assert missing.exit_code == 3
    assert "no job state here (spec.json missing)" in " ".join(missing.output.split())


def test_stop_is_for_ssh_and_local_and_says_down_on_oci(tmp_path: Path, double: Double) -> None:
    job = oci_job(tmp_path, double)
    result = invoke(["stop", str(job), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2
    assert "use `faceswap-oci down paid`" in " ".join(result.output.split())


def test_a_held_lock_names_its_holder_and_a_stale_one_is_taken_over(tmp_path: Path) -> None:
    write_pair(tmp_path / "media")
    job = local_job(tmp_path)
    state = made_state(tmp_path / "state", "here", job, "running", os.getpid(), [])
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom pathlib import Path\nfrom faceswap_oci.state import StateDir\n"
         "with StateDir(Path(sys.argv[1])).lock('run'):\n    print('held', flush=True)\n"
         "    time.sleep(60)\n", str(state)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        for command in ("stop", "down"):
            result = invoke([command, "here", "--state-dir", str(tmp_path / "state")])
            assert result.exit_code == 3, result.output
            flat = " ".join(result.output.split())
            assert f"job 'here' is locked by `run` (pid {holder.pid}, started 20" in flat
        result = invoke(["run", str(job), "--state-dir", str(tmp_path / "state")])
        assert result.exit_code == 3 and f"(pid {holder.pid}," in result.output
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its flock went with it, lock.json stays behind
    info = json.loads((state / "lock.json").read_text())
    assert info["pid"] == holder.pid
    with StateDir(state).lock("stop") as note:
        assert note is not None
        assert note.startswith(f"took over the lock of job 'here' from `run` (pid {holder.pid},")
        assert json.loads((state / "lock.json").read_text())["pid"] == os.getpid()
    assert not (state / "lock.json").exists()


# --- the job file ---------------------------------------------------------------------------------


def test_duplicate_keys_are_refused_with_their_lines(tmp_path: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text(
        "name: one\nconsent: x\ntarget:\n  kind: local\n  kind: ssh\ninputs: {a: a, b: b}\n"
    )
    result = invoke(["plan", str(job)])
    assert result.exit_code == 2
    assert "line 5, column 3: duplicate key 'kind' (first on line 4); keep one of them" in (
        result.output
    )


def test_every_spec_error_carries_its_line(tmp_path: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text(
        f"name: demo\nconsent: {spec.CONSENT_TEXT}\ntarget: {{kind: local}}\n"
        "inputs: {a: a.mp4, b: b.mp4}\ntrian: {}\ntrain:\n  stop:\n    iterations: -5\n"
    )
    with pytest.raises(faceswap_oci.SpecError) as info:
        spec.load_job(job)
    assert info.value.problems == [
        "line 8: train.stop.iterations: must be > 0 (got -5)",
        "line 5: `trian`: unknown field; did you mean `train`?",
    ]


def test_init_writes_the_schema_line_and_the_schema(tmp_path: Path) -> None:
    result = invoke(["init", str(tmp_path / "job.yml")])
    assert result.exit_code == 0, result.output
    first = (tmp_path / "job.yml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./faceswap-oci.schema.json"
    schema = json.loads((tmp_path / "faceswap-oci.schema.json").read_text())
    assert schema["title"] == "faceswap-oci job"


# --- CLI basics -----------------------------------------------------------------------------------


def test_version_h_and_completion() -> None:
    version = invoke(["--version"])
    assert version.exit_code == 0 and version.stdout == f"faceswap-oci {faceswap_oci.__version__}\n"
    short = invoke(["run", "-h"], env={"COLUMNS": "200"})
    assert short.exit_code == 0 and "--from" in short.output
    flat = " ".join(short.output.split())
    for phase in ("provision", "setup", "upload", "extract", "train", "convert", "fetch"):
        assert phase in flat  # the choices are listed
    top = " ".join(invoke(["-h"]).output.split())
    for code in ("1 declined", "2 usage error", "3 bad state", "4 a phase failed",
                 "5 teardown did not finish", "130 interrupted"):  # fmt: skip
        assert code in top
    # Without typer's test switch, `--show-completion` is a flag that detects the calling shell
    # (shellingham), ignores "bash" and fails under a parent that is no shell (a pytest worker).
    completion = subprocess.run(
        [str(Path(sys.executable).parent / "faceswap-oci"), "--show-completion", "bash"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )  # fmt: skip
    assert completion.returncode == 0, completion.stderr
    assert "_FACESWAP_OCI_COMPLETE" in completion.stdout


def test_help_text_has_no_hard_line_breaks() -> None:
    for command in cli.app.registered_commands:
        text = command.help or (command.callback.__doc__ if command.callback else "") or ""
        assert "\n" not in text.strip(), command.name


def test_an_unknown_phase_is_a_usage_error_exit_2(tmp_path: Path) -> None:
    write_pair(tmp_path / "media")
    job = local_job(tmp_path)
    for args in (["run", str(job), "--only", "deploy"], ["plan", str(job), "--from", "nope"]):
        result = invoke(args)
        assert result.exit_code == 2
        assert "Invalid value for '--" in result.output
        assert f"{args[-1]!r} is not one of" in " ".join(result.output.split())


def test_the_api_exports() -> None:
    for name in ("status", "jobs", "events", "sweep", "check", "stop", "plan", "down"):
        assert name in faceswap_oci.__all__ and callable(getattr(faceswap_oci, name))


def test_logs_train_prints_faceswaps_own_log_from_the_host(tmp_path: Path, xdg: Path) -> None:
    """The local target's host is this machine: the log is the supervisor's `-F` file in the
    job's folder under the data dir (what `tail` on an ssh host reads the same way)."""
    write_pair(tmp_path / "media")
    job = local_job(tmp_path)
    made_state(tmp_path / "state", "here", job, "finished", os.getpid(), [])
    base = ["logs", "here", "--train", "--state-dir", str(tmp_path / "state")]
    missing = invoke(base)
    assert missing.exit_code == 3
    assert "job 'here' has no training log yet" in " ".join(missing.output.split())
    log = xdg / "data" / "faceswap-oci" / "jobs" / "here" / "logs" / "train.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"12/01/2026 10:00:{i:02d} INFO     line {i}\n" for i in range(5)))
    tail = invoke([*base, "--tail", "2"])
    assert tail.exit_code == 0, tail.output
    assert tail.stdout.splitlines() == [
        "12/01/2026 10:00:03 INFO     line 3",
        "12/01/2026 10:00:04 INFO     line 4",
    ]
    started = time.monotonic()
    followed = invoke([*base, "-f", "--tail", "1"])  # the job is not running: it ends
    assert followed.exit_code == 0 and followed.stdout.endswith("line 4\n")
    assert time.monotonic() - started < 10


def test_status_refresh_asks_oci_about_the_instance(tmp_path: Path, double: Double) -> None:
    job = oci_job(tmp_path, double)
    folder = made_state(tmp_path / "state", "paid", job, "finished", os.getpid(), [])
    gone = "ocid1.instance.oc1.eu-frankfurt-1.aaaaaaaanotthereanymore"
    (folder / "target.json").write_text(json.dumps({"host": "203.0.113.9", "instance_id": gone}))
    calls = double.state.calls["GetInstance"]
    result = invoke(["status", "--refresh", "--json", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["instance"] == "gone (not found)"
    assert double.state.calls["GetInstance"] == calls + 1


def test_check_with_a_session_token_profile(tmp_path: Path, double: Double) -> None:
    """auth security_token (`oci session authenticate`): the SecurityTokenSigner the modules
    build, accepted by the double as the service accepts it ("ST$<token>" key id)."""
    from types import SimpleNamespace

    from tests.oci.test_real_service import _session_profile

    config = _session_profile(
        SimpleNamespace(state=double.state, cfg=SimpleNamespace(region=REGION)),  # type: ignore[arg-type]
        tmp_path,
    )
    job = oci_job(tmp_path, double, config_file=str(config), profile="SESSION",
                  auth="security_token", shapes=["VM.GPU.A10.1"])  # fmt: skip
    result = invoke(["check", str(job), "--state-dir", str(tmp_path / "state")])
    lines = check_lines(result)
    assert lines["oci config"] == "ok auth security_token, signer built"
    assert lines["compartment"].startswith("ok faceswap-oci-tests (ACTIVE)")
    assert lines["limit VM.GPU.A10.1"].startswith("ok gpu-a10-count")
