"""The one declared map from job-spec fields to role options.

Each entry names a field of the job spec (``fsoci``, the validated spec as the runner passes it,
docs/contracts.md) by its dotted path and the role options it feeds. The phase playbooks turn
``fsoci`` into their role's options with the ``faceswap_oci.core.role_vars`` filter, so no
playbook restates a default: a field the job leaves out (or sets to ``null``) is not passed and
the role's own default (its ``meta/argument_specs.yml``) applies, unless the entry says what
``null`` means for the role (``none``: the stop criteria's "no limit" is the role's 0).

``tests/unit/plugins/test_spec_map.py`` walks every entry: the spec field's default, type,
choices and range agree with the role option's, and with Faceswap's own where it declares one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class Entry:
    """One spec field and the role options it feeds."""

    field: str
    options: tuple[str, ...]
    none: Any = _MISSING
    """What the role takes for the field's ``null`` (left out: ``null`` passes nothing)."""
    values: Mapping[str, Any] | None = None
    """A table from the spec's values to the role's (e.g. the backend flavours)."""


BACKEND_ENV: Mapping[str, str] = {
    "auto": "",
    "cpu": "cpu",
    "nvidia13": "nvidia",
    "nvidia12": "nvidia",
}
"""``faceswap.backend`` as FACESWAP_BACKEND: both CUDA flavours are Faceswap's ``nvidia``; ``auto``
leaves it to the ``config/.faceswap`` the setup phase writes."""

ROLES: tuple[str, ...] = (
    "faceswap",
    "faceswap_extract",
    "faceswap_train",
    "faceswap_convert",
    "oci_network",
    "oci_instance",
    "oci_teardown",
)
"""The roles the map feeds."""

_OCI_ROLES = ("oci_network", "oci_instance", "oci_teardown")


def _oci(field: str, suffix: str, roles: tuple[str, ...] = _OCI_ROLES) -> Entry:
    return Entry(f"target.oci.{field}", tuple(f"{role}_{suffix}" for role in roles))


ENTRIES: tuple[Entry, ...] = (
    _oci("compartment", "compartment"),
    _oci("region", "region"),
    _oci("config_file", "config_file"),
    _oci("profile", "profile"),
    _oci("auth", "auth_type"),
    _oci("service_endpoint", "service_endpoint"),
    _oci("defined_tags", "defined_tags", ("oci_network", "oci_instance")),
    Entry("target.oci.subnet", ("oci_network_subnet",), none=""),
    _oci("ssh_ingress_cidr", "ssh_ingress_cidr", ("oci_network",)),
    _oci("ssh_wait_timeout", "ssh_wait_timeout", ("oci_instance",)),
    _oci("shapes", "shapes", ("oci_instance",)),
    _oci("availability_domains", "availability_domains", ("oci_instance",)),
    _oci("preemptible", "preemptible", ("oci_instance",)),
    _oci("preemptible_fallback", "preemptible_fallback", ("oci_instance",)),
    Entry("target.oci.image", ("oci_instance_image",), none=""),
    _oci("os", "os", ("oci_instance",)),
    _oci("boot_volume_gb", "boot_volume_gb", ("oci_instance",)),
    Entry("target.oci.ssh_user", ("oci_instance_ssh_user",), none=""),
    Entry(
        "faceswap.backend",
        ("faceswap_extract_backend", "faceswap_train_backend", "faceswap_convert_backend"),
        values=BACKEND_ENV,
    ),
    Entry("extract.detector", ("faceswap_extract_detector",)),
    Entry("extract.aligner", ("faceswap_extract_aligner",)),
    Entry("extract.masker", ("faceswap_extract_masker",)),
    Entry("extract.size", ("faceswap_extract_size",)),
    Entry("extract.extract_every_n", ("faceswap_extract_every_n",)),
    Entry("extract.min_faces", ("faceswap_extract_min_faces",)),
    Entry("train.trainer", ("faceswap_train_trainer", "faceswap_convert_trainer")),
    Entry("train.batch_size", ("faceswap_train_batch_size",)),
    Entry("train.save_every", ("faceswap_train_save_every",)),
    Entry("train.preview", ("faceswap_train_preview",)),
    Entry("train.distributed", ("faceswap_train_distributed",)),
    Entry("train.exclude_gpus", ("faceswap_train_exclude_gpus",)),
    Entry("train.config", ("faceswap_train_config",)),
    Entry("train.stop.iterations", ("faceswap_train_iterations",), none=0),
    Entry("train.stop.hours", ("faceswap_train_hours",), none=0),
    Entry("train.stop.plateau_saves", ("faceswap_train_plateau_saves",), none=0),
    Entry("convert.writer", ("faceswap_convert_writer",)),
    Entry("convert.keep_audio", ("faceswap_convert_keep_audio",)),
    Entry("convert.color", ("faceswap_convert_color",)),
    Entry("convert.mask_type", ("faceswap_convert_mask_type",)),
    Entry("convert.config", ("faceswap_convert_config",)),
)


def role_of(option: str) -> str:
    """The role an option belongs to: the longest role name that prefixes it."""
    roles = [role for role in ROLES if option.startswith(f"{role}_")]
    if not roles:
        raise ValueError(f"{option}: no role of {ROLES} has this prefix")
    return max(roles, key=len)


def lookup(spec: Mapping[str, Any], field: str) -> Any:
    """The value at a dotted path of the spec; ``_MISSING`` when a part is absent."""
    node: Any = spec
    for part in field.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def role_vars(spec: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The options of *role* (its name, e.g. ``faceswap_train``) that the spec sets."""
    found: dict[str, Any] = {}
    for entry in ENTRIES:
        value = lookup(spec, entry.field)
        if value is None:
            value = entry.none
        if value is _MISSING:
            continue
        if entry.values is not None:
            if value not in entry.values:
                raise ValueError(
                    f"{entry.field}: {value!r} is not one of {sorted(entry.values)}; "
                    "fix the job file (docs/job-spec.md)"
                )
            value = entry.values[value]
        for option in entry.options:
            if role_of(option) == role:
                found[option] = value
    return found
