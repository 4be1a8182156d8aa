"""The `ansible-playbook` way fills in the same defaults as the Python spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from faceswap_oci import spec

ROOT = Path(__file__).resolve().parents[2]


def role_vars() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "playbooks/vars/job_defaults.yml").read_text())
    return data


def spec_defaults(target: dict[str, Any]) -> dict[str, Any]:
    job = spec.JobSpec.model_validate(
        {
            "name": "x",
            "consent": spec.CONSENT_TEXT,
            "target": target,
            "inputs": {"a": "a", "b": "b"},
        }
    )
    return job.model_dump(mode="json")


def test_job_defaults_match_the_spec() -> None:
    defaults = spec_defaults({"kind": "local"})
    for key in ("name", "consent", "target", "inputs"):
        defaults.pop(key)
    assert role_vars()["job_defaults_spec"] == defaults


def test_target_defaults_match_the_spec() -> None:
    ssh = spec_defaults({"kind": "ssh", "ssh": {"host": "h"}})["target"]["ssh"]
    oci = spec_defaults(
        {"kind": "oci", "oci": {"compartment": "ocid1.compartment.oc1..aaaa", "region": "r-1"}}
    )["target"]["oci"]
    ssh.pop("host")
    oci.pop("compartment")
    oci.pop("region")
    target_defaults = role_vars()["job_defaults_target_defaults"]
    assert target_defaults["ssh"] == ssh
    assert target_defaults["oci"] == oci


def test_consent_text_matches() -> None:
    text = role_vars()["job_defaults_consent"]
    assert " ".join(text.split()) == spec.CONSENT_TEXT
