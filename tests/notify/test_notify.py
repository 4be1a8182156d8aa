"""Notifications through the real Apprise to a local json:// receiver.

The receiver is a plain HTTP server: Apprise's ``json://`` plugin POSTs one JSON object per
notification, ``{"version", "title", "message", "type", "attachments": [{"filename",
"base64", "mimetype"}]}`` (apprise ``plugins/custom_json.py``, ``JSONPayloadField``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

import faceswap_oci
from faceswap_oci import events as ev
from faceswap_oci.notify import Notifier
from faceswap_oci.spec import CONSENT_TEXT
from tests.media import write_pair

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class Receiver:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.paths: list[str] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.posts.append(json.loads(self.rfile.read(length)))
                received.paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def titles(self) -> list[str]:
        return [p["title"] for p in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_each_event_kind_arrives_once_with_its_fields(receiver: Receiver, tmp_path: Path) -> None:
    preview = tmp_path / "preview.png"
    preview.write_bytes(PNG)
    notifier = Notifier(
        [receiver.url("secret-token")],
        "demo",
        output=tmp_path / "out",
        cost_threshold=5.0,
        every_hours=1.0,
    )
    t0 = 1_000_000.0
    stream: list[ev.Event] = [
        ev.PhaseStarted("train", playbook="train.yml", at=t0),
        ev.Progress("train", data={"iteration": 10, "target": 100}, at=t0 + 1),
        ev.PreviewUpdated("train", path=str(preview), iteration=10, at=t0 + 2),
        ev.Progress("train", data={"iteration": 50, "target": 100, "loss_a": 0.1}, at=t0 + 3601),
        ev.Progress("train", data={"iteration": 60, "target": 100}, at=t0 + 3700),
        ev.Report("train", report="preempted", data={"instance": "ocid1.instance.x"}, at=t0 + 4000),
        ev.Report("train", report="recovered", data={"shape": "VM.GPU.A10.1"}, at=t0 + 4100),
        ev.Report(
            "-", report="cost", data={"total_usd": 7.5, "shape": "VM.GPU.A10.1"}, at=t0 + 5e3
        ),
        ev.Report(
            "-", report="cost", data={"total_usd": 9.0, "shape": "VM.GPU.A10.1"}, at=t0 + 6e3
        ),
        ev.JobFinished("-", status="successful", changed=3, at=t0 + 7000),
    ]
    for event in stream:
        notifier(event)
    failing = Notifier([receiver.url()], "demo")
    for event in (
        ev.PhaseFinished(
            "teardown", status=ev.PhaseStatus.FAILED, changed=0, failed=1, duration_s=3.0
        ),
        ev.JobFailed("teardown", message="teardown: 409 Conflict"),
        ev.JobFailed("extract", message="only 3 faces in A"),
    ):
        failing(event)
    notifier.close()
    failing.close()

    by_title = {p["title"]: p for p in receiver.posts}
    assert sorted(by_title) == sorted(
        [
            "faceswap-oci demo: training, iteration 50",
            "faceswap-oci demo: preempted",
            "faceswap-oci demo: recovered",
            "faceswap-oci demo: cost $7.50",
            "faceswap-oci demo: finished",
            "faceswap-oci demo: teardown FAILED",
            "faceswap-oci demo: extract failed",
        ]
    )
    assert len(receiver.posts) == 7  # each kind once: no second cost, no teardown JobFailed
    finished = by_title["faceswap-oci demo: finished"]
    assert finished["message"] == (
        f"Job demo finished. Output: {tmp_path / 'out' / 'demo.mp4'}. "
        "Cost (list price): $9.0 on VM.GPU.A10.1."
    )
    assert finished["type"] == "info"
    assert by_title["faceswap-oci demo: extract failed"]["message"] == (
        "Phase extract of job demo failed: only 3 faces in A"
    )
    assert by_title["faceswap-oci demo: extract failed"]["type"] == "failure"
    teardown = by_title["faceswap-oci demo: teardown FAILED"]["message"]
    assert "resources may still be billing" in teardown
    assert "faceswap-oci down" in teardown and "sweep" in teardown
    assert "instance: ocid1.instance.x" in by_title["faceswap-oci demo: preempted"]["message"]
    training = by_title["faceswap-oci demo: training, iteration 50"]
    assert training["message"].startswith("Job demo at iteration 50/100: loss A 0.1")
    [attachment] = training["attachments"]
    assert attachment["mimetype"] == "image/png"
    assert base64.b64decode(attachment["base64"]) == PNG
    assert (
        "over the notify_cost_usd threshold of $5.00"
        in by_title["faceswap-oci demo: cost $7.50"]["message"]
    )
    assert set(receiver.paths) == {"/secret-token", "/hook"}


def test_an_unsendable_notification_is_logged_once_without_its_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"json://127.0.0.1:{closed_port()}/tok3n-value"
    notifier = Notifier([url], "demo")
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            notifier(ev.JobFailed("extract", message=f"failure {n}"))
        notifier.close()
    assert [sent.ok for _, sent in notifier.results] == [False, False, False]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "notify[0] json://…: could not send (the job goes on); later failures of this URL are "
        "not logged"
    ]
    assert "tok3n" not in caplog.text


def local_spec(folder: Path, name: str, notify: list[str]) -> dict[str, Any]:
    """A local-target job spec with tiny real input clips written under ``folder``."""
    write_pair(folder / "media")
    return {
        "name": name,
        "consent": CONSENT_TEXT,
        "target": {"kind": "local"},
        "inputs": {"a": "media/a.mp4", "b": "media/b.mp4"},
        "output": "out",
        "notify": notify,
    }


@pytest.fixture
def local_job(tmp_path: Path, receiver: Receiver) -> Path:
    urls = [f"json://127.0.0.1:{closed_port()}/unreachable-tok", receiver.url("run-tok")]
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(local_spec(tmp_path, "notify-demo", urls)))
    return path


def test_real_runs_notify_and_an_unreachable_url_does_not_fail_the_job(
    local_job: Path, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real (and quick) ansible-runner run that succeeds: fetch on a local target whose host
    # folder holds a converted job (a video and its manifest naming the job's inputs).
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    out = tmp_path / "data" / "faceswap-oci" / "jobs" / "notify-demo" / "output"
    out.mkdir(parents=True)
    video = out / "notify-demo.mp4"
    shutil.copy(tmp_path / "media" / "a.mp4", video)
    sums = {
        s: hashlib.sha256((tmp_path / "media" / f"{s}.mp4").read_bytes()).hexdigest() for s in "ab"
    }
    manifest = {
        "output": {"file": video.name, "sha256": hashlib.sha256(video.read_bytes()).hexdigest()},
        "inputs": {side: {"sha256": sha} for side, sha in sums.items()},
    }
    (out / "notify-demo.manifest.json").write_text(json.dumps(manifest))
    done = faceswap_oci.run(local_job, state_root=tmp_path / "state", only="fetch")
    assert done.ok, done.error
    assert receiver.titles() == ["faceswap-oci notify-demo: finished"]
    # The video gone from the host: the results role fails; the notification names the reason.
    video.unlink()
    failed = faceswap_oci.run(local_job, state_root=tmp_path / "state", only="fetch")
    assert failed.status == "failed"
    assert receiver.titles()[1:] == ["faceswap-oci notify-demo: fetch failed"]
    assert receiver.posts[1]["message"].startswith("Phase fetch of job notify-demo failed: ")
    # The URLs are credentials: nothing in the job's state holds them.
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert b"run-tok" not in text and b"unreachable-tok" not in text, path


def test_a_notify_value_without_a_scheme_is_refused_without_echoing_it(tmp_path: Path) -> None:
    from faceswap_oci.errors import SpecError
    from faceswap_oci.spec import validate

    data = local_spec(tmp_path, "n", ["ntfy://ok", "hooks.slack.com/services/T0/B0/s3cret"])
    data["notify_cost_usd"] = 0
    with pytest.raises(SpecError) as refused:
        validate(data, base_dir=tmp_path)
    text = str(refused.value)
    assert "notify[1]: not an Apprise URL (no scheme://); write it like ntfy://topic" in text
    assert "notify_cost_usd: must be > 0.0 (got 0)" in text
    assert "s3cret" not in text
