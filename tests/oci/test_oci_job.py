"""Issue 14's acceptance with the real Faceswap on CPU: one OCI job against the local OCI API,
each instance it launches a fresh test-bed host booted from the installed-host image.

The double listens on the test bed's bridge, so both the controller and the VMs reach it (the
VMs' snapshots go to its Object Storage through the job's PAR). When the job launches an
instance, the double's ``on_launch`` boots a host and gives the launch's
``ssh_authorized_keys`` to the image's default user ``opc`` with passwordless sudo, as
cloud-init does on Oracle's images; the host's address is the instance's public IP. A
preemption kills the instance's host at that moment (``on_preempt``).

One job, one bucket, four VMs, in three runs:

1. ``faceswap-oci run`` (the CLI; ``teardown: always``) gets a Ctrl-C once the training put its
   first snapshot in the bucket: the stop entry point saves and pushes a final snapshot before
   the instance is terminated; the bucket stays.
2. ``run`` again (the API): the second VM restores the faces (extract skipped) and the
   snapshot, and resumes. Once it put a newer snapshot, the instance is preempted: the runner
   notices through the API, provisions a third VM, which restores and resumes. Its link goes
   down for 60 s during training, and the job goes on. Its convert fails (injected: Faceswap
   finds no alignments for A, moved aside on that VM), and teardown keeps the bucket.
3. ``run`` once more: the fourth VM restores the model at the target and converts without
   training again (on the way, the `oci_job` inventory plugin reaches it and the watchdog role
   runs on it twice: what tests/oci/test_testbed_e2e.py did alone before); the video matches its
   manifest, and nothing is left: 0 resources, no bucket.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import faceswap_oci
from faceswap_oci import events as ev
from faceswap_oci.demo import make_demo_inputs
from tests.e2e.job import FRAMES
from tests.hostimage import Image
from tests.oci.playbook import run_playbook
from tests.oci.test_cancel import start_cli
from tests.ociapi.fixtures import OciApi, OciTestConfig, oci_target, start_ociapi
from tests.ociapi.server import OciApiServer
from tests.pipeline.jobs import e2e_job_spec, sha256
from tests.testbed import Host
from tests.testbed.fixtures import SessionTestbed

pytestmark = pytest.mark.testbed

NAME = "oci-e2e"
BUCKET = f"fsoci-{NAME}"
PREFIX = f"jobs/{NAME}/"
ITERATIONS = 6
LINK_DOWN_S = 60
JOB_DIR = f"/opt/faceswap-oci/jobs/{NAME}"
HIDDEN = "a_alignments.fsa.hidden-by-the-test"


@dataclass
class Cloud:
    """The double, the VMs it launched (in order) and what the test saw happen."""

    api: OciApi
    bed: SessionTestbed
    layer: str
    hosts: list[Host] = field(default_factory=list)
    by_instance: dict[str, Host] = field(default_factory=dict)
    pointers: list[int] = field(default_factory=list)  # latest.json's iteration, each change
    at_terminate: list[int | None] = field(default_factory=list)  # pointer at TerminateInstance
    preempted: list[str] = field(default_factory=list)

    def pointer(self) -> int | None:
        with self.api.state.lock:
            bucket = self.api.state.object_storage.buckets.get(BUCKET)
            obj = bucket.objects.get(f"{PREFIX}latest.json") if bucket else None
            return int(json.loads(obj.data)["iteration"]) if obj else None

    def launch(self, inst: Any) -> str:
        """cloud-init's part: boot the VM and give its default user the launch's key."""
        (host,) = self.bed.up(1, layer=self.layer)
        key = shlex.quote(str(inst.metadata["ssh_authorized_keys"]))
        host.ssh(
            "useradd -m -s /bin/bash opc && install -d -m 700 -o opc -g opc ~opc/.ssh && "
            f"echo {key} > ~opc/.ssh/authorized_keys && chown opc: ~opc/.ssh/authorized_keys && "
            "echo 'opc ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users"
        )
        self.hosts.append(host)
        self.by_instance[inst.id] = host
        return host.address

    def log_tail(self, host: Host, name: str) -> str:
        """The last lines of one of the job's logs on ``host`` (for a failure's message)."""
        done = host.ssh(f"tail -n 40 {JOB_DIR}/logs/{name}", check=False)
        return done.stdout + done.stderr

    def preempt(self, instance_id: str) -> None:
        self.preempted.append(instance_id)
        self.bed.down([self.by_instance[instance_id]])

    def requested(self, op: str) -> None:
        if op == "TerminateInstance":
            self.at_terminate.append(self.pointer())

    def watch_pointer(self, stop: threading.Event) -> None:
        while not stop.wait(0.3):
            now = self.pointer()
            if now is not None and (not self.pointers or self.pointers[-1] != now):
                self.pointers.append(now)

    def live_instance(self) -> str:
        (inst,) = [
            r.model.id
            for r in self.api.state.instances()
            if r.state(self.api.state.clock()) == "RUNNING"
        ]
        return str(inst)


@dataclass
class Chain:
    cloud: Cloud
    job_file: Path
    output: Path
    run1: list[dict[str, Any]]
    run1_rc: int
    sigint_at: int
    run2: list[ev.Event]
    run2_result: Any
    run3: list[ev.Event]
    run3_result: Any
    run3_logs: list[str]
    watchdog: list[Any]
    link_down: tuple[float, float]


def _reports(seen: list[ev.Event], kind: str) -> list[dict[str, Any]]:
    return [e.data for e in seen if isinstance(e, ev.Report) and e.report == kind]


def _job(api: OciApi, folder: Path) -> Path:
    target = oci_target(
        api.cfg,
        api.url,
        shapes=["VM.GPU.A10.1"],
        preemptible=True,
        ssh_ingress_cidr="169.254.0.0/16",
        ssh_wait_timeout=60,
        boot_volume_gb=100,
        max_hours=2,
    )
    spec = e2e_job_spec(NAME, target, ITERATIONS)
    make_demo_inputs(folder / "demo", frames=FRAMES)  # fewer frames than `inputs.demo` writes
    spec["inputs"].pop("demo")
    spec["train"]["save_every"] = 2
    # The image was installed from the controller's wheel set: with the same set a new VM's
    # setup is the re-run (an OCI job downloads from the index by default, which would make
    # each VM redo the pip install check and the smoke import, 12 s each).
    spec["faceswap"]["wheel_cache"] = True
    spec["teardown"] = "always"
    job_file = folder / "job.yml"
    job_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    return job_file


@pytest.fixture(scope="module")
def cloud(
    testbed: SessionTestbed,
    faceswap_image: Image,
    installed_host: Host,
    oci_test_config: OciTestConfig,
) -> Iterator[Cloud]:
    # The session's installed host keeps the bridge (and its address) up while the VMs come
    # and go.
    del installed_host
    local = start_ociapi(oci_test_config)
    server = OciApiServer(local.state, host=testbed.testbed.bridge_address).start()
    api = OciApi(server, oci_test_config)
    found = Cloud(api, testbed, faceswap_image.layer)
    api.state.on_launch = found.launch
    api.state.on_preempt = found.preempt
    api.state.on_request = found.requested
    api.state.faults.provision_s = 1.0
    try:
        yield found
    finally:
        api.state.cancel_timers()
        server.stop()
        local.server.stop()
        testbed.down(found.hosts)


def _sigint_after_the_first_snapshot(cloud: Cloud, job_file: Path, state: Path) -> tuple:
    proc = start_cli(["run", str(job_file)], state)
    events: list[dict[str, Any]] = []
    sigint_at = -1

    def interrupt() -> None:
        nonlocal sigint_at
        while proc.poll() is None:
            now = cloud.pointer()
            if now is not None:
                sigint_at = now
                proc.send_signal(signal.SIGINT)
                return
            time.sleep(0.3)

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        assert proc.stdout is not None
        events = [json.loads(line) for line in proc.stdout]
        rc = proc.wait(timeout=1200)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sigint_at >= 0, (proc.stderr.read() if proc.stderr else "")[-4000:]
    return events, rc, sigint_at


def arm_the_watchdog_again(cloud: Cloud, state: Path, folder: Path) -> list[Any]:
    """The job's live VM through the `oci_job` inventory plugin (its instance found by the
    job's tag, its address from its VNIC): the watchdog role twice on it, then what the host
    says of its timer."""
    api = cloud.api
    inventory = folder / "job.oci.yml"
    folder.mkdir(parents=True, exist_ok=True)
    inventory.write_text(
        yaml.safe_dump(
            {
                "plugin": "faceswap_oci.core.oci_job",
                "config_file": str(api.cfg.config_file),
                "compartment_id": api.cfg.compartment,
                "service_endpoint": api.url,
                "jobs": [NAME],
                "hostname": "target",
                "compose": {
                    "ansible_user": "'opc'",
                    "ansible_ssh_private_key_file": repr(str(state / "id_ed25519")),
                    "ansible_ssh_common_args": repr(
                        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
                    ),
                    "ansible_python_interpreter": "'auto_silent'",
                },
            }
        )
    )
    runs = [
        run_playbook("tests/oci/data/watchdog.yml", {}, folder / f"run{n}", inventory=inventory)
        for n in (1, 2)
    ]
    host = cloud.hosts[-1]
    active = host.ssh("systemctl is-active fsoci-watchdog.timer", check=False).stdout.strip()
    calendar = host.ssh("systemctl show -p TimersCalendar fsoci-watchdog.timer").stdout
    return [*runs, active, calendar]


@pytest.fixture(scope="module")
def chain(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    folder = tmp_path_factory.mktemp("oci-job")
    job_file = _job(cloud.api, folder)
    state = folder / "state"
    stop = threading.Event()
    threading.Thread(target=cloud.watch_pointer, args=(stop,), daemon=True).start()
    try:
        run1, rc1, sigint_at = _sigint_after_the_first_snapshot(cloud, job_file, state)

        # run 2: preempt the second VM once it pushed a snapshot newer than run 1's
        after_run1 = cloud.pointer() or 0
        link: list[float] = []
        seen2: list[ev.Event] = []

        def preempt_when_newer() -> None:
            while not stop.is_set():
                if len(cloud.hosts) == 2 and (cloud.pointer() or 0) > after_run1:
                    cloud.api.state.preempt(cloud.live_instance())
                    return
                time.sleep(0.3)

        def drop_link(host: Host) -> None:
            veth = cloud.bed.testbed.link_of(host.name)
            subprocess.run(["ip", "link", "set", veth, "down"], check=True)
            link.append(time.monotonic())
            time.sleep(LINK_DOWN_S)
            subprocess.run(["ip", "link", "set", veth, "up"], check=True)
            link.append(time.monotonic())

        def on_event2(event: ev.Event) -> None:
            seen2.append(event)
            third = len(cloud.hosts) == 3
            if third and isinstance(event, ev.Progress) and not link:
                link.append(0.0)  # once
                threading.Thread(target=drop_link, args=(cloud.hosts[2],), daemon=True).start()
            if third and isinstance(event, ev.PhaseStarted) and event.phase == "convert":
                # The injected failure: Faceswap's convert finds no alignments for A (moved
                # aside on this VM only; the bucket keeps them).
                cloud.hosts[2].ssh(f"cd {JOB_DIR}/inputs/a && mv a_alignments.fsa {HIDDEN}")

        threading.Thread(target=preempt_when_newer, daemon=True).start()
        job = faceswap_oci.load_job(job_file)
        result2 = faceswap_oci.run(job, on_event=on_event2, state_root=state)

        seen3: list[ev.Event] = []
        watchdog: list[Any] = []
        logs3: list[str] = []

        def on_event3(event: ev.Event) -> None:
            seen3.append(event)
            if isinstance(event, ev.PhaseStarted) and event.phase == "fetch":
                watchdog.extend(arm_the_watchdog_again(cloud, state / NAME, folder / "inv"))
            if isinstance(event, ev.PhaseFinished) and event.status != "successful":
                for log in (f"{event.phase}.out", f"{event.phase}.log"):
                    logs3.append(cloud.log_tail(cloud.hosts[-1], log))

        result3 = faceswap_oci.run(job, on_event=on_event3, state_root=state)
    finally:
        stop.set()
    return Chain(
        cloud,
        job_file,
        job.output_dir,
        run1,
        rc1,
        sigint_at,
        seen2,
        result2,
        seen3,
        result3,
        logs3,
        watchdog,
        (link[1], link[2]) if len(link) == 3 else (0.0, 0.0),
    )


def test_ctrl_c_pushes_a_final_snapshot_before_terminate(chain: Chain) -> None:
    assert chain.run1_rc == 130, chain.run1[-5:]
    stopped = [
        e for e in chain.run1 if e["event"] == "Report" and e.get("report") == "train_stopped"
    ]
    assert stopped, [e["event"] for e in chain.run1][-20:]
    saved = int(stopped[-1]["data"]["snapshot_iterations"])
    assert saved == int(stopped[-1]["data"]["model_iterations"]) >= chain.sigint_at >= 1
    # the first TerminateInstance came after the final snapshot was the bucket's latest
    assert chain.cloud.at_terminate[0] == saved


def test_the_next_run_restores_skips_extract_and_resumes(chain: Chain) -> None:
    faces = _reports(chain.run2, "faces")
    assert faces and all(f["extracted"] in (False, "False") for f in faces), faces
    restored = _reports(chain.run2, "restored")
    first_snapshot = chain.cloud.at_terminate[0]
    assert int(restored[0]["iterations"]) == first_snapshot > 0


def test_a_preempted_vm_is_replaced_and_the_job_resumes(chain: Chain) -> None:
    preempted = [e for e in chain.run2 if isinstance(e, ev.Preempted)]
    assert [e.instance_id for e in preempted] == chain.cloud.preempted
    assert preempted[0].recovery == 1
    restored = [int(r["iterations"]) for r in _reports(chain.run2, "restored")]
    assert len(restored) == 2 and restored[1] > restored[0], restored
    assert restored[1] in chain.cloud.pointers
    (trained,) = _reports(chain.run2, "trained")
    assert int(trained["iterations"]) == ITERATIONS


def test_iterations_never_go_back(chain: Chain) -> None:
    assert chain.cloud.pointers == sorted(chain.cloud.pointers), chain.cloud.pointers
    assert chain.cloud.pointers[-1] == ITERATIONS


def test_a_link_down_for_a_minute_during_training_does_not_fail_the_job(chain: Chain) -> None:
    down, up = chain.link_down
    assert up - down >= LINK_DOWN_S
    failed = [
        e
        for e in chain.run2
        if isinstance(e, ev.PhaseFinished) and e.phase == "train" and e.status != "successful"
    ]
    assert len(failed) == 1  # the preempted VM's; the third VM's train phase outlived the drop
    assert not _reports(chain.run2, "train_unreachable")


def test_a_failed_convert_keeps_the_model_and_the_next_run_converts_without_training(
    chain: Chain,
) -> None:
    assert not chain.run2_result.ok
    assert "convert" in (chain.run2_result.error or ""), chain.run2_result.error
    assert chain.cloud.at_terminate[-2] == ITERATIONS  # the bucket held the model
    result = chain.run3_result
    assert result.ok, f"{result.error}\n{''.join(chain.run3_logs)}"
    assert not _reports(chain.run3, "train_started")
    assert _reports(chain.run3, "restored")[0]["iterations"] in (ITERATIONS, str(ITERATIONS))
    (converted,) = _reports(chain.run3, "converted")
    assert int(converted["model_iterations"]) == ITERATIONS


def test_the_inventory_plugin_finds_the_vm_and_its_watchdog_is_armed(chain: Chain) -> None:
    """(Was tests/oci/test_testbed_e2e.py.) The `oci_job` inventory plugin reaches the job's VM,
    the watchdog that setup armed keeps its deadline, and a second run changes nothing."""
    first, second, active, calendar = chain.watchdog
    assert first.rc == 0, first.stdout[-4000:]
    deadline = first.event("oci_watchdog")["deadline"]
    (armed,) = [r for r in _reports(chain.run3, "oci_watchdog")]
    assert deadline == armed["deadline"] and deadline.endswith("UTC")
    assert active == "active"
    assert deadline.split()[0] in calendar
    assert second.rc == 0 and second.changed == 0, second.stdout[-4000:]


def test_the_video_matches_its_manifest_and_nothing_is_left(chain: Chain) -> None:
    video = chain.output / f"{NAME}.mp4"
    manifest = json.loads((chain.output / f"{NAME}.manifest.json").read_text())
    assert sha256(video) == manifest["output"]["sha256"]
    assert manifest["model"]["iterations"] == ITERATIONS
    assert chain.cloud.api.state.live_tagged() == []
    assert BUCKET not in chain.cloud.api.state.object_storage.buckets
    assert len(chain.cloud.hosts) == 4
