"""A new host of an OCI job restores the faces, the alignments files and the extract markers
from the job bucket before its extract phase, which then finds its markers satisfied and skips
(issue 14: "Setup runs; extract is skipped"). playbooks/extract.yml through ansible-playbook on
the local connection, the bucket in the local OCI API double, and a stand-in for Faceswap's
extract (this test is about the phase's decisions, not Faceswap's output; the real run is in
tests/pipeline)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.oci.playbook import PlaybookRun, run_playbook
from tests.ociapi.fixtures import OciApi, job_bucket_par
from tests.unit.test_train_supervisor import load_helper

NAME = "demo"
PREFIX = f"jobs/{NAME}/"

# Writes what `faceswap.py extract -i MEDIA -o FACES` writes (the face PNGs in FACES and
# <stem>_alignments.fsa beside MEDIA), with content unique to each run so that a second
# extraction is told from a restore, and logs each call; with FAKE_EXTRACT_FAIL set it fails.
FAKE_FACESWAP = """\
import os, sys, time
from pathlib import Path
args = sys.argv[1:]
media, faces = Path(args[args.index("-i") + 1]), Path(args[args.index("-o") + 1])
with open(os.environ["FAKE_EXTRACT_CALLS"], "a") as fh:
    fh.write(media.name + "\\n")
if os.environ.get("FAKE_EXTRACT_FAIL"):
    sys.exit("extract must not run")
stamp = str(time.time_ns()).encode()
faces.mkdir(parents=True, exist_ok=True)
for i in range(25):  # the least the extract role takes (min_faces >= 25, as Faceswap)
    (faces / f"{media.stem}_{i}.png").write_bytes(b"face" + stamp)
(media.parent / f"{media.stem}_alignments.fsa").write_bytes(b"fsa" + stamp)
"""


def _host(root: Path) -> Path:
    """A host root with the Faceswap stand-in and a job whose media were uploaded."""
    (root / "faceswap").mkdir(parents=True)
    (root / "faceswap" / "faceswap.py").write_text(FAKE_FACESWAP)
    (root / "venv" / "bin").mkdir(parents=True)
    os.symlink(sys.executable, root / "venv" / "bin" / "python")
    job = root / "jobs" / NAME
    for side in ("a", "b"):
        (job / "inputs" / side).mkdir(parents=True)
        (job / "inputs" / side / f"{side}.mp4").write_bytes(f"media {side}".encode())
    return job


def _extract(tmp_path: Path, api: OciApi, root: Path, run: str, **env: str) -> PlaybookRun:
    state = tmp_path / "state"
    inventory = tmp_path / run / "inventory.ini"
    inventory.parent.mkdir(parents=True, exist_ok=True)
    inventory.write_text(
        "[fsoci_target]\n"
        f"target ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    extravars: dict[str, Any] = {
        "fsoci": {
            "name": NAME,
            "target": {"kind": "oci", "oci": {"storage": {"enabled": True}}},
            "inputs": {"a": "/media/a.mp4", "b": "/media/b.mp4"},
            "faceswap": {"backend": "cpu"},
            "extract": {"min_faces": 25},
        },
        "fsoci_state_dir": str(state),
        "fsoci_host_root": str(root),
        "fsoci_job_dir": str(root / "jobs" / NAME),
        "fsoci_user": os.environ.get("USER", "root"),
        "fsoci_become": False,
    }
    old = dict(os.environ)
    os.environ.update({"FAKE_EXTRACT_CALLS": str(tmp_path / f"{run}.calls"), **env})
    try:
        # Extra vars win over the playbook's role vars: poll the stand-in each second, not 5.
        return run_playbook(
            "playbooks/extract.yml",
            extravars,
            tmp_path / run,
            "-e",
            "faceswap_extract_poll=1",
            inventory=inventory,
        )
    finally:
        os.environ.clear()
        os.environ.update(old)


def _outputs(job: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(job.rglob("*")):
        rel = path.relative_to(job).as_posix()
        made = rel.startswith(("faces_", "logs/extract_")) or rel.endswith(".fsa")
        if path.is_file() and made and not rel.endswith((".log", ".out")):
            found[rel] = path.read_bytes()
    return found


@pytest.fixture
def bucket(ociapi: OciApi, tmp_path: Path) -> OciApi:
    """The job bucket and its PAR in the state folder, as provision leaves them."""
    state = tmp_path / "state"
    state.mkdir()
    par = state / "storage.par"
    par.write_text(job_bucket_par(ociapi, f"fsoci-{NAME}", PREFIX) + "\n")
    par.chmod(0o600)
    return ociapi


def test_a_new_host_restores_the_faces_and_skips_extract(bucket: OciApi, tmp_path: Path) -> None:
    job1 = _host(tmp_path / "host1")
    first = _extract(tmp_path, bucket, tmp_path / "host1", "run1")
    assert first.rc == 0, first.stdout[-4000:]
    # Nothing in the bucket yet (the first host): extracted, nothing restored.
    assert [(e["extracted"], e["restored"]) for e in first.events if e.get("kind") == "faces"] == [
        (True, False),
        (True, False),
    ]
    made = _outputs(job1)
    assert sorted(made) == sorted(
        [f"faces_{side}/{side}_{i}.png" for side in "ab" for i in range(25)]
        + ["inputs/a/a_alignments.fsa", "inputs/b/b_alignments.fsa"]
        + ["logs/extract_a.done", "logs/extract_b.done"]
    )
    # Training starts: its supervisor uploads the extract phase's outputs once.
    train = load_helper("fsoci_train.py")
    config = job1 / "config" / "train.json"
    config.write_text(
        json.dumps(
            {
                "job_dir": str(job1),
                "model_dir": str(job1 / "model"),
                "faceswap_dir": str(tmp_path / "host1" / "faceswap"),
                "trainer": "original",
                "snapshot": {
                    "par_file": str(job1 / "config" / "snapshot.par"),
                    "prefix": PREFIX,
                    "faces": {"a": str(job1 / "faces_a"), "b": str(job1 / "faces_b")},
                },
            }
        )
    )
    job = train.Job(str(config))
    train.Snapshotter(job, train.snapshot_store(job)).push_faces()

    # The host is preempted; the new one (same host root, as /opt/faceswap-oci on every VM)
    # has Faceswap and the uploaded media, nothing else.
    shutil.rmtree(tmp_path / "host1")
    job2 = _host(tmp_path / "host1")
    second = _extract(tmp_path, bucket, tmp_path / "host1", "run2", FAKE_EXTRACT_FAIL="1")
    assert second.rc == 0, second.stdout[-4000:]
    assert not (tmp_path / "run2.calls").exists()  # Faceswap's extract never ran
    faces = [e for e in second.events if e.get("kind") == "faces"]
    assert [(e["extracted"], e["restored"], e["count"]) for e in faces] == [
        (False, True, 25),
        (False, True, 25),
    ]
    # Byte for byte, so the faces' folder checksums (the model's made_from) are the same.
    assert _outputs(job2) == made
    assert (job2 / "config" / "snapshot.par").stat().st_mode & 0o777 == 0o600
    par_url = (tmp_path / "state" / "storage.par").read_text().strip()
    assert par_url not in first.stdout + second.stdout  # a credential, never logged
