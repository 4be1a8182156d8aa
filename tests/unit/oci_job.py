"""A minimal job file with an `oci` target, for the wrapper's unit tests (no OCI is called)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from faceswap_oci import spec
from tests.media import write_pair

COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaatestcompartment"


def write_oci_job(tmp_path: Path, name: str, **oci: Any) -> Path:
    """``tmp_path/job.yml`` for job ``name`` (with two tiny real clips); ``oci`` adds to or
    overrides target.oci."""
    write_pair(tmp_path)
    data = {
        "name": name,
        "consent": spec.CONSENT_TEXT,
        "target": {
            "kind": "oci",
            "oci": {"compartment": COMPARTMENT, "region": "eu-frankfurt-1", **oci},
        },
        "inputs": {"a": "a.mp4", "b": "b.mp4"},
    }
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(data))
    return path
