"""The wrapper's OCI decisions (issue 15): `plan` checks the OCI config, prices every rung;
OCI_CONFIG_FILE / OCI_CLI_PROFILE / OCI_CLI_AUTH as the OCI CLI reads them; `--only provision`
keeps what it made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from faceswap_oci import api, cli, spec
from faceswap_oci.runner import Runner
from tests.ociapi.fixtures import write_test_config
from tests.unit.oci_job import COMPARTMENT, write_oci_job


def _job_file(tmp_path: Path, **oci: Any) -> Path:
    return write_oci_job(tmp_path, "planned", **oci)


def test_plan_with_a_missing_config_file_exits_2_and_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "config"
    job = _job_file(tmp_path, config_file=str(missing))
    result = CliRunner().invoke(cli.app, ["plan", str(job), "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"{missing}: (file): OCI config file does not exist" in text
    assert "estimated cost" not in text


def test_plan_with_a_good_config_prices_every_rung(tmp_path: Path) -> None:
    cfg = write_test_config(tmp_path / "oci")
    job = spec.load_job(
        _job_file(
            tmp_path,
            config_file=str(cfg.config_file),
            shapes=["VM.GPU.A10.1", "BM.GPU.A10.4", "VM.GPU3.1"],
            preemptible=True,
            preemptible_fallback=True,
        )
    )
    plan = api.plan(job, state_root=tmp_path / "state")
    assert plan.cost is not None
    rungs = [(r["shape"], r["preemptible"], r["usd_per_hour"]) for r in plan.cost["rungs"]]
    assert rungs == [
        ("VM.GPU.A10.1", True, 1.0),
        ("VM.GPU3.1", True, 1.475),  # no preemptible BM rung: VM shapes only
        ("VM.GPU.A10.1", False, 2.0),
        ("BM.GPU.A10.4", False, 8.0),
        ("VM.GPU3.1", False, 2.95),
    ]
    assert all(r["source"].startswith("https://") and r["as_of"] for r in plan.cost["rungs"])


@pytest.mark.parametrize(
    ("oci", "env", "expected"),
    [
        ({}, {}, ("~/.oci/config", "DEFAULT", "api_key")),
        (
            {},
            {"OCI_CONFIG_FILE": "/c", "OCI_CLI_PROFILE": "P", "OCI_CLI_AUTH": "security_token"},
            ("/c", "P", "security_token"),
        ),
        (
            {},
            {"OCI_CLI_CONFIG_FILE": "/cli", "OCI_CONFIG_FILE": "/sdk"},
            ("/cli", "DEFAULT", "api_key"),
        ),
        (
            {"config_file": "/job", "profile": "J", "auth": "api_key"},
            {"OCI_CONFIG_FILE": "/c", "OCI_CLI_PROFILE": "P", "OCI_CLI_AUTH": "security_token"},
            ("/job", "J", "api_key"),
        ),
    ],
)
def test_oci_settings_follow_the_oci_cli(
    oci: dict[str, Any], env: dict[str, str], expected: tuple[str, str, str]
) -> None:
    target = spec.OciTarget.model_validate(
        {"compartment": COMPARTMENT, "region": "eu-frankfurt-1", **oci}
    )
    got = spec.oci_settings(target, env)
    assert (got["config_file"], got["profile"], got["auth"]) == expected


def test_a_bad_oci_cli_auth_names_the_variable() -> None:
    target = spec.OciTarget.model_validate({"compartment": COMPARTMENT, "region": "r-1"})
    with pytest.raises(spec.SpecError, match=r"OCI_CLI_AUTH='token': use one of api_key"):
        spec.oci_settings(target, {"OCI_CLI_AUTH": "token"})


def test_the_environment_reaches_the_extra_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCI_CLI_PROFILE", "FROM_ENV")
    monkeypatch.setenv("OCI_CLI_AUTH", "instance_principal")
    job = spec.load_job(_job_file(tmp_path))
    oci = job.extravars_spec()["target"]["oci"]
    assert (oci["profile"], oci["auth"]) == ("FROM_ENV", "instance_principal")


@pytest.mark.parametrize(
    ("policy", "only", "status", "teardown"),
    [
        ("always", "provision", "successful", False),  # --only provision keeps the instance
        ("always", "provision", "failed", True),  # a failed one still cleans up
        ("on_success", "provision", "successful", False),
        ("always", None, "successful", True),
        ("on_success", None, "failed", False),
        ("never", None, "failed", False),
    ],
)
def test_teardown_policy(
    tmp_path: Path, policy: str, only: str | None, status: str, teardown: bool
) -> None:
    path = _job_file(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["teardown"] = policy
    path.write_text(yaml.safe_dump(data))
    runner = Runner(spec.load_job(path), state_root=tmp_path / "state")
    assert runner.wants_teardown(status, only) is teardown
