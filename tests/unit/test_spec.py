"""Job spec validation: every bad spec is refused with a message naming the field."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from faceswap_oci import cli, spec
from faceswap_oci.errors import SpecError
from tests.media import write_pair

CONSENT = spec.CONSENT_TEXT


@pytest.fixture
def media(tmp_path: Path) -> Path:
    write_pair(tmp_path)
    return tmp_path


def checked(data: dict[str, Any], base_dir: Path) -> spec.Job:
    """validate, then what `run` checks before anything runs."""
    job = spec.validate(data, base_dir=base_dir)
    spec.preflight(job)
    return job


def minimal() -> dict[str, Any]:
    return {
        "name": "demo",
        "consent": CONSENT,
        "target": {"kind": "local"},
        "inputs": {"a": "a.mp4", "b": "b.mp4"},
    }


def with_(path: str, value: Any) -> dict[str, Any]:
    data = minimal()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()

BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown top key", with_("trian", {}), "`trian`: unknown field; did you mean `train`?"),
    (
        "unknown nested key",
        with_("train.batchsize", 8),
        "`train.batchsize`: unknown field; did you mean `batch_size`?",
    ),
    (
        "wrong type",
        with_("train.batch_size", "sixteen"),
        "train.batch_size: input should be a valid integer (got 'sixteen')",
    ),
    (
        "negative iterations",
        with_("train.stop.iterations", -5),
        "train.stop.iterations: must be > 0 (got -5)",
    ),
    ("missing consent", with_("consent", _DELETE), "consent: required field is missing"),
    (
        "wrong consent",
        with_("consent", "yes, fine"),
        f"consent: must be the attestation {CONSENT!r} word for word (see docs/job-spec.md, "
        "section Consent)",
    ),
    (
        "bad target kind",
        with_("target.kind", "aws"),
        "target.kind: must be one of 'local', 'ssh' or 'oci' (got 'aws')",
    ),
    (
        "ssh target without host",
        with_("target", {"kind": "ssh"}),
        "target.ssh is required when target.kind is 'ssh'; add target.ssh.host",
    ),
    (
        "ssh port out of range",
        with_("target", {"kind": "ssh", "ssh": {"host": "h", "port": 70000}}),
        "target.ssh.port: must be <= 65535 (got 70000)",
    ),
    (
        "oci target without section",
        with_("target", {"kind": "oci"}),
        "target.oci is required when target.kind is 'oci'; add target.oci.compartment and "
        "target.oci.region",
    ),
    (
        "bad compartment OCID",
        with_("target", {"kind": "oci", "oci": {"compartment": "abc", "region": "eu-x-1"}}),
        "target.oci.compartment: 'abc' is not a valid OCID: it looks like "
        "ocid1.<type>.oc1..<id>; copy it from the console",
    ),
    (
        "bad job name",
        with_("name", "My Job"),
        "name: 'My Job' is not a valid job name: use 1-40 of a-z, 0-9 and '-', not starting or "
        "ending in '-'",
    ),
    (
        "stop never ends",
        with_("train.stop", {"iterations": None, "hours": None}),
        "train.stop needs at least one of iterations, hours or plateau_saves; training would "
        "never end",
    ),
    (
        "audio without ffmpeg",
        with_("convert.writer", "gif"),
        "convert.writer: 'gif' writes frames or a GIF, not the tagged video with the A audio "
        "(convert.keep_audio) that the convert phase delivers; set convert.writer: ffmpeg "
        "(convert.keep_audio: false drops the audio)",
    ),
    (
        # before, this passed the spec and the convert role refused it after the training
        "gif without audio",
        {**with_("convert.writer", "gif"), "convert": {"writer": "gif", "keep_audio": False}},
        "convert.writer: 'gif' writes frames or a GIF, not the tagged video with the A audio "
        "(convert.keep_audio) that the convert phase delivers; set convert.writer: ffmpeg "
        "(convert.keep_audio: false drops the audio)",
    ),
    (
        "face size out of range",
        with_("extract.size", 64),
        "extract.size: must be >= 256 (got 64)",
    ),
    (
        "bad detector",
        with_("extract.detector", "dlib"),
        "extract.detector: must be one of 'cv2-dnn', 'mtcnn', 'retinaface', 's3fd' or 'file' "
        "(got 'dlib')",
    ),
]


@pytest.mark.parametrize(("case", "data", "message"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_names_the_field(
    media: Path, case: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as info:
        checked(copy.deepcopy(data), base_dir=media)
    assert message.format(dir=media) in info.value.problems


@pytest.mark.parametrize(("case", "data", "message"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_cli_refuses_bad_spec_with_exit_2_before_ansible(
    media: Path, monkeypatch: pytest.MonkeyPatch, case: str, data: dict[str, Any], message: str
) -> None:
    def no_ansible(**kwargs: Any) -> None:
        raise AssertionError("a bad spec reached ansible-runner")

    monkeypatch.setattr("ansible_runner.interface.init_runner", no_ansible)
    job_file = media / "job.yml"
    job_file.write_text(yaml.safe_dump(data))
    for command in (["plan"], ["run"]):
        result = CliRunner().invoke(
            cli.app, [*command, str(job_file), "--state-dir", str(media / "state")]
        )
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        flat = " ".join(result.output.split())
        assert " ".join(message.format(dir=media).split()) in flat


def test_unreadable_input_is_refused(media: Path) -> None:
    (media / "a.mp4").chmod(0)
    expected = [f"inputs.a: file not readable: 'a.mp4' (resolved to {media}/a.mp4); fix its mode"]
    if os.geteuid() != 0:
        with pytest.raises(SpecError) as info:
            checked(minimal(), base_dir=media)
        assert info.value.problems == expected
        return
    # Root reads every file through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: check in a child
    # that has neither (dropped from its bounding and inheritable sets; access(2) then applies
    # the file's mode to uid 0 as to anyone).
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from faceswap_oci import spec\n"
        "from faceswap_oci.errors import SpecError\n"
        "try:\n"
        f"    job = spec.validate(json.loads(sys.argv[1]), base_dir=Path({str(media)!r}))\n"
        "    spec.preflight(job)\n"
        "except SpecError as exc:\n"
        "    print(json.dumps(exc.problems))\n"
    )
    drop = "-dac_override,-dac_read_search"
    proc = subprocess.run(
        [
            "setpriv",
            f"--inh-caps={drop}",
            f"--bounding-set={drop}",
            sys.executable,
            "-c",
            code,
            json.dumps(minimal()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(proc.stdout) == expected


def test_empty_input_is_refused(media: Path) -> None:
    (media / "b.mp4").write_bytes(b"")
    with pytest.raises(SpecError) as info:
        checked(minimal(), base_dir=media)
    assert info.value.problems == [f"inputs.b: file is empty: 'b.mp4' (resolved to {media}/b.mp4)"]


def test_missing_input_warns_in_plan_and_fails_run(
    media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ansible_runner.interface.init_runner", None)  # calling it fails
    job_file = media / "job.yml"
    job_file.write_text(yaml.safe_dump(with_("inputs.a", "nope.mp4")))
    message = f"inputs.a: file not found: 'nope.mp4' (resolved to {media}/nope.mp4)"
    state = ["--state-dir", str(media / "state")]
    planned = CliRunner().invoke(cli.app, ["plan", str(job_file), *state])
    assert planned.exit_code == 0, planned.output
    assert f"warning: {message}" in " ".join(planned.output.split())
    ran = CliRunner().invoke(cli.app, ["run", str(job_file), *state])
    assert ran.exit_code == 2, ran.output
    assert message in " ".join(ran.output.split())
    assert not (media / "state" / "demo" / "runner").exists()


def test_every_problem_is_listed_at_once(media: Path) -> None:
    data = with_("trian", {})
    data["train"] = {"stop": {"iterations": 0}}
    data["target"] = {"kind": "ssh"}
    with pytest.raises(SpecError) as info:
        spec.validate(data, base_dir=media)
    assert len(info.value.problems) == 3


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    job_file = tmp_path / "job.yml"
    job_file.write_text("name: demo\ntarget: {kind: local\n")
    with pytest.raises(SpecError) as info:
        spec.load_job(job_file)
    assert info.value.problems[0].startswith("line 3, column 1: not valid YAML")


def test_missing_job_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        spec.load_job(tmp_path / "nope.yml")
    assert info.value.problems == [f"job file not found (resolved to {tmp_path}/nope.yml)"]


def test_defaults_fill_everything_but_the_essentials(media: Path) -> None:
    job = spec.validate(minimal(), base_dir=media)
    assert job.spec.train.trainer == "original"
    assert job.spec.train.stop.iterations == 100_000
    assert job.spec.faceswap.ref == spec.DEFAULT_FACESWAP_REF
    assert job.spec.teardown == "always"
    assert job.input_a == media / "a.mp4"
    assert job.output_dir == media / "output"
    extravars = job.extravars_spec()
    assert extravars["inputs"] == {"a": str(media / "a.mp4"), "b": str(media / "b.mp4")}
    json.dumps(extravars)  # plain JSON types only


def test_consent_ignores_whitespace_and_case(media: Path) -> None:
    data = with_("consent", "  " + CONSENT.upper().replace(" ", "\n  "))
    assert spec.validate(data, base_dir=media).spec.consent


def test_schema_command_prints_json_schema() -> None:
    result = CliRunner().invoke(cli.app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert set(schema["required"]) == {"name", "consent", "target", "inputs"}
    assert schema["additionalProperties"] is False


def test_init_writes_an_example_that_validates_once_inputs_exist(tmp_path: Path) -> None:
    target = tmp_path / "job.yml"
    result = CliRunner().invoke(cli.app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(target.read_text())
    (tmp_path / "media").mkdir()
    write_pair(tmp_path / "media")
    job = spec.validate(data, base_dir=tmp_path)
    assert job.spec.target.kind == "oci"
    again = CliRunner().invoke(cli.app, ["init", str(target)])
    assert again.exit_code == 2


def test_demo_inputs_are_made_on_first_use(tmp_path: Path) -> None:
    data = minimal()
    data["inputs"] = {"a": "demo/a.mp4", "b": "demo/b.mp4", "demo": True}
    job = spec.validate(data, base_dir=tmp_path)
    assert job.input_a.stat().st_size > 0
    assert (tmp_path / "demo" / "a_alignments.json").is_file()
    assert (tmp_path / "demo" / "b_alignments.json").is_file()
    assert "demo" not in job.extravars_spec()["inputs"]


def test_demo_inputs_need_the_demo_file_names(tmp_path: Path) -> None:
    data = minimal()
    data["inputs"] = {"a": "x/one.mp4", "b": "x/two.mp4", "demo": True}
    with pytest.raises(SpecError) as info:
        spec.validate(data, base_dir=tmp_path)
    assert info.value.problems[0] == (
        "inputs.demo: the demo clips are written as <folder>/a.mp4 and <folder>/b.mp4; "
        "set inputs.a and inputs.b so (got 'x/one.mp4' and 'x/two.mp4')"
    )
