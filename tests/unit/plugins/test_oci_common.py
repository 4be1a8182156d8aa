"""Pure helpers of module_utils/oci_common and oci_config_check."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import oci
import pytest
import yaml
from ansible_collections.faceswap_oci.core.plugins.doc_fragments.oci import ModuleDocFragment
from ansible_collections.faceswap_oci.core.plugins.module_utils import oci_common as c
from ansible_collections.faceswap_oci.core.plugins.module_utils.oci_config_check import (
    Problem,
    check_oci_config,
)

M = oci.core.models


def service_error(
    status: int, code: str, message: str, request_id: str = "RID"
) -> oci.exceptions.ServiceError:
    return oci.exceptions.ServiceError(status, code, {"opc-request-id": request_id}, message)


@pytest.mark.parametrize(
    ("status", "code", "message", "reason"),
    [
        (500, "InternalError", "Out of host capacity.", "out_of_host_capacity"),
        (400, "LimitExceeded", "You have reached your service limit", "limit_exceeded"),
        (400, "QuotaExceeded", "Quota exceeded", "quota_exceeded"),
        (500, "InternalServerError", "Something broke", None),
        (429, "TooManyRequests", "Too many requests for the user", None),
        (404, "NotAuthorizedOrNotFound", "not found", None),
    ],
)
def test_capacity_reason(status: int, code: str, message: str, reason: str | None) -> None:
    assert c.capacity_reason(service_error(status, code, message)) == reason


@pytest.mark.parametrize(
    ("status", "code", "message", "retried"),
    [
        (500, "InternalError", "Out of host capacity.", False),
        (400, "LimitExceeded", "limit", False),
        (429, "TooManyRequests", "slow down", True),
        (503, "ServiceUnavailable", "try later", True),
        (500, "InternalServerError", "oops", True),
        (400, "InvalidParameter", "bad", False),
    ],
)
def test_launch_retry_strategy_treats_capacity_as_final(
    status: int, code: str, message: str, retried: bool
) -> None:
    strategy = c.launch_retry_strategy(base_sleep_seconds=0.0)
    assert (
        strategy.checkers.should_retry(
            exception=service_error(status, code, message), current_attempt=1, total_elapsed_time=0
        )
        is retried
    )


def test_default_sdk_strategy_would_retry_capacity_for_minutes() -> None:
    # Why the launch needs its own strategy: the SDK default retries this 500.
    exc = service_error(500, "InternalError", "Out of host capacity.")
    assert oci.retry.DEFAULT_RETRY_STRATEGY.checkers.should_retry(
        exception=exc, current_attempt=1, total_elapsed_time=0
    )


def test_launch_retry_strategy_gives_up_after_max_attempts() -> None:
    strategy = c.launch_retry_strategy(max_attempts=3, base_sleep_seconds=0.0)
    exc = service_error(429, "TooManyRequests", "slow down")
    assert strategy.checkers.should_retry(exception=exc, current_attempt=2, total_elapsed_time=0)
    assert not strategy.checkers.should_retry(
        exception=exc, current_attempt=3, total_elapsed_time=0
    )


def _documented(fragment: str) -> dict[str, dict[str, Any]]:
    """A doc fragment's options as an argument_spec states them (what validate-modules
    compares per module)."""
    keys = ("type", "default", "choices", "required")
    options = yaml.safe_load(fragment)["options"]
    return {
        name: {k: doc[k] for k in keys if k in doc and (k, doc[k]) != ("required", False)}
        for name, doc in options.items()
    }


def test_the_shared_options_are_the_doc_fragments_options() -> None:
    assert _documented(ModuleDocFragment.DOCUMENTATION) == c.AUTH_ARGSPEC
    assert _documented(ModuleDocFragment.JOB) == c.JOB_ARGSPEC
    assert set(c.RESOURCE_ARGSPEC) - set(c.JOB_ARGSPEC) == {"state"}


def test_argspec_joins_the_groups_then_the_modules_own_options_as_copies() -> None:
    spec = c.argspec(c.RESOURCE_ARGSPEC, state={"type": "str", "choices": ["absent"]}, x={})
    assert list(spec) == [*c.AUTH_ARGSPEC, *c.RESOURCE_ARGSPEC, "x"]
    assert spec["state"] == {"type": "str", "choices": ["absent"]}
    spec["wait"]["default"] = False
    spec["job"]["required"] = False
    assert c.AUTH_ARGSPEC["wait"]["default"] is True
    assert c.JOB_ARGSPEC["job"]["required"] is True


def test_settled_reads_nothing_when_the_model_is_already_there() -> None:
    compute = create_autospec(oci.core.ComputeClient, instance=True)
    running = M.Instance(id="ocid1.instance.oc1..a", lifecycle_state="RUNNING")
    assert c.settled(compute, compute.get_instance, running, "RUNNING", 5) is running
    assert compute.get_instance.call_count == 0


def test_job_tags_and_tagged_live() -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert c.job_tags("demo", now) == {
        "faceswap-oci-job": "demo",
        "faceswap-oci-created": "2026-01-02T03:04:05Z",
    }
    vcns = [
        M.Vcn(
            id="a",
            freeform_tags={"faceswap-oci-job": "demo"},
            lifecycle_state="AVAILABLE",
            time_created=now,
        ),
        M.Vcn(
            id="b",
            freeform_tags={"faceswap-oci-job": "other"},
            lifecycle_state="AVAILABLE",
            time_created=now,
        ),
        M.Vcn(
            id="c",
            freeform_tags={"faceswap-oci-job": "demo"},
            lifecycle_state="TERMINATED",
            time_created=now,
        ),
        M.Vcn(id="d", freeform_tags={}, lifecycle_state="AVAILABLE", time_created=now),
    ]
    assert [v.id for v in c.tagged_live(vcns, "demo")] == ["a"]


def test_format_error_names_option_ocid_region_request_id_and_next_step() -> None:
    exc = service_error(
        404,
        "NotAuthorizedOrNotFound",
        "Authorization failed or requested resource not found.",
        "AB/CD",
    )
    ctx = c.ErrorContext(
        "oci_network", "compartment_id", "eu-frankfurt-1", "ocid1.compartment.oc1..x"
    )
    assert c.format_error(exc, ctx) == (
        "oci_network failed (option compartment_id, OCID ocid1.compartment.oc1..x, region "
        "eu-frankfurt-1, opc-request-id AB/CD): 404 NotAuthorizedOrNotFound: Authorization failed "
        "or requested resource not found.. Next: check the OCID, that it is in this region, and "
        "that a policy lets your group use it in the compartment."
    )


def test_format_error_limit_exceeded_suggests_limit_increase() -> None:
    exc = service_error(400, "LimitExceeded", "limit reached")
    msg = c.format_error(exc, c.ErrorContext("launch_instance", "shapes", "eu-frankfurt-1"))
    assert msg.endswith(
        "Next: ask for a service limit increase or list another shape in target.oci.shapes."
    )


# --- config checks ------------------------------------------------------------------------------

TENANCY = "ocid1.tenancy.oc1..aaaaaaaatenancy"
USER = "ocid1.user.oc1..aaaaaaaauser"
FP = ":".join(["ab"] * 16)
REGIONS = frozenset({"eu-frankfurt-1", "us-ashburn-1"})


def _config(tmp_path: Path, body: str | None = None, key_mode: int = 0o600) -> Path:
    key = tmp_path / "key.pem"
    key.write_text("not a real key")
    os.chmod(key, key_mode)
    cfg = tmp_path / "config"
    cfg.write_text(
        body
        if body is not None
        else f"[DEFAULT]\nuser={USER}\nfingerprint={FP}\ntenancy={TENANCY}\n"
        f"region=eu-frankfurt-1\nkey_file={key}\n"
    )
    return cfg


def test_config_ok(tmp_path: Path) -> None:
    assert check_oci_config(str(_config(tmp_path)), regions=REGIONS) == []


def test_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert check_oci_config(str(missing), regions=REGIONS) == [
        Problem(
            str(missing),
            "(file)",
            "OCI config file does not exist",
            "run `oci setup config`, or set target.oci.config_file to your config file",
        )
    ]


def test_config_missing_profile_lists_the_ones_there(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    (problem,) = check_oci_config(str(cfg), "WORK", regions=REGIONS)
    assert (problem.field, problem.problem) == ("[WORK]", "profile not found")
    assert problem.fix == "use one of ['DEFAULT'] as target.oci.profile, or add a [WORK] section"


def test_config_world_readable_key(tmp_path: Path) -> None:
    cfg = _config(tmp_path, key_mode=0o644)
    (problem,) = check_oci_config(str(cfg), regions=REGIONS)
    assert problem.field == "[DEFAULT] key_file"
    assert problem.fix == f"chmod 600 {tmp_path / 'key.pem'}"


def test_config_key_file_missing_bad_ocid_unknown_region(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        f"[DEFAULT]\nuser=ocid1.user.bad\nfingerprint={FP}\ntenancy={TENANCY}\nregion=eu-fronkfurt-1\n"
        f"key_file={tmp_path / 'missing.pem'}\n",
    )
    problems = check_oci_config(str(cfg), regions=REGIONS, compartment="ocid1.vcn.oc1..abc")
    fields = [p.field for p in problems]
    assert fields == [
        "target.oci.compartment",
        "[DEFAULT] user",
        "[DEFAULT] region",
        "[DEFAULT] key_file",
    ]
    assert problems[0].problem == "is an OCID of a vcn, not of a compartment"
    assert problems[2].fix == "use one of ['eu-frankfurt-1']"


def test_config_messages_never_contain_the_fingerprint(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        f"[DEFAULT]\nuser={USER}\nfingerprint=zz-not-hex\ntenancy={TENANCY}\nregion=eu-frankfurt-1\n",
    )
    problems = check_oci_config(str(cfg), regions=REGIONS)
    assert "zz-not-hex" not in " ".join(str(p) for p in problems)
    assert [p.field for p in problems] == ["[DEFAULT] key_file", "[DEFAULT] fingerprint"]
