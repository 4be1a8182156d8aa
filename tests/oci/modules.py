"""Run the collection's OCI modules in this process, through the real SDK, against the local OCI
API: the cheap way to check a module's behaviour on the double (no ansible-playbook start-up)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args

from tests.ociapi.fixtures import OciApi

_COLLECTIONS = Path(__file__).resolve().parents[2] / ".collections"
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))


def run_module(
    name: str, args: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """``faceswap_oci.core.<name>`` with ``args``; its JSON result (``failed`` on fail_json)."""
    import importlib

    module = importlib.import_module(
        f"ansible_collections.faceswap_oci.core.plugins.modules.{name}"
    )
    capsys.readouterr()
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def auth_args(api: OciApi, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "config_file": str(api.cfg.config_file),
        "profile": api.cfg.profile,
        "region": api.cfg.region,
        "service_endpoint": api.url,
        "compartment_id": api.cfg.compartment,
    }
    args.update(extra)
    return args


def network(api: OciApi, capsys: pytest.CaptureFixture[str], job: str = "demo") -> str:
    """The job's network made by the oci_network module; its subnet OCID."""
    out = run_module(
        "oci_network", auth_args(api, job=job, ssh_ingress_cidr="198.51.100.7/32"), capsys
    )
    assert not out.get("failed"), out
    return str(out["subnet_id"])


def instance_args(api: OciApi, subnet_id: str, job: str = "demo", **extra: Any) -> dict[str, Any]:
    args = auth_args(
        api,
        job=job,
        subnet_id=subnet_id,
        ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheDouble test",
        shapes=["VM.GPU.A10.1"],
        boot_volume_gb=100,
        wait_timeout=30,
    )
    args.update(extra)
    return args


def teardown(
    api: OciApi, capsys: pytest.CaptureFixture[str], job: str = "demo", **extra: Any
) -> dict[str, Any]:
    return run_module("oci_job_teardown", auth_args(api, job=job, **extra), capsys)


def fast_clock(speed: float) -> Callable[[], float]:
    """A monotonic clock for the double that runs ``speed`` times faster than the real one, so
    that a lag of the service measured in tens of seconds costs a few seconds of test time."""
    start = time.monotonic()
    return lambda: start + (time.monotonic() - start) * speed
