"""`preview`, `notify-test` and the PreviewUpdated event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from faceswap_oci import cli
from faceswap_oci import events as ev
from tests.notify.test_notify import PNG, Receiver, closed_port, local_spec

# recorded from the train phase of a real demo run (ansible-runner 2.4, ansible-core 2.19)
RECORDED = Path(__file__).parent / "fixtures" / "preview_updated.json"


def test_the_preview_report_becomes_a_preview_updated_event() -> None:
    raw = json.loads(RECORDED.read_text())
    kinds = [type(e) for e in ev.from_runner("train", raw)]
    assert kinds == [ev.TaskDone, ev.PreviewUpdated]
    event = ev.from_runner("train", raw)[1]
    assert isinstance(event, ev.PreviewUpdated)
    assert event.path.endswith("/preview.png") and event.iteration == 30
    assert json.loads(event.to_json())["event"] == "PreviewUpdated"


def make_state(tmp_path: Path, notify: list[str]) -> Path:
    spec = local_spec(tmp_path, "watched", notify)
    job_file = tmp_path / "job.yml"
    job_file.write_text(yaml.safe_dump(spec))
    state = tmp_path / "state" / "watched"
    state.mkdir(parents=True)
    saved = {"source": str(job_file), "spec": {**spec, "notify": ["json://…"] * len(notify)}}
    (state / "spec.json").write_text(json.dumps(saved))
    return state


def test_preview_prints_the_path_or_says_there_is_none(tmp_path: Path) -> None:
    state = make_state(tmp_path, [])
    args = ["preview", "watched", "--state-dir", str(tmp_path / "state")]
    missing = CliRunner().invoke(cli.app, args)
    assert missing.exit_code == 3
    (state / "preview.png").write_bytes(PNG)
    found = CliRunner().invoke(cli.app, args)
    assert found.exit_code == 0
    assert found.stdout.strip() == str(state / "preview.png")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


def test_notify_test_reports_each_url_by_its_scheme_only(
    tmp_path: Path, receiver: Receiver
) -> None:
    urls = [receiver.url("s3cret"), f"json://127.0.0.1:{closed_port()}/t0ken"]
    make_state(tmp_path, urls)
    result = CliRunner().invoke(
        cli.app, ["notify-test", "watched", "--state-dir", str(tmp_path / "state")]
    )
    assert result.exit_code == 4  # one URL could not be reached
    assert result.stdout.splitlines() == [
        "notify[0] json://…: sent",
        "notify[1] json://…: FAILED",
    ]
    assert "s3cret" not in result.output and "t0ken" not in result.output
    assert receiver.titles() == ["faceswap-oci watched: test"]
