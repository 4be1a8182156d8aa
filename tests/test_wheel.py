"""The installed way in: the wheel ships playbooks, roles and plugins; the CLI and the Python
API work from any directory of a fresh virtual environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from faceswap_oci.spec import CONSENT_TEXT
from tests.media import write_pair

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "faceswap_oci/ansible_collections/faceswap_oci/core/"

pytestmark = pytest.mark.slow


def sh(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    sh(sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", out, ROOT, cwd=ROOT)
    (found,) = out.glob("faceswap_oci-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with only the wheel (and its dependencies) installed."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True, clear=True)
    # --no-compile: byte-compiling the oci SDK's thousands of modules is ~20 s of CPU that
    # tells nothing about the wheel.
    sh(env_dir / "bin/python", "-m", "pip", "install", "-q", "--no-compile", wheel, cwd=env_dir)
    yield env_dir


def test_wheel_carries_the_ansible_content(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "galaxy.yml",
        "meta/runtime.yml",
        "playbooks/site.yml",
        "playbooks/setup.yml",
        "roles/host_prepare/tasks/main.yml",
        "roles/host_prepare/meta/argument_specs.yml",
        "playbooks/job_context.yml",
        "playbooks/vars/job_defaults.yml",
    ):
        assert PREFIX + needed in names, needed
    assert any(n.startswith(PREFIX + "plugins/modules/") for n in names)
    assert "faceswap_oci/examples/job.example.yml" in names
    assert "faceswap_oci/py.typed" in names
    # the dashboard's frontend build: nothing is fetched at run time
    for static in ("index.html", "job.html", "app.js", "app.css", "uPlot.iife.min.js"):
        assert f"faceswap_oci/dashboard/static/{static}" in names, static


def test_cli_works_from_any_directory(installed: Path, tmp_path: Path) -> None:
    env = {
        "PATH": f"{installed / 'bin'}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(tmp_path / "home")),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "LANG": "C.UTF-8",
    }
    cli = installed / "bin" / "faceswap-oci"
    assert "Usage" in sh(cli, "--help", cwd=tmp_path, env=env)
    sh(cli, "init", "job.yml", cwd=tmp_path, env=env)
    assert (tmp_path / "job.yml").is_file()
    schema = json.loads(sh(cli, "schema", cwd=tmp_path, env=env))
    assert "consent" in schema["properties"]

    write_pair(tmp_path)  # real clips: plan and run probe the inputs
    job = {
        "name": "wheel",
        "consent": CONSENT_TEXT,
        "target": {"kind": "local"},
        "inputs": {"a": "a.mp4", "b": "b.mp4"},
    }
    (tmp_path / "local.yml").write_text(yaml.safe_dump(job))
    plan = json.loads(sh(cli, "plan", "local.yml", "--json", cwd=tmp_path, env=env))
    assert next(p["name"] for p in plan["phases"] if p["will_run"]) == "setup"

    # a real phase (upload: no Faceswap install needed) through the installed content
    out = sh(cli, "run", "local.yml", "--only", "upload", "--json", cwd=tmp_path, env=env)
    events = [json.loads(line) for line in out.splitlines()]
    started = next(e for e in events if e["event"] == "PhaseStarted")
    assert started["playbook"].startswith(str(installed))
    assert events[-1]["event"] == "JobFinished"
    assert events[-1]["status"] == "successful"
    inputs = tmp_path / "data/faceswap-oci/jobs/wheel/inputs"
    assert sorted(p.name for p in inputs.rglob("*.mp4")) == ["a.mp4", "b.mp4"]


def test_python_api_after_install(installed: Path, tmp_path: Path) -> None:
    write_pair(tmp_path)  # real clips: plan and run probe the inputs
    job = {
        "name": "api",
        "consent": CONSENT_TEXT,
        "target": {"kind": "local"},
        "inputs": {"a": "a.mp4", "b": "b.mp4"},
    }
    (tmp_path / "job.yml").write_text(yaml.safe_dump(job))
    code = (
        "import faceswap_oci, json\n"
        "job = faceswap_oci.load_job('job.yml')\n"
        "kinds = []\n"
        "result = faceswap_oci.run(job, on_event=lambda e: kinds.append(e.kind), only='upload')\n"
        "print(json.dumps({'ok': result.ok, 'kinds': kinds, 'file': faceswap_oci.__file__}))\n"
    )
    env = dict(
        os.environ,
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    env.pop("PYTHONPATH", None)
    data = json.loads(sh(installed / "bin/python", "-c", code, cwd=tmp_path, env=env))
    assert data["ok"]
    assert data["file"].startswith(str(installed))
    assert data["kinds"][0] == "PhaseStarted"
    assert "TaskDone" in data["kinds"]
    assert data["kinds"][-1] == "JobFinished"
