"""A table of bad inputs, tried as a careful user and as an attacker would: each one is refused
with exit 2 (3 for damaged state), names its field or file, prints no traceback, writes
nothing and starts no process (issue #13)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from faceswap_oci import cli
from tests.media import write_pair
from tests.unit.test_spec import minimal as base

Build = Callable[[Path], tuple[list[str], int, str]]
"""Makes the case's files in a folder; returns (CLI arguments, exit code, text the output
must hold; ``{dir}`` is the folder)."""

PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def ssh(**fields: Any) -> dict[str, Any]:
    return {"kind": "ssh", "ssh": {"host": "gpu-1.example.com", **fields}}


def oci(**fields: Any) -> dict[str, Any]:
    section = {
        "compartment": "ocid1.compartment.oc1..aaaaaaaatest",
        "region": "eu-frankfurt-1",
        **fields,
    }
    return {"kind": "oci", "oci": section}


def spec_case(changes: dict[str, Any], says: str, *, command: str = "plan", code: int = 2) -> Build:
    """A job file with ``changes`` (dotted paths; None deletes) over a good local job."""

    def build(tmp: Path) -> tuple[list[str], int, str]:
        data = base()
        for path, value in changes.items():
            *parents, last = path.split(".")
            node = data
            for key in parents:
                node = node.setdefault(key, {})
            if value is None:
                node.pop(last, None)
            else:
                node[last] = made(value, tmp)
        job = tmp / "job.yml"
        job.write_text(yaml.safe_dump(data))
        return [command, str(job), "--state-dir", str(tmp / "state")], code, says

    return build


def made(value: Any, tmp: Path) -> Any:
    """``value`` with every function in it replaced by what it makes in ``tmp``."""
    if callable(value):
        return value(tmp)
    if isinstance(value, dict):
        return {k: made(v, tmp) for k, v in value.items()}
    return value


def raw_case(content: bytes | Callable[[Path], None], says: str) -> Build:
    """A job file of these bytes (or made by a function at ``<dir>/job.yml``)."""

    def build(tmp: Path) -> tuple[list[str], int, str]:
        job = tmp / "job.yml"
        if callable(content):
            content(job)
        else:
            job.write_bytes(content)
        return ["plan", str(job), "--state-dir", str(tmp / "state")], 2, says

    return build


def file_at(name: str, data: bytes = b"", mode: int = 0o644) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        return str(path)

    return make


def folder_at(name: str) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        (tmp / name).mkdir(parents=True, exist_ok=True)
        return str(tmp / name)

    return make


def link_to_a(tmp: Path) -> str:
    (tmp / "same.mp4").symlink_to(tmp / "a.mp4")
    return "same.mp4"


def state_case(setup: Callable[[Path], list[str]], code: int, says: str) -> Build:
    def build(tmp: Path) -> tuple[list[str], int, str]:
        return setup(tmp), code, says

    return build


def job_state(tmp: Path, name: str = "old", files: dict[str, str] | None = None) -> Path:
    folder = tmp / "state" / name
    (folder / "stamps").mkdir(parents=True)
    (folder / "spec.json").write_text('{"source": "job.yml", "spec": {}}')
    (folder / "status.json").write_text('{"state": "finished", "phase": "fetch", "pid": 1}')
    for rel, text in (files or {}).items():
        (folder / rel).write_text(text)
    return folder


def nested(depth: int) -> bytes:
    return b"name: x\ntrain:\n  config: " + b"[" * depth + b"]" * depth + b"\n"


ALIAS_BOMB = b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + b"".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n".encode()
    for i in range(8)
)

CASES: dict[str, Build] = {
    # shape and types
    "unknown field": spec_case({"trian": {}}, "`trian`: unknown field; did you mean `train`?"),
    "unknown nested field": spec_case({"train.batchsize": 8}, "`train.batchsize`"),
    "batch_size text": spec_case({"train.batch_size": "sixteen"}, "train.batch_size"),
    "batch_size true": spec_case(
        {"train.batch_size": True}, "train.batch_size: input should be a valid integer (got True)"
    ),
    "batch_size float": spec_case({"train.batch_size": 1.5}, "train.batch_size"),
    "iterations negative": spec_case({"train.stop.iterations": -5}, "train.stop.iterations"),
    "iterations zero": spec_case({"train.stop.iterations": 0}, "train.stop.iterations"),
    "hours inf, no iteration limit": spec_case(
        {"train.stop": {"iterations": None, "hours": float("inf")}},
        "train.stop.hours: input should be a finite number",
    ),
    "hours nan": spec_case({"train.stop.hours": float("nan")}, "train.stop.hours"),
    "hours true": spec_case({"train.stop.hours": True}, "train.stop.hours"),
    "stop never ends": spec_case(
        {"train.stop": {"iterations": None, "hours": None}}, "training would never end"
    ),
    "save_every false": spec_case({"train.save_every": False}, "train.save_every"),
    "train.config not a mapping": spec_case({"train.config": 5}, "train.config"),
    "missing consent": spec_case({"consent": None}, "consent: required field is missing"),
    "wrong consent": spec_case({"consent": "sure"}, "consent: must be the attestation"),
    "missing inputs": spec_case({"inputs": None}, "inputs: required field is missing"),
    "bad target kind": spec_case({"target.kind": "aws"}, "target.kind"),
    "bad teardown": spec_case({"teardown": "sometimes"}, "teardown"),
    "bad job name": spec_case({"name": "My Job"}, "name: 'My Job' is not a valid job name"),
    "job name with ../": spec_case({"name": "../etc"}, "is not a valid job name"),
    "huge job name": spec_case({"name": "x" * 300_000}, "(300000 characters in all)"),
    "face size": spec_case({"extract.size": 64}, "extract.size: must be >= 256 (got 64)"),
    "bad detector": spec_case({"extract.detector": "dlib"}, "extract.detector"),
    "file aligner alone": spec_case({"extract.aligner": "file"}, "extract.aligner 'file'"),
    "audio without ffmpeg": spec_case({"convert.writer": "gif"}, "convert.keep_audio"),
    # what the convert role refuses, `plan` refuses (the spec and the role agree on every value)
    **{
        f"{writer} writer without audio": spec_case(
            {"convert.writer": writer, "convert.keep_audio": False},
            f"convert.writer: '{writer}' writes frames or a GIF, not the tagged video",
        )
        for writer in ("gif", "opencv", "patch", "pillow")
    },
    "face size over Faceswap's": spec_case(
        {"extract.size": 2048}, "extract.size: must be <= 1024 (got 2048)"
    ),
    "fewer faces than training needs": spec_case(
        {"extract.min_faces": 10}, "extract.min_faces: must be >= 25 (got 10)"
    ),
    # ssh target: hosts, users, keys
    "ssh without section": spec_case({"target": {"kind": "ssh"}}, "target.ssh is required"),
    "ssh port out of range": spec_case({"target": ssh(port=70000)}, "target.ssh.port"),
    "ssh port true": spec_case({"target": ssh(port=True)}, "target.ssh.port"),
    "ssh host option": spec_case(
        {"target": ssh(host="-oProxyCommand=touch /tmp/pwned")},
        "target.ssh.host: '-oProxyCommand=touch /tmp/pwned' is not a host name or IP address",
    ),
    "ssh host $()": spec_case({"target": ssh(host="$(touch x)")}, "target.ssh.host"),
    "ssh host ;": spec_case({"target": ssh(host="a;touch x")}, "target.ssh.host"),
    "ssh host backticks": spec_case({"target": ssh(host="`id`")}, "target.ssh.host"),
    "ssh host space": spec_case({"target": ssh(host="a b")}, "target.ssh.host"),
    "ssh host user@": spec_case({"target": ssh(host="root@h")}, "target.ssh.host"),
    "ssh user option": spec_case(
        {"target": ssh(user="-oProxyCommand=x")}, "target.ssh.user: '-oProxyCommand=x'"
    ),
    "ssh user $()": spec_case({"target": ssh(user="$(id)")}, "target.ssh.user"),
    "ssh user ;": spec_case({"target": ssh(user="root;id")}, "target.ssh.user"),
    "ssh key missing": spec_case({"target": ssh(key="nokey")}, "target.ssh.key: file not found"),
    "ssh key is the public key": spec_case(
        {"target": ssh(key=file_at("id.pub", b"ssh-ed25519 AAAAC3Nza me@host\n", 0o600))},
        "is a public key; give the private key",
    ),
    "ssh key readable by others": spec_case(
        {"target": ssh(key=file_at("id", PRIVATE_KEY.encode(), 0o644))},
        "has mode 0644, readable by others (ssh refuses it); run: chmod 600",
    ),
    "ssh key not a key": spec_case(
        {"target": ssh(key=file_at("notes.txt", b"hello\n", 0o600))}, "is not an SSH private key"
    ),
    "ssh key a folder": spec_case({"target": ssh(key=folder_at("keys"))}, "target.ssh.key"),
    # oci target
    "oci without section": spec_case({"target": {"kind": "oci"}}, "target.oci is required"),
    "oci bad compartment": spec_case(
        {"target": oci(compartment="abc")}, "target.oci.compartment: 'abc' is not a valid OCID"
    ),
    "oci CIDR out of range": spec_case(
        {"target": oci(ssh_ingress_cidr="999.999.999.999/99")}, "target.oci.ssh_ingress_cidr"
    ),
    "oci CIDR host bits": spec_case(
        {"target": oci(ssh_ingress_cidr="10.0.0.1/24")}, "is not a valid CIDR"
    ),
    "oci CIDR whole internet": spec_case(
        {"target": oci(ssh_ingress_cidr="0.0.0.0/0")}, "allow_any_ssh_source: true"
    ),
    "oci endpoint not a url": spec_case(
        {"target": oci(service_endpoint="not a url")},
        "target.oci.service_endpoint: 'not a url' is not a URL",
    ),
    "oci endpoint ftp": spec_case(
        {"target": oci(service_endpoint="ftp://x")}, "target.oci.service_endpoint"
    ),
    "oci ssh_user option": spec_case({"target": oci(ssh_user="-x")}, "target.oci.ssh_user"),
    "oci max_hours inf": spec_case({"target": oci(max_hours=float("inf"))}, "max_hours"),
    "oci boot volume true": spec_case({"target": oci(boot_volume_gb=True)}, "boot_volume_gb"),
    "oci no shapes": spec_case({"target": oci(shapes=[])}, "target.oci.shapes"),
    # output
    "output is a file": spec_case({"output": file_at("out.txt", b"x")}, "is a file, not a folder"),
    "output under a file": spec_case(
        {"output": lambda t: file_at("f", b"x")(t) + "/sub"}, "lies under the file"
    ),
    "output is /": spec_case({"output": "/"}, "output: '/' (resolved to /) is a system path"),
    "output in /proc": spec_case({"output": "/proc/self/out"}, "is a system path"),
    "output in /etc": spec_case({"output": "/etc/faceswap"}, "is a system path"),
    # inputs
    "input an empty folder": spec_case({"inputs.a": folder_at("frames")}, "is an empty folder"),
    "input a text file named .mp4": spec_case(
        {"inputs.a": file_at("notes.mp4", b"just text\n")}, "is not a video ffprobe can read"
    ),
    "input /etc/passwd": spec_case({"inputs.b": "/etc/passwd"}, "inputs.b: '/etc/passwd'"),
    "input /dev/zero": spec_case({"inputs.a": "/dev/zero"}, "is not a regular file"),
    "input empty": spec_case({"inputs.b": file_at("empty.mp4")}, "inputs.b: file is empty"),
    "A is B": spec_case({"inputs.b": "a.mp4"}, "inputs.b: the same file as inputs.a"),
    "A is B through a link": spec_case({"inputs.b": link_to_a}, "the same file as inputs.a"),
    "run with an input missing": spec_case(
        {"inputs.a": "gone.mp4"}, "inputs.a: file not found: 'gone.mp4'", command="run"
    ),
    # the job file itself
    "latin-1 byte in a comment": raw_case(
        b"# caf\xe9\nname: x\n", "byte 5 (line 1): not UTF-8 (b'\\xe9'); save the file as UTF-8"
    ),
    "UTF-16 with BOM": raw_case("name: x\n".encode("utf-16"), "UTF-16"),
    "binary": raw_case(b"\x7fELF\x02\x01\x01\x00\x00", "a NUL byte; this is a binary file"),
    "10000 levels of nesting": raw_case(nested(10_000), "nested deeper than 32 levels"),
    "symlink to /dev/zero": raw_case(lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
    "over 1 MB": raw_case(b"name: x\n" + b"#" * (1 << 20), "larger than 1 MB"),
    "alias bomb": raw_case(ALIAS_BOMB, "YAML aliases (*a) are not allowed in a job file"),
    "YAML syntax error": raw_case(b"name: x\ntarget: {kind: local\n", "not valid YAML"),
    "a list, not a mapping": raw_case(b"- name: x\n", "must hold a mapping"),
    "empty file": raw_case(b"", "must hold a mapping"),
    "job file missing": state_case(
        lambda t: ["plan", str(t / "nope.yml")], 2, "job file not found"
    ),
    "job file a folder": state_case(lambda t: ["plan", str(t)], 2, "not a regular file"),
    # command line and state
    "--state-dir a file": state_case(
        lambda t: ["status", "--state-dir", file_at("st", b"x")(t)], 3, "is a file, not a folder"
    ),
    "--state-dir under a file": state_case(
        lambda t: ["status", "--state-dir", file_at("st", b"x")(t) + "/jobs"], 3, "is a file"
    ),
    "--state-dir another job's folder": state_case(
        lambda t: ["status", "--state-dir", str(job_state(t))], 3, "is the state folder of job"
    ),
    "init into a missing folder": state_case(
        lambda t: ["init", str(t / "no" / "job.yml")], 2, "create {dir}/no first"
    ),
    "demo-inputs --frames 0": state_case(
        lambda t: ["demo-inputs", str(t / "demo"), "--frames", "0"], 2, "--frames"
    ),
    "status ../": state_case(
        lambda t: ["status", "../../etc", "--state-dir", str(t / "state")],
        2,
        "job name '../../etc' is not valid",
    ),
    "logs ../": state_case(
        lambda t: ["logs", "../x", "--state-dir", str(t / "state")], 2, "is not valid"
    ),
    "status of an absolute path": state_case(
        lambda t: ["status", "/etc", "--state-dir", str(t / "state")], 2, "is not valid"
    ),
    "damaged status.json": state_case(
        lambda t: [
            "status",
            "--state-dir",
            str(job_state(t, files={"status.json": "{oops"}).parent),
        ],
        3,
        "status.json: damaged state file",
    ),
    "damaged stamp": state_case(
        lambda t: [
            "status",
            "old",
            "--state-dir",
            str(job_state(t, files={"stamps/setup.json": "[1,"}).parent),
        ],
        3,
        "setup.json: damaged state file",
    ),
    "damaged spec.json": state_case(
        lambda t: [
            "status",
            "old",
            "--state-dir",
            str(job_state(t, files={"spec.json": "\xff"}).parent),
        ],
        3,
        "spec.json: damaged state file",
    ),
    "damaged events.jsonl": state_case(
        lambda t: [
            "logs",
            "old",
            "--state-dir",
            str(job_state(t, files={"events.jsonl": '{"event": "A"}\n{bad\n'}).parent),
        ],
        3,
        "events.jsonl: line 2 is damaged",
    ),
    "OCI state folder with a double quote": state_case(
        lambda t: [
            *spec_case({"target": oci()}, "")(t)[0][:2],
            "--state-dir",
            str(t / 'st"ate'),
        ],
        3,
        "an OCI job's state folder must not hold a double quote",
    ),
    "--from provision on ssh": spec_case(
        {"target": ssh()}, "--from provision: the provision phase does not apply"
    ),
    "--only teardown on local": spec_case({}, "--only teardown: the teardown phase"),
    "--from an unknown phase": spec_case(
        {}, "Invalid value for '--from': Value error, 'deploy' is not one of 'provision'"
    ),
}
PHASE_ARGS = {
    "--from provision on ssh": ["--from", "provision"],
    "--only teardown on local": ["--only", "teardown"],
    "--from an unknown phase": ["--from", "deploy"],
}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        found[str(path)] = (st.st_size, st.st_mtime_ns)
    return found


def children() -> set[str]:
    found: set[str] = set()
    for task in Path("/proc/self/task").iterdir():
        found.update((task / "children").read_text().split())
    return found


def test_the_table_is_long_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_cleanly(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_ansible(**kwargs: Any) -> None:
        raise AssertionError("a bad input reached ansible-runner")

    monkeypatch.setattr("ansible_runner.interface.init_runner", no_ansible)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.chdir(tmp_path)
    write_pair(tmp_path)
    args, code, says = CASES[case](tmp_path)
    if case in PHASE_ARGS:
        args = ["run", *args[1:], *PHASE_ARGS[case]]
    before, procs = snapshot(tmp_path), children()
    started = time.monotonic()
    result = CliRunner().invoke(cli.app, args)
    took = time.monotonic() - started
    output = result.output
    assert result.exit_code == code, output[-3000:]
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    assert " ".join(says.format(dir=tmp_path).split()) in " ".join(output.split()), output
    assert len(output) < 4000, f"{len(output)} characters of output"
    assert snapshot(tmp_path) == before, "the refused command wrote files"
    assert children() <= procs, "a process of the refused command is still running"
    assert took < 10, took


def test_alias_bomb_is_answered_in_under_2_s(tmp_path: Path) -> None:
    (tmp_path / "job.yml").write_bytes(ALIAS_BOMB)
    started = time.monotonic()
    result = CliRunner().invoke(cli.app, ["plan", str(tmp_path / "job.yml")])
    assert time.monotonic() - started < 2
    assert result.exit_code == 2
    assert len(result.output) < 1000


def table_rows(output: str) -> list[list[str]]:
    """The body rows of the rich table `status` prints (job, target, state, ...)."""
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in output.splitlines()]
    return [r for r in rows if r and r[0] and r[0] != "job"]


def test_status_lists_the_other_jobs_when_one_is_damaged(tmp_path: Path) -> None:
    job_state(tmp_path, "good")
    job_state(tmp_path, "broken", files={"status.json": "\x00garbage"})
    job_state(tmp_path, "zlast")
    result = CliRunner().invoke(cli.app, ["status", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 3
    lines = [[row[0], row[2]] for row in table_rows(result.output)]
    assert ["good", "finished"] in lines and ["zlast", "finished"] in lines
    assert ["broken", "damaged"] in lines
    assert f"{tmp_path}/state/broken/status.json: damaged state file" in result.output


def test_a_running_job_whose_process_is_gone_shows_as_interrupted(tmp_path: Path) -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # now a pid that no process has
    folder = job_state(tmp_path, "lost")
    (folder / "status.json").write_text(f'{{"state": "running", "phase": "train", "pid": {pid}}}')
    (folder.parent / "live").mkdir()
    live = job_state(tmp_path, "live2")
    (live / "status.json").write_text(
        f'{{"state": "running", "phase": "train", "pid": {os.getpid()}}}'
    )
    result = CliRunner().invoke(cli.app, ["status", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    rows = {row[0]: row[2] for row in table_rows(result.output)}
    assert rows == {"live2": "running", "lost": "interrupted"}
    detail = CliRunner().invoke(cli.app, ["status", "lost", "--state-dir", str(tmp_path / "state")])
    assert [r[:4] for r in table_rows(detail.output)] == [["lost", "?", "interrupted", "train"]]
    assert f"process {pid} is gone" in detail.output


def test_logs_prints_complete_lines_only(tmp_path: Path) -> None:
    job_state(tmp_path, "old", files={"events.jsonl": '{"event": "A"}\n{"event": "B"}\n{"ev'})
    result = CliRunner().invoke(
        cli.app, ["logs", "old", "--json", "--state-dir", str(tmp_path / "state")]
    )
    assert result.exit_code == 0, result.output
    assert result.output == '{"event": "A"}\n{"event": "B"}\n'
